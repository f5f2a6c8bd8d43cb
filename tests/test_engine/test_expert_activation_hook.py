"""ExpertActivationHook: what it records per epoch (fake runner, counted by hand), the merge over
ranks, its errors, and one tiny epoch-based toy training run plotted by
tools/analysis/plot_expert_activation.py."""
import json
import os.path as osp
import sys
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import IterBasedTrainLoop

from mmase.engine.hooks import ExpertActivationHook
from mmase.engine.hooks.expert_activation_hook import merge_rank_stats
from mmase.models.backbones import MultiTaskBackbone

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(__file__)), 'test_tools'))
from tool_helpers import ROOT, run  # noqa: E402

TOY_EPOCHS = osp.join(osp.dirname(__file__), 'data', 'toy_epochs_expert_activation.py')


class FakeBackbone(MultiTaskBackbone):
    """A multi-task backbone whose routing statistics are made up: two routed layers, 3 sparse
    experts, 1 shared in the first."""

    task_agnostic = False

    def _embed(self, inputs):
        raise NotImplementedError

    def _encode(self, tokens, grid):
        raise NotImplementedError

    def __init__(self):
        super().__init__(('semseg', ))
        self.layer_a = torch.nn.Module()
        self.layer_a.num_shared = 1
        self.layer_b = torch.nn.Module()  # no num_shared: counted as 0
        self.record_routing = False
        self.resets = 0
        self.epoch = 0

    def reset_routing_stats(self):
        self.resets += 1

    def routing_stats(self):
        assert self.record_routing
        self.epoch += 1
        tokens = 10 * self.epoch
        return dict(semseg={
            'layer_a': dict(counts=torch.tensor([6.0, 2.0, 2.0], dtype=torch.float64) * self.epoch,
                            tokens=tokens, selection_rate=None, sparse_mass=0.7,
                            shared_mass=0.3 / self.epoch),
            'layer_b': dict(counts=torch.tensor([5.0, 5.0, 0.0], dtype=torch.float64),
                            tokens=5, selection_rate=None, sparse_mass=1.0, shared_mass=0.0)})


def fake_runner(tmp_path, epoch=0, loop=None):
    model = SimpleNamespace(backbone=FakeBackbone())
    return SimpleNamespace(model=model, epoch=epoch, work_dir=str(tmp_path),
                           train_loop=loop or SimpleNamespace(_max_epochs=3),
                           cfg=Config(dict(model=dict(backbone=dict(type='FakeBackbone')),
                                           train_cfg=dict(type='IterBasedTrainLoop'))))


def train_epochs(hook, runner, count):
    hook.before_train(runner)
    for _ in range(count):
        hook.before_train_epoch(runner)
        hook.after_train_epoch(runner)
        runner.epoch += 1


def test_records_each_epoch_with_the_shared_count_of_each_layer(tmp_path):
    hook = ExpertActivationHook()
    runner = fake_runner(tmp_path)
    backbone = runner.model.backbone
    train_epochs(hook, runner, 2)
    assert backbone.record_routing is False  # switched off again: validation is not recorded
    record = json.load(open(tmp_path / 'expert_activation.json'))
    assert record['format'] == 'mmase.expert_activation/1' and record['world_size'] == 1
    assert record['tasks'] == ['semseg']
    assert record['layers'] == dict(layer_a=dict(num_sparse=3, num_shared=1),
                                    layer_b=dict(num_sparse=3, num_shared=0))
    assert sorted(record['epochs']) == ['1', '2']
    second = record['epochs']['2']['semseg']['layer_a']
    assert second['counts'] == [12.0, 4.0, 4.0] and second['tokens'] == 20
    assert second['selection_rate'] == pytest.approx([0.6, 0.2, 0.2])
    assert second['shared_mass'] == pytest.approx(0.15) and second['sparse_mass'] == 0.7


def test_only_the_chosen_epochs_and_resume_keeps_the_trained_ones(tmp_path):
    hook = ExpertActivationHook(epochs=[2, 3])
    runner = fake_runner(tmp_path)
    train_epochs(hook, runner, 2)  # epochs 1, 2: only 2 recorded
    assert sorted(json.load(open(tmp_path / 'expert_activation.json'))['epochs']) == ['2']
    # a resumed run at epoch 1 (1 epoch done) drops the file's later epochs and records 2 and 3
    hook = ExpertActivationHook(epochs=[2, 3])
    runner = fake_runner(tmp_path, epoch=1)
    train_epochs(hook, runner, 2)
    record = json.load(open(tmp_path / 'expert_activation.json'))
    assert sorted(record['epochs']) == ['2', '3']
    # this run's backbone counted from 1 again: epoch 2 of the file is the resumed run's
    assert record['epochs']['2']['semseg']['layer_a']['tokens'] == 10


