"""Layout of the timm-named ViT (:class:`~.ase_vit.ASEViT`): ``blocks.i`` with ``attn.qkv``,
``attn.proj``, ``mlp.fc1``, ``mlp.fc2``; the FFN branch is the whole ``mlp``; the task
embedding goes on the output of ``norm_pre`` (an identity, as timm's, run before the blocks of
every task pass); checkpoints are timm ViT state dicts (:mod:`.timm_loading`)."""
from typing import Optional

from ..injection import FFNSite, Layout, LinearSite, register_layout
from .timm_loading import load_timm_vit

#: Linear name -> submodule path inside a block.
TARGET_LAYERS = {'qkv': 'attn.qkv', 'proj': 'attn.proj', 'fc1': 'mlp.fc1', 'fc2': 'mlp.fc2'}


@register_layout('ASEViT')
class TimmViTLayout(Layout):
    token_module = 'norm_pre'
    block_pattern = r'blocks\.\d+'

    def token_dims(self) -> int:
        return self.backbone.embed_dims

    def ffn(self, block: str) -> Optional[FFNSite]:
        mlp = self.backbone.get_submodule(f'{block}.mlp')
        return FFNSite(f'{block}.mlp', mlp.fc1.in_features, mlp.fc2.out_features)

    def linear(self, block: str, target: str) -> Optional[LinearSite]:
        return LinearSite(f'{block}.{TARGET_LAYERS[target]}', 'linear', target)

    def mlp(self, block: str):
        mlp = self.backbone.get_submodule(f'{block}.mlp')
        return f'{block}.mlp', mlp.fc1, mlp.fc2, mlp.act

    def load_pretrained(self, plain, path: str, field: str) -> None:
        vit = self.backbone
        load_timm_vit(plain, path, vit.grid_size, vit.embed_dims,
                      f'{vit.embed_dims} dims, {vit.num_layers} layers', field)
