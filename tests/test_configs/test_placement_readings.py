"""The two readings of ASE's expert placement (configs/ase_protocol): each first-linear config is
its FFN-side twin with one key changed, and the parameter difference is the hand count."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmase  # noqa: F401

CONFIGS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
                   'ase_protocol')
FC1 = sorted(glob.glob(osp.join(CONFIGS, '*-fc1_vit-b16_*.py')))


def twin(path):
    method, rest = osp.basename(path).split('_', 1)
    return osp.join(CONFIGS, f'{method[:-len("-fc1")]}_{rest}')


def test_five_first_linear_configs():
    assert [osp.basename(p).split('_40e')[0] for p in FC1] == [
        'ase-fc1_vit-b16_16-3-1-4', 'ase-fc1_vit-b16_32-6-2-2', 'ase-fc1_vit-b16_64-12-4-1',
        'lora-moe-fc1_vit-b16_16-4-0-4', 'lora-moe-fc1_vit-b16_32-8-0-2']


@pytest.mark.parametrize('path', FC1, ids=osp.basename)
def test_one_key_apart_and_the_hand_count(path):
    fc1, ffn = Config.fromfile(path), Config.fromfile(twin(path))
    a, b = dict(fc1.model.backbone.adapter), dict(ffn.model.backbone.adapter)
    assert a.pop('placement') == 'linear' and a.pop('targets') == ('fc1', )
    assert b.pop('placement', 'ffn') == 'ffn' and b.pop('targets', None) is None
    assert a == b  # N, k, S, r, alpha, gating: the same experts
    fc1.model.backbone.adapter = ffn.model.backbone.adapter
    assert fc1.model == ffn.model  # nothing else differs (heads, losses, tasks)
    # built small: 2 blocks of width 32 (fc1: 32 -> 128), the configs' experts and 5 tasks
    init_default_scope('mmseg')
    counts = {}
    for name, cfg in (('fc1', Config.fromfile(path)), ('ffn', ffn)):
        backbone = dict(cfg.model.backbone, tasks=cfg.tasks,  # the config's top-level tasks
                        arch=dict(embed_dims=32, num_layers=2, num_heads=2, mlp_ratio=4.0),
                        img_size=32, patch_size=16, out_indices=(1, ), pretrained=None)
        model = MODELS.build(backbone)
        counts[name] = sum(p.numel() for p in model.parameters())
    n_r = a['num_experts'] * a['rank']  # every expert's ranks: N r = 64 in the whole grid
    # experts beside the FFN: A (N r x 32) + B (32 x N r); on fc1: A (N r x 32) + B (128 x N r);
    # routers (5 tasks x N x 32) the same in both
    assert n_r == 64
    assert counts['fc1'] - counts['ffn'] == 2 * n_r * (128 - 32)
