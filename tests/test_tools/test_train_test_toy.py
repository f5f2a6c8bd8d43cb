"""The README's main job at tiny size: tools/train.py then tools/test.py through mmengine's Runner."""
import json
import os.path as osp
import subprocess
import sys

import pytest
from tool_helpers import ROOT, TINY, TOY_CONFIG, run

MAIN_KEYS = ('semseg/mIoU', 'human_parts/mIoU', 'sal/maxF', 'normals/mErr', 'edge/odsF',
             'multitask/delta_m')


def test_train_writes_checkpoint_metrics_and_json(toy_run):
    metrics = json.load(open(osp.join(toy_run.work_dir, 'metrics_val_iter_4.json')))
    for key in MAIN_KEYS:
        assert key in metrics and metrics[key] is not None, key


def test_test_tool_evaluates_checkpoint_logs_table_and_dumps(toy_run, tmp_path):
    out_pkl = str(tmp_path / 'preds.pkl')
    proc = run(['tools/test.py', TOY_CONFIG, toy_run.checkpoint, '--work-dir', str(tmp_path),
                '--out', out_pkl, '--cfg-options'] + TINY)
    log = proc.stdout + proc.stderr
    assert 'MultiTaskMetric' in log and 'multitask/delta_m' in log  # the table
    metrics = json.load(open(tmp_path / 'metrics_test.json'))
    val = json.load(open(osp.join(toy_run.work_dir, 'metrics_val_iter_4.json')))
    # the same checkpoint on the same val set gives the same numbers
    for key in MAIN_KEYS:
        assert metrics[key] == pytest.approx(val[key], rel=1e-6, abs=1e-6), key
    assert osp.getsize(out_pkl) > 0


def test_test_tool_missing_checkpoint_is_clear(tmp_path):
    proc = subprocess.run([sys.executable, 'tools/test.py', TOY_CONFIG, str(tmp_path / 'nope.pth')],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and 'nope.pth does not exist' in proc.stderr
