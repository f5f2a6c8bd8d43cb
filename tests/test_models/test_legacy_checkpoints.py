"""Checkpoints of the models as they were before the backbone redesign (fixtures written by
``tests/test_models/legacy/make_fixtures.py`` at commit d05e05f) load strictly into today's
models, built from the same configs, and give the same outputs.

One config change is needed, and only for ``TaskRoutedBackbone``: its ``experts`` key is now
``adapter`` (one spelling for every backbone; the old key is an error naming the new one), and
its defaults are now every backbone's (``lora=None``, ``task_embedding=False`` instead of
``lora=dict()``, ``task_embedding=True``), so an old config states the old ones."""
import copy
import os.path as osp

import pytest
import torch
from mmseg.registry import MODELS

import mmase  # noqa: F401

LEGACY = osp.join(osp.dirname(osp.abspath(__file__)), 'legacy')
NAMES = ('ase_vit_16-3-1-4', 'ase_vit_linear_placement', 'task_moe_vit', 'fgmoe_encoder_vit',
         'task_routed_swin', 'task_routed_mit', 'fgmoe_decoder')


def migrate_config(config: dict) -> dict:
    """A pre-redesign backbone config in today's spelling, with the same meaning."""
    config = copy.deepcopy(config)
    if config['type'] == 'TaskRoutedBackbone':
        config['adapter'] = config.pop('experts', dict())
        config.setdefault('lora', dict())
        config.setdefault('task_embedding', True)
    return config


def load_fixture(name):
    return torch.load(osp.join(LEGACY, f'{name}.pth'), map_location='cpu', weights_only=True)


@pytest.mark.parametrize('name', NAMES)
def test_legacy_checkpoint_loads_strictly_and_gives_the_same_outputs(name):
    fixture = load_fixture(name)
    torch.manual_seed(0)
    model = MODELS.build(migrate_config(fixture['config']))
    model.load_state_dict(fixture['state_dict'], strict=True)
    model.eval()
    with torch.no_grad():
        outputs = model.forward_tasks(fixture['inputs'])
    assert list(outputs) == list(fixture['outputs'])
    for task, maps in fixture['outputs'].items():
        assert len(outputs[task]) == len(maps)
        for got, expected in zip(outputs[task], maps):
            assert got.shape == expected.shape
            assert torch.allclose(got, expected, rtol=0, atol=1e-6), \
                f'{name}/{task}: max diff {(got - expected).abs().max():.3g}'


def test_the_old_spelling_is_an_error_naming_the_new_one():
    config = load_fixture('task_routed_swin')['config']
    with pytest.raises(TypeError, match="'experts' is now spelled 'adapter'"):
        MODELS.build(copy.deepcopy(config))
