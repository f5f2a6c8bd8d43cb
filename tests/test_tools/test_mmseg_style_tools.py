"""mmase's versions of mmseg's analysis tools on the toy config: browse_dataset, benchmark,
confusion_matrix, print_config, analyze_logs (same flags as mmseg's)."""
import glob
import json
import os.path as osp

import cv2
import numpy as np
import pytest
from tool_helpers import ROOT, TINY, TOY_CONFIG, run, run_many


def test_browse_dataset_draws_every_task_ground_truth(tmp_path):
    out = tmp_path / 'browse'
    run(['tools/analysis/browse_dataset.py', TOY_CONFIG, '--output-dir', str(out), '--not-show',
         '--split', 'val', '--max-images', '2'])
    files = sorted(glob.glob(str(out / '*.png')))
    assert [osp.basename(f) for f in files] == ['toy_000040.png', 'toy_000041.png']
    figure = cv2.imread(files[0])
    assert figure.shape[1] == 1200  # input + 5 task columns of 2 in at 100 dpi


def test_benchmark_confusion_matrix_print_config_and_logs(toy_run, tmp_path):
    preds = tmp_path / 'preds'
    run(['tools/test.py', TOY_CONFIG, toy_run.checkpoint, '--work-dir', str(tmp_path / 'test'),
         '--out', str(preds), '--cfg-options'] + TINY)
    scalars = glob.glob(osp.join(toy_run.work_dir, '*', 'vis_data', 'scalars.json'))[0]
    results = run_many([
        ('tools/analysis/benchmark.py', [TOY_CONFIG, toy_run.checkpoint, '--work-dir',
                                         str(tmp_path / 'bench'), '--num-iters', '4',
                                         '--num-warmup', '1', '--merge-lora',
                                         '--cfg-options'] + TINY),
        ('tools/analysis/confusion_matrix.py', [TOY_CONFIG, str(preds), str(tmp_path / 'cm')]),
        ('tools/analysis/print_config.py', [TOY_CONFIG, '--graph', '--dump',
                                            str(tmp_path / 'dumped.py'), '--cfg-options'] + TINY),
        ('tools/analysis/analyze_logs.py', [scalars, '--out', str(tmp_path / 'curves.pdf')]),
        ('tools/analysis/analyze_logs.py', [scalars, '--keys', 'nope*']),
        ('tools/analysis/confusion_matrix.py', [TOY_CONFIG, str(tmp_path / 'none'),
                                                str(tmp_path / 'cm2')]),
    ])
    assert results[:4] == [None] * 4, results
    assert results[4][0] == 'ValueError' and 'nope*' in results[4][1]
    assert results[5][0] == 'FileNotFoundError' and 'tools/test.py' in results[5][1]
    fps = json.load(open(glob.glob(str(tmp_path / 'bench' / 'fps_*.json'))[0]))
    assert fps['average_fps'] > 0 and fps['tasks'] == ['semseg', 'human_parts', 'sal',
                                                        'normals', 'edge']
    assert fps['merged_lora_layers'] == 4  # plain LoRA on qkv / proj of the 2 blocks
    metrics = json.load(open(tmp_path / 'test' / 'metrics_test.json'))
    for task in ('semseg', 'human_parts'):
        matrix = np.load(tmp_path / 'cm' / f'confusion_matrix_{task}.npy')
        tp, gt, pred = np.diag(matrix), matrix.sum(1), matrix.sum(0)
        union = gt + pred - tp
        miou = np.mean(tp[union > 0] / union[union > 0]) * 100
        assert miou == pytest.approx(metrics[f'{task}/mIoU'], abs=1e-3), task
        assert (tmp_path / 'cm' / f'confusion_matrix_{task}.png').stat().st_size > 0
    assert (tmp_path / 'curves.pdf').read_bytes()[:4] == b'%PDF'
    dumped = (tmp_path / 'dumped.py').read_text()
    assert "num_layers=2" in dumped and 'MultiTaskEncoderDecoder' in dumped
