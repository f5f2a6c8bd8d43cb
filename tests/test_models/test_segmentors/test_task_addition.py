"""Adding a task to a trained ASEViT model: surgery by task name, frozen rows under AdamW."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmase  # noqa: F401

C = 32


def head(type_, **kwargs):
    return dict(type=type_, in_channels=[C], in_index=[0], channels=8, num_convs=1,
                concat_input=False, input_transform='resize_concat', norm_cfg=None,
                dropout_ratio=0.0, **kwargs)


HEADS = dict(semseg=head('FCNHead', num_classes=5), sal=head('BinaryHead'),
             edge=head('BinaryHead'))


def model_cfg(tasks, **extra):
    return dict(
        type='MultiTaskEncoderDecoder', tasks=tasks,
        data_preprocessor=dict(type='MultiTaskDataPreProcessor', size=(32, 32)),
        backbone=dict(type='ASEViT', arch=dict(embed_dims=C, num_layers=2, num_heads=2,
                                               mlp_ratio=2.0),
                      img_size=32, patch_size=8, out_indices=(1, ), tasks=tasks,
                      task_embedding=True,
                      adapter=dict(num_experts=4, top_k=2, num_shared=1, rank=2, alpha=2,
                                   shared_gating='adaptive')),
        decode_heads={t: HEADS[t] for t in tasks}, **extra)


def batch(tasks, n=2):
    g = torch.Generator().manual_seed(1)
    samples = []
    for _ in range(n):
        s = SegDataSample(metainfo=dict(ori_shape=(32, 32), img_shape=(32, 32)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 5, (1, 32, 32), generator=g))
        s.set_field(PixelData(data=torch.randint(0, 2, (1, 32, 32), generator=g)), 'gt_sal')
        s.set_field(PixelData(data=torch.randint(0, 2, (1, 32, 32), generator=g)), 'gt_edge')
        samples.append(s)
    inputs = [torch.randint(0, 256, (3, 32, 32), generator=g, dtype=torch.uint8)
              for _ in range(n)]
    return dict(inputs=inputs, data_samples=samples)


@pytest.fixture
def old_checkpoint(tmp_path):
    torch.manual_seed(0)
    old = MODELS.build(model_cfg(('semseg', 'sal')))
    with torch.no_grad():  # non-trivial router / embedding rows
        for name, p in old.named_parameters():
            p.add_(torch.randn_like(p) * 0.1)
    path = str(tmp_path / 'old.pth')
    torch.save(dict(state_dict=old.state_dict()), path)
    return old, path


def build_new(path, **addition):
    cfg = dict(checkpoint=path, checkpoint_tasks=('semseg', 'sal'), **addition)
    model = MODELS.build(model_cfg(('semseg', 'sal', 'edge'), task_addition=cfg))
    model.init_weights()
    return model


def test_surgery_copies_rows_by_task_name(old_checkpoint):
    old, path = old_checkpoint
    new = build_new(path, router_init=dict(edge='sal'))
    old_sd, new_sd = old.state_dict(), new.state_dict()
    routers = [k for k in new_sd if k.endswith('router.weight')]
    assert routers
    for key in routers:
        assert new_sd[key].shape[0] == 3
        torch.testing.assert_close(new_sd[key][:2], old_sd[key])  # semseg, sal
        torch.testing.assert_close(new_sd[key][2], old_sd[key][1])  # edge <- sal
    torch.testing.assert_close(new_sd['backbone.task_embed'][2], old_sd['backbone.task_embed'][1])
    for key in old_sd:
        if key in routers or key == 'backbone.task_embed':
            continue
        torch.testing.assert_close(new_sd[key], old_sd[key])
    # the old tasks' predictions are those of the checkpoint
    old.eval(), new.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        a, b = old._forward(x), new._forward(x)
    for task in ('semseg', 'sal'):
        torch.testing.assert_close(a[task], b[task])


def test_mean_router_init(old_checkpoint):
    old, path = old_checkpoint
    new = build_new(path, router_init=dict(edge='mean'))
    key = next(k for k in new.state_dict() if k.endswith('router.weight'))
    torch.testing.assert_close(new.state_dict()[key][2], old.state_dict()[key].mean(0))


def test_frozen_tasks_unchanged_under_adamw_weight_decay(old_checkpoint):
    torch.set_num_threads(1)
    old, path = old_checkpoint
    new = build_new(path, router_init=dict(edge='semseg'), frozen_tasks='old')
    assert new.loss_tasks == ('edge', )
    new.train()
    before = {k: v.clone() for k, v in new.state_dict().items()}
    wrapper = build_optim_wrapper(new, dict(type='OptimWrapper', optimizer=dict(
        type='AdamW', lr=0.05, weight_decay=0.5)))
    trainable = {n for n, p in new.named_parameters() if p.requires_grad}
    assert all(n.startswith('decode_heads.edge.') or n.endswith('router.weight')
               or n == 'backbone.task_embed' for n in trainable)
    for _ in range(3):
        new.train_step(batch(('semseg', 'sal', 'edge')), wrapper)
    after = new.state_dict()
    changed = [k for k in after if not torch.equal(after[k], before[k])]
    assert any(k.startswith('decode_heads.edge.') for k in changed)
    for key in after:
        if key.startswith('decode_heads.edge.'):
            continue
        if key.endswith('router.weight') or key == 'backbone.task_embed':
            assert torch.equal(after[key][:2], before[key][:2]), key  # old rows exact
            continue
        assert torch.equal(after[key], before[key]), key
    rows = [k for k in changed if k.endswith('router.weight')]
    assert rows  # the new task's routers trained


def test_joint_training_moves_old_parameters(old_checkpoint):
    old, path = old_checkpoint
    new = build_new(path, router_init=dict(edge='sal'), frozen_tasks=())
    assert new.loss_tasks == ('semseg', 'sal', 'edge')


@pytest.mark.parametrize('addition, match', [
    (dict(router_init=dict(edge='depth')), r"router_init\['edge'\]='depth' is not a task of"),
    (dict(router_init=dict(edge='most_similar')), r'tools/add_task.py'),
    (dict(router_init=dict()), r'router_init has no source task for the new tasks'),
    (dict(router_init=dict(edge='sal'), frozen_tasks=('edge', )),
     r"frozen_tasks=\('edge',\): \['edge'\] are not tasks of the checkpoint"),
])
def test_bad_task_addition_names_the_field(old_checkpoint, addition, match):
    _, path = old_checkpoint
    with pytest.raises(ValueError, match=match):
        build_new(path, **addition)


def test_unknown_task_addition_key():
    with pytest.raises(ValueError, match=r'task_addition has unknown keys \[\'freeze\'\]'):
        MODELS.build(model_cfg(('semseg', 'sal'), task_addition=dict(checkpoint='x', freeze=1)))
