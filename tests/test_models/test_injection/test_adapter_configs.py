"""Typed adapter configs: one set of defaults for every backbone, validated in one place,
errors naming the config field, old keys naming the new one."""
import dataclasses

import pytest

from mmase.models.adapters import FGMoE, TaskMoE
from mmase.models.backbones import ASEViT, TaskRoutedBackbone
from mmase.models.injection import (LoRAConfig, RoutedExpertsConfig, TaskEmbeddingConfig,
                                    parse_adapter_configs)

TASKS = ('semseg', 'sal')


def test_defaults_are_the_papers_experts_and_nothing_else():
    cfgs = parse_adapter_configs(TASKS)
    assert cfgs.adapter == RoutedExpertsConfig()
    assert (cfgs.adapter.num_experts, cfgs.adapter.top_k, cfgs.adapter.num_shared,
            cfgs.adapter.rank, cfgs.adapter.shared_gating,
            cfgs.adapter.placement) == (16, 3, 1, 4, 'adaptive', 'ffn')
    assert cfgs.lora is None and cfgs.mlp_moe is None
    assert cfgs.task_embedding == TaskEmbeddingConfig(())
    assert LoRAConfig().targets == ('qkv', 'proj') and LoRAConfig().rank == 4


def test_every_backbone_has_the_same_keys_and_defaults():
    import inspect
    keys = ('adapter', 'lora', 'mlp_moe', 'task_embedding', 'trainable', 'frozen', 'with_cp',
            'multitask_mode', 'record_routing')
    defaults = [{k: inspect.signature(cls).parameters[k].default for k in keys}
                for cls in (ASEViT, TaskRoutedBackbone)]
    assert defaults[0] == defaults[1]


def test_configs_are_frozen_and_normalised():
    cfg = RoutedExpertsConfig(placement='linear', blocks=3)
    assert cfg.targets == ('qkv', 'proj', 'fc1', 'fc2') and cfg.blocks == (3, )
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.top_k = 2
    embed = TaskEmbeddingConfig.from_value(['sal'], TASKS)
    assert embed.tasks == ('sal', )
    assert TaskEmbeddingConfig.from_value(True, TASKS).tasks == TASKS


@pytest.mark.parametrize('kwargs, error, message', [
    (dict(adapter=dict(top_k=16)), ValueError, 'adapter.top_k=16 exceeds the sparse pool'),
    (dict(adapter=dict(placement='attn')), ValueError, "adapter.placement='attn' is not one"),
    (dict(adapter=dict(targets=('qkv', ))), ValueError, "adapter.targets=.* is for "
                                                         "placement='linear'"),
    (dict(adapter=dict(stages='0')), ValueError, "adapter.stages='0' must be None"),
    (dict(adapter=dict(blocks=(0, True))), ValueError, 'adapter.blocks: True is not an index'),
    (dict(adapter=dict(mi_loss_weight=-1)), ValueError, 'adapter.mi_loss_weight=-1'),
    (dict(adapter=dict(experts=4)), ValueError, r"adapter: unknown keys \['experts'\]"),
    (dict(adapter=[]), TypeError, 'adapter must be a dict or None'),
    (dict(lora=dict(rank=0)), ValueError, 'lora.rank'),
    (dict(lora=dict(targets=('fc3', ))), ValueError, "lora.targets: unknown layer 'fc3'"),
    (dict(lora=dict(targets=('qkv', 'qkv'))), ValueError, 'lora.targets=.* repeats a layer'),
    (dict(mlp_moe=dict(num_experts=4)), ValueError, "mlp_moe: missing key 'type'"),
    (dict(mlp_moe=dict(type='Conv2d')), ValueError, "mlp_moe.type='Conv2d' is not a registered"),
    (dict(mlp_moe=dict(type='TaskMoE', top_k=9, num_experts=4)), ValueError, 'mlp_moe.top_k'),
    (dict(mlp_moe=dict(type='FGMoE', gating='x')), ValueError,
     r"mlp_moe: unknown keys \['gating'\] for FGMoE"),
    (dict(task_embedding='sal'), TypeError, 'task_embedding must be True, False or a list'),
    (dict(task_embedding=['depth']), ValueError, "task_embedding: task 'depth' is not one"),
])
def test_errors_name_the_field(kwargs, error, message):
    with pytest.raises(error, match=message):
        parse_adapter_configs(TASKS, hidden_dims=64, **kwargs)


def test_ffn_level_experts_take_their_layers_own_keys():
    cfgs = parse_adapter_configs(TASKS, adapter=None, hidden_dims=64,
                                 mlp_moe=dict(type='FGMoE', num_experts=8, blocks=(1, ),
                                              load_balance_weight=0.1))
    moe = cfgs.mlp_moe
    assert moe.layer_type is FGMoE and moe.blocks == (1, )
    assert moe.layer_args['num_experts'] == 8 and moe.load_balance_weight == 0.1
    assert set(moe.layer_args) == set(FGMoE.CONFIG_DEFAULTS)
    task_moe = parse_adapter_configs(TASKS, adapter=None, mlp_moe=dict(type=TaskMoE)).mlp_moe
    assert task_moe.layer_args == TaskMoE.CONFIG_DEFAULTS
