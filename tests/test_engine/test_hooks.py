"""SaveMetricsHook writes JSON; CheckFiniteLossHook stops on NaN naming task and iteration."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mmase.engine import CheckFiniteLossHook, SaveMetricsHook


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
