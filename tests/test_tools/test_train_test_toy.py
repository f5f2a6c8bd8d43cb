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


def test_test_tool_tta_out_dir_and_per_class_tables(toy_run, tmp_path):
    import cv2
    import numpy as np
    out_dir = tmp_path / 'preds'
    proc = run(['tools/test.py', TOY_CONFIG, toy_run.checkpoint, '--work-dir', str(tmp_path),
                '--tta', '--out', str(out_dir), '--cfg-options'] + TINY)
    log = proc.stdout + proc.stderr
    assert 'per class results (semseg)' in log and '|  aeroplane  |' in log
    metrics = json.load(open(tmp_path / 'metrics_test.json'))
    per_class = json.load(open(tmp_path / 'per_class_iou.json'))
    for task in ('semseg', 'human_parts'):  # the table's mean over defined classes = mIoU
        ious = [v['IoU'] for v in per_class[task].values() if v['IoU'] is not None]
        assert np.mean(ious) == pytest.approx(metrics[f'{task}/mIoU'], abs=1e-3), task
    ids = [line.strip() for line in open(osp.join(ROOT, 'data', 'toy_pascal_mt', 'ImageSets',
                                                   'Context', 'val.txt')) if line.strip()]
    for task in ('semseg', 'human_parts', 'sal', 'normals', 'edge'):
        assert sorted(p[:-4] for p in __import__('os').listdir(out_dir / task)) == sorted(ids)
    image = cv2.imread(osp.join(ROOT, 'data', 'toy_pascal_mt', 'JPEGImages', ids[0] + '.jpg'))
    normals = cv2.imread(str(out_dir / 'normals' / f'{ids[0]}.png'))
    assert normals.shape == image.shape  # original size, RGB encoding
    assert cv2.imread(str(out_dir / 'semseg' / f'{ids[0]}.png'), cv2.IMREAD_UNCHANGED).max() < 21


def test_test_tool_out_with_other_suffix_is_refused(toy_run, tmp_path):
    proc = run(['tools/test.py', TOY_CONFIG, toy_run.checkpoint, '--work-dir', str(tmp_path),
                '--out', str(tmp_path / 'x.txt'), '--cfg-options'] + TINY, check=False)
    assert proc.returncode != 0 and 'give a .pkl file or a directory' in proc.stderr


def test_train_tensorboard_flag_adds_the_backend_beside_the_local_one(tmp_path):
    pytest.importorskip('tensorboard')
    import glob
    run(['tools/train.py', TOY_CONFIG, '--work-dir', str(tmp_path), '--tensorboard',
         '--cfg-options'] + TINY + ['train_cfg.max_iters=2', 'train_cfg.val_interval=100',
                                    'default_hooks.checkpoint.interval=100'])
    assert glob.glob(str(tmp_path / '*' / 'vis_data' / 'events.out.tfevents.*'))
    assert glob.glob(str(tmp_path / '*' / 'vis_data' / 'scalars.json'))  # local backend kept
