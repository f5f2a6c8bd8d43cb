"""tools/analysis/benchmark_eval.py: a whole evaluation through the Runner, timed by stage."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(ROOT, 'configs', 'toy', 'ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py')

_spec = importlib.util.spec_from_file_location(
    'benchmark_eval', osp.join(ROOT, 'tools', 'analysis', 'benchmark_eval.py'))
benchmark_eval = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(benchmark_eval)


def test_stages_rss_and_projection(tmp_path):
    threads = torch.get_num_threads()
    out, maps = tmp_path / 'bench.json', tmp_path / 'edges.npz'
    try:
        result = benchmark_eval.main([
            TOY_CONFIG, '--num-images', '2', '--min-size', '40', '--max-size', '56',
            '--workers', '4', '--out', str(out), '--save-edge-maps', str(maps),
            '--cfg-options', 'model.backbone.arch.num_layers=2',
            'model.backbone.out_indices=[0,1]'])
    finally:
        torch.set_num_threads(threads)
    assert result['images'] == 2 and json.loads(out.read_text())['images'] == 2
    stages = result['seconds_per_image']
    tasks = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
    for key in ['load', 'model'] + [f'post/{t}' for t in tasks] + [f'meter/{t}' for t in tasks]:
        assert stages[key] > 0, key
    assert stages['meters'] == pytest.approx(sum(stages[f'meter/{t}'] for t in tasks))
    projection = result['projection']
    metric = stages['meters'] + stages['metric_other']
    assert projection['metric_workers_minutes'] == pytest.approx(5105 * metric / 4 / 60)
    assert projection['wall_minutes'] == pytest.approx(max(
        projection['model_process_minutes'], projection['metric_workers_minutes']))
    assert result['peak_rss_mb'] > 0 and 'edge/odsF' in result['metrics']
    saved = np.load(maps)
    assert sorted(saved.files) == ['g0', 'g1', 'p0', 'p1']
    assert saved['p0'].shape == saved['g0'].shape and 40 <= min(saved['p0'].shape) <= 56


def test_bad_arguments():
    with pytest.raises(SystemExit, match='must be >= 1'):
        benchmark_eval.main([TOY_CONFIG, '--num-images', '0'])


def test_post_table_old_and_new_agree():
    rows = benchmark_eval.post_table(repeats=1, strides=(16, ))
    assert [r['task'] for r in rows] == [t for t, *_ in benchmark_eval.POST_TASKS]
    for row in rows:
        assert row['old_ms'] > 0 and row['new_ms'] > 0 and row['head'] == '32x32'
        if 'labels_differ' in row:
            assert row['labels_differ'] < 0.01
        else:
            assert row['max_abs_diff'] < 1e-5
