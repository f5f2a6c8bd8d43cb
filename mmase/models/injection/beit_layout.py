"""Layout of mmseg's BEiT and MAE: a family added by one layout (the whole of it is below).

``layers.i`` are the blocks (one stage); each has ``attn.qkv`` / ``attn.proj`` linears and an
mmcv ``FFN`` (``ffn.layers``, linears ``layers.0.0`` / ``layers.1``: found as in
:class:`~.mmseg_layouts.MMSegLayout`). The class token is concatenated inside ``forward`` (no
module outputs the full token sequence), so the task embedding goes in through a forward
pre-hook on the first block (``token_hook='input'``): ``x_t = x + e_t`` on every token, class
token included, as on the other families. With ``qv_bias=True`` (BEiT's default) the attention
calls ``F.linear(x, qkv.weight, bias)`` instead of ``qkv(x)``, so a wrapper on ``qkv`` would
never run: the layout then offers ``proj`` only, and ``lora.targets=('qkv', ...)`` is an error.
Checkpoints: mmseg's format, strict (relative position tables must match the model's size).
"""
from typing import Optional

from .layout import LinearSite, register_layout
from .mmseg_layouts import MMSegLayout


@register_layout('BEiT', 'MAE')
class BEiTLayout(MMSegLayout):
    token_module = 'layers.0'
    token_hook = 'input'
    block_pattern = r'layers\.\d+'
    may_drop = (r'^head\.', r'^fc_norm\.', r'^norm\.')

    def token_dims(self) -> int:
        return int(self.backbone.cls_token.shape[-1])

    def linear(self, block: str, target: str) -> Optional[LinearSite]:
        if target not in ('qkv', 'proj'):
            return super().linear(block, target)  # fc1 / fc2 of the mmcv FFN
        attn = self.backbone.get_submodule(f'{block}.attn')
        if target == 'qkv' and getattr(attn, 'q_bias', None) is not None:
            return None  # qkv's weight is used through F.linear, never the module
        return LinearSite(f'{block}.attn.{target}', 'linear', target)