def test_merge_over_ranks_by_hand():
    rank0 = dict(sal=dict(l=dict(counts=[3.0, 1.0], tokens=4, shared_mass=0.5, sparse_mass=0.5)))
    rank1 = dict(sal=dict(l=dict(counts=[0.0, 4.0], tokens=12, shared_mass=0.1, sparse_mass=0.9)),
                 edge=dict(l=dict(counts=[1.0, 1.0], tokens=2, shared_mass=0.2, sparse_mass=0.8)))
    merged = merge_rank_stats([rank0, rank1])
    sal = merged['sal']['l']
    assert sal['counts'] == [3.0, 5.0] and sal['tokens'] == 16
    assert sal['shared_mass'] == pytest.approx((0.5 * 4 + 0.1 * 12) / 16)  # token-weighted
    assert sal['selection_rate'] == pytest.approx([3 / 16, 5 / 16])
    assert merged['edge']['l']['counts'] == [1.0, 1.0]
    with pytest.raises(ValueError, match="ranks disagree on the number of experts of 'l'"):
        merge_rank_stats([rank0, dict(sal=dict(l=dict(counts=[1.0], tokens=1)))])


def test_errors(tmp_path):
    runner = fake_runner(tmp_path)
    runner.model = SimpleNamespace(backbone=torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"needs a multi-task backbone.*model.backbone.type="
                       r"'FakeBackbone'"):
        ExpertActivationHook().before_train(runner)
    iter_loop = IterBasedTrainLoop.__new__(IterBasedTrainLoop)
    iter_loop._max_epochs = 1  # as IterBasedTrainLoop sets it "for compatibility"
    for loop in (iter_loop, SimpleNamespace(_max_iters=10)):
        runner = fake_runner(tmp_path, loop=loop)
        with pytest.raises(ValueError,
                           match="records per epoch: train_cfg.type='IterBasedTrainLoop'"):
            ExpertActivationHook().before_train(runner)
    with pytest.raises(ValueError, match='epochs must be 1-based'):
        ExpertActivationHook(epochs=[0, 1])
    with pytest.raises(ValueError, match='out_file must be a file name'):
        ExpertActivationHook(out_file='sub/x.json')


def test_toy_training_epochs_recorded_and_plotted(tmp_path):
    """Two epochs of 2 iterations (8 toy images, batch 4) of the toy ASE 16/3/1/4 model."""
    work_dir = tmp_path / 'work'
    run(['tools/train.py', TOY_EPOCHS, '--work-dir', str(work_dir), '--cfg-options',
         'train_dataloader.dataset.indices=8', 'train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
         'param_scheduler.1.end=2', 'default_hooks.checkpoint.interval=2',
         'model.backbone.arch.num_layers=2', 'model.backbone.out_indices=[0,1]',
         'val_dataloader.dataset.indices=5'])
    record = json.load(open(work_dir / 'expert_activation.json'))
    assert sorted(record['epochs']) == ['1', '2']
    assert list(record['layers']) == ['blocks.0.mlp', 'blocks.1.mlp']
    assert record['layers']['blocks.0.mlp'] == dict(num_sparse=15, num_shared=1)
    assert record['tasks'] == ['semseg', 'human_parts', 'sal', 'normals', 'edge']
    for epoch in record['epochs'].values():
        for layers in epoch.values():
            for entry in layers.values():
                # 2 iterations x 4 images x (8 x 8 patches + cls token); top-3 of 15 experts
                assert entry['tokens'] == 2 * 4 * 65
                assert sum(entry['counts']) == 3 * entry['tokens']
                assert entry['sparse_mass'] + entry['shared_mass'] == pytest.approx(1.0)
                assert 0 < entry['shared_mass'] < 1  # adaptive gating
    proc = run(['tools/analysis/plot_expert_activation.py', str(work_dir), '--epochs', '1', '2',
                '--tasks', 'semseg', 'sal', '--out', str(tmp_path / 'plots')])
    assert 'semseg: shared gate mass per token' in proc.stdout
    for name in ('expert_activation_semseg.png', 'expert_activation_sal.png',
                 'shared_gate_mass.png'):
        assert (tmp_path / 'plots' / name).stat().st_size > 5000, name
    proc = run(['tools/analysis/plot_expert_activation.py', str(work_dir), '--epochs', '1', '3'],
               check=False)
    assert proc.returncode != 0
    assert ('--epochs 3: not recorded in ' + str(work_dir / 'expert_activation.json')
            + ' (recorded epochs: 1, 2)') in proc.stderr
