"""GradientConflictHook: parameter groups of the shared parameters, per-task gradients and their
cosines against hand-computed values, the probe leaving the model as it was, errors, and a tiny
toy training run plotted by tools/analysis/plot_gradient_conflict.py."""
import importlib.util
import json
import math
import os.path as osp
import sys

import pytest
import torch
from torch import nn

from mmase.engine.hooks import GradientConflictHook
from mmase.engine.hooks.gradient_conflict_hook import (pairwise_cosine, shared_parameter_groups,
                                                       task_gradients)
from mmase.models.adapters import LoRAExperts, TaskMoE

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(__file__)), 'test_tools'))
from tool_helpers import ROOT, TINY, run  # noqa: E402

GC_CONFIG = 'configs/toy/gradient_conflict/gc_ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py'


def moe_model():
    """A backbone with 3 LoRA experts of rank 1 (2 sparse, 1 shared; per-task routers), plain
    LoRA, a per-task embedding and one other trainable linear."""
    model = nn.Module()
    model.backbone = nn.Module()
    model.backbone.moe = LoRAExperts(2, 2, num_tasks=2, num_experts=3, top_k=1, num_shared=1,
                                     rank=1)
    model.backbone.lora = LoRAExperts(2, 2, num_experts=1, top_k=1, rank=1)
    model.backbone.task_embed = nn.Parameter(torch.zeros(2, 2))
    model.backbone.norm = nn.Linear(2, 2)
    return model


def test_groups_of_the_shared_parameters():
    groups = shared_parameter_groups(moe_model())
    names = {g: [(n, cut) for n, _, cut in pieces] for g, pieces in groups.items()}
    assert names == {
        'lora': [('backbone.lora.lora_A', None), ('backbone.lora.lora_B', None)],
        'sparse_experts': [('backbone.moe.lora_A', (0, 0, 2)), ('backbone.moe.lora_B', (1, 0, 2))],
        'shared_experts': [('backbone.moe.lora_A', (0, 2, 3)), ('backbone.moe.lora_B', (1, 2, 3))],
        'other': [('backbone.norm.weight', None), ('backbone.norm.bias', None)]}
    # the per-task routers and task embedding are owned by one task each: no group
    # Task-MoE with one router fed a task embedding: the router is shared, the embedding is not
    model = nn.Module()
    model.backbone = TaskMoE(nn.Linear(2, 4), nn.Linear(4, 2), num_tasks=2, num_experts=2,
                             top_k=1, gating='task_embedding')
    groups = shared_parameter_groups(model)
    assert [n for n, _, _ in groups['sparse_experts']] == [
        'backbone.fc1_weight', 'backbone.fc1_bias', 'backbone.fc2_weight', 'backbone.fc2_bias']
    assert [n for n, _, _ in groups['routers']] == ['backbone.router.weight']
    assert set(groups) == {'sparse_experts', 'routers'}


def test_task_gradients_and_cosines_by_hand():
    model = moe_model()
    a = model.backbone.moe.lora_A  # (3 ranks, 2): rows 0, 1 sparse, row 2 shared
    ca = torch.tensor([[1., 0.], [0., 1.], [1., 1.]])
    cb = torch.tensor([[1., 0.], [0., -1.], [2., 0.]])
    losses = {'semseg': (a * ca).sum(), 'sal': (a * cb).sum()}
    grads = task_gradients(losses, shared_parameter_groups(model))
    # d/dA of sum(A * C) is C; lora_B, the plain LoRA and the linear get no gradient (zeros)
    assert grads['sparse_experts'].tolist() == [[1, 0, 0, 1, 0, 0, 0, 0],
                                                [1, 0, 0, -1, 0, 0, 0, 0]]
    assert grads['shared_experts'].tolist() == [[1, 1, 0, 0], [2, 0, 0, 0]]
    assert grads['lora'].abs().sum() == 0
    assert grads['all'].shape == (2, 8 + 4 + 4 + 6)  # sparse, shared, lora (r=1), linear
    tasks = list(losses)
    assert pairwise_cosine(grads['sparse_experts'], tasks) == {'semseg|sal': 0.0}
    assert pairwise_cosine(grads['shared_experts'], tasks)['semseg|sal'] == pytest.approx(
        2 / (math.sqrt(2) * 2))  # (1,1).(2,0) / (|(1,1)| |(2,0)|)
    assert pairwise_cosine(grads['all'], tasks)['semseg|sal'] == pytest.approx(
        2 / (2 * math.sqrt(6)))  # dot 1 - 1 + 2 = 2; norms 2 and sqrt(6)
    assert math.isnan(pairwise_cosine(grads['lora'], tasks)['semseg|sal'])
    three = pairwise_cosine(torch.tensor([[1., 0.], [-1., 0.], [0., 3.]]), ['a', 'b', 'c'])
    assert three == {'a|b': -1.0, 'a|c': 0.0, 'b|c': 0.0}


class ProbeModel(nn.Module):
    """The segmentor's loss interface; the forward draws random numbers and updates a BN."""

    tasks = ('semseg', 'sal')

    def __init__(self):
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.shared = nn.Linear(2, 2)
        self.backbone.bn = nn.BatchNorm1d(2)
        self.data_preprocessor = lambda data, training: data

    def forward(self, inputs, mode):
        feat = self.backbone.bn(self.backbone.shared(inputs + torch.rand_like(inputs)))
        return {'semseg.loss_ce': feat[:, 0].sum(), 'sal.loss_bce': -feat[:, 0].sum(),
                'sal.acc': feat[:, 1].sum().detach(), 'loss_lb_semseg': feat.sum()}


