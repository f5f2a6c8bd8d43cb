"""Shipped configs build without their pretrained files (so counting, FLOPs, printing, browsing
and benchmarking need none); initialising the weights, which training does, refuses a missing
file naming it; FGMoE's experts start from the loaded MLP."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS

import mmase  # noqa: F401
from mmase.engine import apply_experiment_tasks

CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs')

#: A config of each backbone path, and the pretrained file it names.
REAL = {
    'ase_protocol/ase_vit-s16_16-3-1-4_40e_pascal-mt-224x224.py': 'vit_small_patch16_224',
    'swin/ase_swin-t_16-3-1-4_40e_pascal-mt-224x224.py': 'swin',
    'mit/ase_mit-b2_16-3-1-4_40e_pascal-mt-224x224.py': 'mit_b2',
    'fgmoe/fgmoe-decoder_vit-s16_16-6-2_40k_pascal-mt-512x512.py': 'vit_small_patch16',
}


@pytest.mark.parametrize('config', sorted(REAL))
def test_real_config_builds_without_its_pretrained_file(config):
    cfg = apply_experiment_tasks(Config.fromfile(osp.join(CONFIG_DIR, config)))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)  # the pretrained file does not exist here
    with pytest.raises(FileNotFoundError, match=REAL[config]):
        model.init_weights()


def test_encoder_fgmoe_starts_from_the_pretrained_mlp(tmp_path):
    """Loaded at init_weights, the MLP's weights reach the FGMoE layer built at build time."""
    from mmase.models.backbones import ASEViT
    arch = dict(embed_dims=32, num_layers=2, num_heads=2)
    torch.manual_seed(0)
    plain = ASEViT(arch=arch, img_size=32, patch_size=8, adapter=None)
    path = tmp_path / 'vit.pth'
    torch.save(plain.state_dict(), path)
    torch.manual_seed(1)
    model = ASEViT(arch=arch, img_size=32, patch_size=8, adapter=None, pretrained=str(path),
                   mlp_moe=dict(type='FGMoE', num_experts=4, top_k=2, num_shared=1))
    layer = model.blocks[1].mlp
    assert not torch.equal(layer.fc1.weight, plain.blocks[1].mlp.fc1.weight)
    model.init_weights()
    assert torch.equal(layer.fc1.weight, plain.blocks[1].mlp.fc1.weight)
    # slice i of the intra-task experts is rows i*H/N.. of the pretrained fc1
    hidden = plain.blocks[1].mlp.fc1.weight.shape[0]
    slices = [p for n, p in layer.named_parameters() if 'fc1' in n and 'expert' in n]
    assert slices, [n for n, _ in layer.named_parameters()]
    assert torch.equal(slices[0].reshape(-1, 32)[:hidden],
                       plain.blocks[1].mlp.fc1.weight)
