"""SaveMetricsHook writes JSON; CheckFiniteLossHook stops on NaN naming task and iteration;
MainProcessLoggerHook writes the test JSON from rank 0 only."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger

from mmase.engine import CheckFiniteLossHook, MainProcessLoggerHook, SaveMetricsHook
from mmase.engine.hooks import logger_hook


def test_save_metrics_hook_writes_builtin_json(tmp_path):
    runner = SimpleNamespace(work_dir=str(tmp_path), iter=12, epoch=0, _train_loop=None)
    hook = SaveMetricsHook()
    hook.after_val_epoch(runner, {'semseg/mIoU': np.float64(41.5), 'edge/odsF': float('nan')})
    data = json.load(open(tmp_path / 'metrics_val_iter_12.json'))
    assert data == {'semseg/mIoU': 41.5, 'edge/odsF': None}
    hook.after_test_epoch(runner, {'multitask/delta_m': torch.tensor(-1.25)})
    assert json.load(open(tmp_path / 'metrics_test.json')) == {'multitask/delta_m': -1.25}


def test_finite_loss_hook_names_task_and_iteration():
    hook = CheckFiniteLossHook()
    runner = SimpleNamespace(iter=6)
    hook.after_train_iter(runner, 0, outputs={'semseg.loss_ce': torch.tensor(0.3),
                                              'sal.acc': torch.tensor(float('nan'))})
    with pytest.raises(FloatingPointError, match=r"normals.loss_normals=nan \(task 'normals'\) "
                                                 r'at iteration 7'):
        hook.after_train_iter(runner, 0, outputs={'semseg.loss_ce': torch.tensor(0.3),
                                                  'normals.loss_normals': torch.tensor(float('nan'))})


def test_finite_loss_hook_names_the_task_before_the_total():
    # mmengine puts the total 'loss' first; the message must still name the task that broke
    hook = CheckFiniteLossHook()
    runner = SimpleNamespace(iter=2)
    outputs = {'loss': torch.tensor(float('nan')), 'semseg.loss_ce': torch.tensor(0.3),
               'sal.loss_bce': torch.tensor(float('inf')), 'sal.acc': torch.tensor(1.0),
               'edge.loss_bce': torch.tensor(float('nan'))}
    with pytest.raises(FloatingPointError,
                       match=r"sal.loss_bce=inf \(task 'sal'\) at iteration 3 "
                             r'\(also edge.loss_bce=nan\).*loss weight of \'sal\''):
        hook.after_train_iter(runner, 0, outputs=outputs)


def test_finite_loss_hook_total_overflow():
    hook = CheckFiniteLossHook()
    outputs = {'loss': torch.tensor(float('inf')), 'semseg.loss_ce': torch.tensor(3e38),
               'sal.loss_bce': torch.tensor(3e38)}
    with pytest.raises(FloatingPointError, match=r'non-finite total loss loss=inf at iteration 1 '
                                                 r'while every task loss is finite'):
        hook.after_train_iter(SimpleNamespace(iter=0), 0, outputs=outputs)


@pytest.mark.parametrize('main', [True, False])
def test_main_process_logger_hook_dumps_test_json_on_rank_zero_only(tmp_path, monkeypatch, main):
    monkeypatch.setattr(logger_hook, 'is_main_process', lambda: main)
    logged = []
    runner = SimpleNamespace(
        log_dir=str(tmp_path), test_dataloader=[0, 1],
        logger=MMLogger.get_instance('logger_hook_test'),
        log_processor=SimpleNamespace(
            get_log_after_epoch=lambda r, n, mode, with_non_scalar: (
                logged.append((n, mode)) or ({'semseg/mIoU': np.float64(12.5)}, 'log line'))))
    hook = MainProcessLoggerHook()
    hook.json_log_path = 'stamp.json'
    hook.after_test_epoch(runner, {})
    assert logged == [(2, 'test')]
    assert (tmp_path / 'stamp.json').exists() is main
    if main:
        assert json.load(open(tmp_path / 'stamp.json')) == {'semseg/mIoU': 12.5}


def test_progress_bar_counts_test_batches():
    from mmase.engine.hooks import ProgressBarHook
    hook = ProgressBarHook()
    runner = SimpleNamespace(test_dataloader=[0, 1, 2], val_dataloader=[0])
    hook.before_test_epoch(runner)
    for i in range(3):
        hook.after_test_iter(runner, i)
    assert hook._bar.completed == 3 and hook._bar.task_num == 3
    hook.after_test_epoch(runner)
    assert hook._bar is None
    hook.before_val_epoch(runner)  # val=False: no bar during validation
    hook.after_val_iter(runner, 0)
    assert hook._bar is None


def test_save_metrics_hook_names_epoch_runs_by_epoch(tmp_path):
    # mmengine's loops carry no ``by_epoch`` flag: the epoch loop is told apart by its type
    from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
    hook = SaveMetricsHook()
    epoch_loop = EpochBasedTrainLoop.__new__(EpochBasedTrainLoop)
    runner = SimpleNamespace(work_dir=str(tmp_path), iter=120, epoch=5, _train_loop=epoch_loop)
    hook.after_val_epoch(runner, {'semseg/mIoU': 1.0})
    iter_loop = IterBasedTrainLoop.__new__(IterBasedTrainLoop)
    runner = SimpleNamespace(work_dir=str(tmp_path), iter=120, epoch=0, _train_loop=iter_loop)
    hook.after_val_epoch(runner, {'semseg/mIoU': 2.0})
    assert sorted(p.name for p in tmp_path.iterdir()) == ['metrics_val_epoch_5.json',
                                                          'metrics_val_iter_120.json']