def test_probe_leaves_rng_buffers_and_grads_as_they_were():
    torch.manual_seed(0)
    model = ProbeModel().train()
    inputs = torch.randn(4, 2)
    stats = model.backbone.bn.running_mean.clone()
    state = torch.get_rng_state()
    record = GradientConflictHook.measure(model, dict(inputs=inputs))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(model.backbone.bn.running_mean, stats)
    assert all(p.grad is None for p in model.parameters())
    # sal's loss is minus semseg's (its accuracy and the router loss are not task losses)
    assert record['other'] == {'semseg|sal': pytest.approx(-1.0)}


def test_errors():
    with pytest.raises(ValueError, match=r'GradientConflictHook.interval=0 must be an int >= 1'):
        GradientConflictHook(interval=0)
    model = moe_model()
    for param in model.parameters():
        param.requires_grad_(False)
    runner = type('R', (), dict(model=model))()
    model.tasks = ('semseg', 'sal')
    with pytest.raises(ValueError, match='no trainable parameter shared by the tasks'):
        GradientConflictHook().before_train(runner)


def test_toy_training_recorded_and_plotted(tmp_path, capsys):
    """4 iterations of the toy ASE 16/3/1/4 model (2 blocks), a probe every 2."""
    work_dir = tmp_path / 'work'
    run(['tools/train.py', GC_CONFIG, '--work-dir', str(work_dir), '--cfg-options', *TINY,
         'custom_hooks.3.interval=2', 'val_dataloader.dataset.indices=5'])
    record = json.load(open(work_dir / 'gradient_conflict.json'))
    assert sorted(record['iters'], key=int) == ['0', '2']
    # 2 blocks x (qkv: A 4x64 + B 192x4, proj: A 4x64 + B 64x4); sparse: 15 experts x r=4 of
    # A (x64) and B (64x), shared: 1 expert
    assert record['groups'] == dict(lora=2 * (256 + 768 + 256 + 256),
                                    sparse_experts=2 * 2 * 60 * 64,
                                    shared_experts=2 * 2 * 4 * 64)
    pairs = record['iters']['2']['all']
    assert len(pairs) == 10 and all(-1 <= v <= 1 for v in pairs.values())
    plot = load_plot_tool()
    summary = plot.main([str(work_dir), str(work_dir), '--names', 'ASE', 'again', '--out',
                         str(tmp_path / 'gc.png'), '--summary', str(tmp_path / 'gc.json')])
    assert 'ASE  shared_experts: mean cos' in capsys.readouterr().out
    assert (tmp_path / 'gc.png').stat().st_size > 5000
    assert set(json.load(open(tmp_path / 'gc.json'))['ASE']) == {
        'lora', 'sparse_experts', 'shared_experts', 'all'}
    # the last third of 2 records is the last one: the mean of its 10 pairs
    assert summary['ASE']['all']['mean_last'] == pytest.approx(sum(pairs.values()) / 10)
    # the same name twice: two seeds of one method, pooled (identical runs: std 0)
    plot.main([str(work_dir), str(work_dir), '--names', 'ASE', 'ASE', '--out',
               str(tmp_path / 'pooled.png')])
    out = capsys.readouterr().out
    assert '± 0.000 (last third)' in out and '(2 seeds)' in out
    with pytest.raises(SystemExit, match=r"--groups \['routers'\]: recorded by no run"):
        plot.main([str(work_dir), '--groups', 'routers'])


def load_plot_tool():
    spec = importlib.util.spec_from_file_location(
        'plot_gradient_conflict', osp.join(ROOT, 'tools', 'analysis', 'plot_gradient_conflict.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_resumed_run_keeps_the_earlier_records(tmp_path):
    model = moe_model()
    model.tasks = ('semseg', 'sal')
    old = dict(format='mmase.gradient_conflict/1', iters={'0': {}, '10': {}, '20': {}})
    (tmp_path / 'gradient_conflict.json').write_text(json.dumps(old))
    runner = type('R', (), dict(model=model, iter=15, work_dir=str(tmp_path)))()
    hook = GradientConflictHook(interval=10)
    hook.before_train(runner)
    assert sorted(hook._record['iters']) == ['0', '10']  # iteration 20 is trained again
    assert hook._record['groups'] == dict(lora=4, sparse_experts=8, shared_experts=4, other=6)


def test_gradients_are_summed_over_ranks_before_the_cosine(monkeypatch):
    """A second rank whose sal gradient is +2 g_semseg turns the local cos(g, -g) = -1 into
    cos(g, -g + 2g) = +1: the cosine is that of the global batch's gradients."""
    from mmase.engine.hooks import gradient_conflict_hook as module

    def all_reduce(stacked, op):
        assert op == 'sum'
        stacked[1] += 2 * stacked[0].clone()  # the other rank: (0, 2 g_semseg)

    monkeypatch.setattr(module, 'get_world_size', lambda: 2)
    monkeypatch.setattr(module, 'all_reduce', all_reduce)
    torch.manual_seed(0)
    model = ProbeModel().train()
    record = GradientConflictHook.measure(model, dict(inputs=torch.randn(4, 2)))
    assert record['other'] == {'semseg|sal': pytest.approx(1.0)}
