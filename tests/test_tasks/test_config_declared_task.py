"""A task of a never-named kind, declared only in a config, trains one iteration and validates."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmase.engine import MultiTaskRunner
from mmase.tasks import TASK_SPECS, undeclare_task

CONFIG = osp.join(osp.dirname(__file__), 'configs', 'toy_pascal_softsal_task.py')
REPO = osp.dirname(osp.dirname(osp.dirname(__file__)))


@pytest.fixture
def fresh_registry():
    undeclare_task('softsal')
    yield
    undeclare_task('softsal')


def test_softsal_kind_is_named_nowhere_in_the_package():
    for root in ('mmase', ):
        for dirpath, _, files in __import__('os').walk(osp.join(REPO, root)):
            for name in files:
                if name.endswith('.py'):
                    with open(osp.join(dirpath, name)) as f:
                        assert 'softsal' not in f.read(), osp.join(dirpath, name)


def test_config_declared_task_trains_and_validates(tmp_path, fresh_registry, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.chdir(REPO)
    assert 'softsal' not in TASK_SPECS
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = str(tmp_path)
    cfg.val_dataloader.dataset.indices = 4
    cfg.visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook', draw=False)
    runner = MultiTaskRunner.from_cfg(cfg)  # the top-level tasks reach every field
    runner.train()
    spec = TASK_SPECS['softsal']
    assert spec.kind == 'softsal' and spec.gt_field == 'gt_softsal'
    with open(tmp_path / 'metrics_val_iter_1.json') as f:
        metrics = json.load(f)
    metrics = metrics.get('metrics', metrics)
    # the meter came from the declaration: mae / rmse of a sigmoid output against (v+1)/256
    assert 0 < metrics['softsal/mae'] <= metrics['softsal/rmse'] < 1
    assert 'semseg/mIoU' in metrics

