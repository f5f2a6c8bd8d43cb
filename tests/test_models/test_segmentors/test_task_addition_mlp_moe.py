"""Adding a task to a model with MLP-level experts: every Task-MoE gating (token-level routers,
one router with task embeddings, task-level routing) and FGMoE's per-task slices are copied by
task name, and the old tasks predict as before."""
import pytest
import torch
from mmseg.registry import MODELS

import mmase  # noqa: F401
from mmase.models.segmentors.task_addition import per_task_tensors

C = 32
HEAD = dict(in_channels=[C], in_index=[0], channels=8, num_convs=1, concat_input=False,
            input_transform='resize_concat', norm_cfg=None, dropout_ratio=0.0)
HEADS = dict(semseg=dict(type='FCNHead', num_classes=5, **HEAD),
             sal=dict(type='BinaryHead', **HEAD), edge=dict(type='BinaryHead', **HEAD))
MLP_MOE = {
    'task_router': dict(type='TaskMoE', num_experts=3, top_k=1, gating='task_router'),
    'task_embedding': dict(type='TaskMoE', num_experts=3, top_k=1, gating='task_embedding'),
    'task_level': dict(type='TaskMoE', num_experts=3, top_k=1, gating='task_level',
                       gate_norm='all'),
    'fgmoe_per_task': dict(type='FGMoE', num_experts=4, top_k=2, num_shared=1),
    'fgmoe_shared_only': dict(type='FGMoE', num_experts=4, top_k=2, num_shared=1,
                              task_specific_experts='shared_only'),
}
#: the per-task tensors of each variant (block 1's MLP), besides nothing else
PER_TASK = {
    'task_router': ['router.weight'], 'task_level': ['router.weight'],
    'task_embedding': ['task_embedding'],
    'fgmoe_per_task': ['router.weight', 'expert_fc1_weight', 'expert_fc1_bias',
                       'expert_fc2_weight', 'expert_fc2_bias'],
    'fgmoe_shared_only': ['router.weight', 'shared_fc1_weight', 'shared_fc1_bias',
                          'shared_fc2_weight'],
}


def model_cfg(tasks, variant, **extra):
    return dict(
        type='MultiTaskEncoderDecoder', tasks=tasks,
        data_preprocessor=dict(type='MultiTaskDataPreProcessor', size=(32, 32)),
        backbone=dict(type='ASEViT', arch=dict(embed_dims=C, num_layers=2, num_heads=2,
                                               mlp_ratio=2.0),
                      img_size=32, patch_size=8, out_indices=(1, ), tasks=tasks,
                      adapter=None, lora=None, task_embedding=False,
                      mlp_moe=dict(blocks=(1, ), **MLP_MOE[variant])),
        decode_heads={t: HEADS[t] for t in tasks}, **extra)


@pytest.mark.parametrize('variant', list(MLP_MOE))
def test_new_task_rows_from_the_source_task_and_old_tasks_unchanged(variant, tmp_path):
    torch.manual_seed(0)
    old = MODELS.build(model_cfg(('semseg', 'sal'), variant))
    with torch.no_grad():  # tasks' rows differ
        for p in old.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    path = str(tmp_path / 'old.pth')
    torch.save(dict(state_dict=old.state_dict()), path)
    new = MODELS.build(model_cfg(('semseg', 'sal', 'edge'), variant, task_addition=dict(
        checkpoint=path, checkpoint_tasks=('semseg', 'sal'), router_init=dict(edge='sal'))))
    new.init_weights()
    prefix = 'backbone.blocks.1.mlp.'
    keys = sorted(per_task_tensors(new))
    assert keys == sorted(prefix + k for k in PER_TASK[variant])
    old_sd, new_sd = old.state_dict(), new.state_dict()
    for key in keys:
        assert new_sd[key].shape[0] == 3
        torch.testing.assert_close(new_sd[key][:2], old_sd[key])  # semseg, sal
        torch.testing.assert_close(new_sd[key][2], old_sd[key][1])  # edge <- sal
    old.eval(), new.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        a, b = old._forward(x), new._forward(x)
        edge = new.backbone.forward_tasks(x, ('sal', 'edge'))
    for task in ('semseg', 'sal'):
        torch.testing.assert_close(a[task], b[task])
    # edge starts from sal's routing (and slices): the same features
    for f_sal, f_edge in zip(edge['sal'], edge['edge']):
        torch.testing.assert_close(f_sal, f_edge)
