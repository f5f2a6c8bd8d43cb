"""The README's main job at tiny size: tools/train.py then tools/test.py through mmengine's Runner."""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(ROOT, 'configs', 'toy', 'ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py')
TINY = ['train_cfg.max_iters=4', 'train_cfg.val_interval=4', 'default_hooks.checkpoint.interval=4',
        'default_hooks.logger.interval=1', 'param_scheduler.0.end=2', 'param_scheduler.1.begin=2',
        'param_scheduler.1.end=4',
        'model.backbone.arch.num_layers=2', 'model.backbone.out_indices=[0,1]']


def run_tool(args, cwd=ROOT, timeout=600):
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='2')
    proc = subprocess.run([sys.executable] + args, cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('toy_run'))
    log = run_tool(['tools/train.py', TOY_CONFIG, '--work-dir', work_dir, '--cfg-options'] + TINY)
    return work_dir, log


def test_train_writes_checkpoint_metrics_and_table(trained):
    work_dir, log = trained
    assert osp.isfile(osp.join(work_dir, 'iter_4.pth'))
    metrics = json.load(open(osp.join(work_dir, 'metrics_val_iter_4.json')))
    for key in ('semseg/mIoU', 'human_parts/mIoU', 'sal/maxF', 'normals/mErr', 'edge/odsF',
                'multitask/delta_m'):
        assert key in metrics and metrics[key] is not None, key
    assert re.search(r'delta_m', log)


def test_test_tool_evaluates_checkpoint_and_dumps(trained, tmp_path):
    work_dir, _ = trained
    out_pkl = str(tmp_path / 'preds.pkl')
    run_tool(['tools/test.py', TOY_CONFIG, osp.join(work_dir, 'iter_4.pth'), '--work-dir',
              str(tmp_path), '--out', out_pkl, '--cfg-options'] + TINY)
    metrics = json.load(open(tmp_path / 'metrics_test.json'))
    val = json.load(open(osp.join(work_dir, 'metrics_val_iter_4.json')))
    # the same checkpoint on the same val set gives the same numbers
    for key in ('semseg/mIoU', 'normals/mErr', 'multitask/delta_m'):
        assert metrics[key] == pytest.approx(val[key], rel=1e-6, abs=1e-6)
    assert osp.getsize(out_pkl) > 0


def test_test_tool_missing_checkpoint_is_clear(tmp_path):
    proc = subprocess.run([sys.executable, 'tools/test.py', TOY_CONFIG, str(tmp_path / 'nope.pth')],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and 'nope.pth does not exist' in proc.stderr
