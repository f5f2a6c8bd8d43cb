"""A checkpoint is written only when every parameter and buffer is finite: a real Runner whose
BN running_var overflows right after a save (the losses stay finite) stops, names the buffer,
and leaves last_checkpoint naming the last finite checkpoint, which --resume then loads."""
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mmase.engine.finite_state import nonfinite_entries


class Points(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, index):
        generator = torch.Generator().manual_seed(index)
        return dict(inputs=torch.randn(4, generator=generator))


class TinyBNModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.bn = torch.nn.BatchNorm1d(3)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.bn(self.linear(torch.stack(inputs)))
        return dict(loss=out.pow(2).mean()) if mode == 'loss' else out


class PoisonBNHook(Hook):
    """Overflows the BN running variance after iteration ``at`` (train-mode BN normalises with
    the batch statistics, so the loss stays finite)."""
    priority = 'HIGHEST'

    def __init__(self, at):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at:
            runner.model.bn.running_var[1] = float('inf')


def make_runner(work_dir, poison_at=None, resume=False, finite_loss_hook=True):
    hooks = [dict(type='CheckFiniteLossHook')] if finite_loss_hook else []
    if poison_at:
        hooks.append(PoisonBNHook(poison_at))
    return Runner(
        model=TinyBNModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=Points(), sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=4, collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=6),
        default_hooks=dict(checkpoint=dict(type='SafeCheckpointHook', by_epoch=False, interval=2,
                                           max_keep_ckpts=1,
                                           backend_args=dict(backend='atomic_local')),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=hooks, resume=resume, default_scope='mmseg',
        experiment_name=f'finite_{osp.basename(str(work_dir))}_{poison_at}_{resume}_'
                        f'{finite_loss_hook}')


def last_checkpoint(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return osp.basename(f.read())


@pytest.mark.parametrize('finite_loss_hook', [True, False])
def test_poisoned_state_is_never_saved(tmp_path, finite_loss_hook):
    """CheckFiniteLossHook stops at the save; without it SafeCheckpointHook refuses to write."""
    import mmase  # noqa: F401
    runner = make_runner(tmp_path, poison_at=3, finite_loss_hook=finite_loss_hook)
    with pytest.raises(FloatingPointError, match=r'bn\.running_var \(1 of 3 values non-finite, '
                                                 r'e\.g\. inf\)'):
        runner.train()
    assert runner.iter == 3  # stopped at the save of iteration 4
    assert last_checkpoint(tmp_path) == 'iter_2.pth'  # max_keep_ckpts=1 kept it
    assert not osp.exists(tmp_path / 'iter_4.pth')
    saved = torch.load(tmp_path / 'iter_2.pth', weights_only=False)['state_dict']
    assert nonfinite_entries(saved) == []
    resumed = make_runner(tmp_path, resume=True)  # the resume the issue saw die again
    resumed.train()
    assert resumed.iter == 6 and last_checkpoint(tmp_path) == 'iter_6.pth'


def test_nonfinite_entries_names_keys_and_counts():
    state = dict(a=torch.tensor([1.0, float('nan'), float('nan')]), n=torch.tensor(3),
                 b=torch.ones(2), c=torch.tensor([float('-inf')]))
    assert nonfinite_entries(state) == ['a (2 of 3 values non-finite, e.g. nan)',
                                        'c (1 of 1 values non-finite, e.g. inf)']
    many = {f'k{i}': torch.tensor([float('inf')]) for i in range(7)}
    assert nonfinite_entries(many, limit=2)[-1] == '... and 5 more'
