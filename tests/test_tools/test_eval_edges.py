"""tools/analysis/eval_edges.py: odsF / oisF / AP of edge PNGs; tools/test.py --save-edges."""
import importlib.util
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image
from tool_helpers import ROOT, TINY, TOY_CONFIG, TOY_DATA, run

from mmase.evaluation import EdgeMeter
from mmase.evaluation.metrics.edge_files import write_edge_png
from mmase.evaluation.metrics.synthetic_edges import synthetic_edge_pair

_spec = importlib.util.spec_from_file_location(
    'eval_edges', osp.join(ROOT, 'tools', 'analysis', 'eval_edges.py'))
eval_edges = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(eval_edges)


@pytest.fixture
def folders(tmp_path):
    """Three 60x80 images: predictions as 8-bit PNGs, ground truth as {0, 255} PNGs."""
    pred_dir, gt_dir = tmp_path / 'pred', tmp_path / 'gt'
    gt_dir.mkdir()
    for i, kind in enumerate(('sharp', 'blurred', 'noisy')):
        pred, gt = synthetic_edge_pair(kind, seed=i, shape=(60, 80))
        write_edge_png(pred, str(pred_dir / f'im{i}.png'))
        Image.fromarray(gt * 255).save(gt_dir / f'im{i}.png')
    return str(pred_dir), str(gt_dir)


def test_scores_match_edge_meter(folders, tmp_path):
    pred_dir, gt_dir = folders
    out_dir = str(tmp_path / 'out')
    result = eval_edges.main([pred_dir, gt_dir, '--out-dir', out_dir, '--tolerance', '0.02'])
    meter = EdgeMeter(tolerance=0.02)
    records = []
    for i in range(3):  # what the tool reads: the 8-bit PNGs
        pred = np.asarray(Image.open(osp.join(pred_dir, f'im{i}.png'))) / 255.0
        gt = (np.asarray(Image.open(osp.join(gt_dir, f'im{i}.png'))) == 255).astype(np.uint8)
        records.append(meter.process(pred, gt))
    expected = meter.summary(records)
    for key in ('odsF', 'oisF', 'AP'):
        assert result[key] == pytest.approx(expected[key]), key
    assert 0 < result['AP'] < result['odsF'] <= result['oisF'] < 100
    saved = json.load(open(osp.join(out_dir, 'edge_pr.json')))
    assert saved['odsF'] == pytest.approx(expected['odsF']) and len(saved['recall']) == 99
    assert saved['num_images'] == 3 and len(saved['counts']['matched']) == 99
    assert Image.open(osp.join(out_dir, 'edge_pr.png')).size[0] > 100
    # --ids picks images
    ids = tmp_path / 'ids.txt'
    ids.write_text('im1\n\nim2\n')
    two = eval_edges.main([pred_dir, gt_dir, '--ids', str(ids), '--out-dir', out_dir,
                           '--tolerance', '0.02'])
    assert two['num_images'] == 2
    assert two['odsF'] == pytest.approx(meter.summary(records[1:])['odsF'])


def test_bad_input_names_the_file_and_writes_nothing(folders, tmp_path):
    pred_dir, gt_dir = folders
    out_dir = tmp_path / 'out'
    args = [pred_dir, gt_dir, '--out-dir', str(out_dir)]
    ids = tmp_path / 'ids.txt'
    ids.write_text('im0\nim7\n')
    with pytest.raises(FileNotFoundError, match=r"'im7'.*im7\.png is missing"):
        eval_edges.main(args + ['--ids', str(ids)])
    Image.fromarray(np.zeros((61, 80), np.uint8)).save(osp.join(gt_dir, 'im1.png'))
    with pytest.raises(ValueError, match=r'im1\.png is 80x60 .* ground truth .*im1\.png is 80x61'):
        eval_edges.main(args)
    Image.fromarray(np.full((60, 80), 3, np.uint8)).save(osp.join(gt_dir, 'im1.png'))
    with pytest.raises(ValueError, match=r'gt/im1\.png: ground-truth edges must be binary'):
        eval_edges.main(args)
    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(osp.join(pred_dir, 'im1.png'))
    with pytest.raises(ValueError, match=r'pred/im1\.png: expected a one-channel'):
        eval_edges.main(args)
    os.remove(osp.join(gt_dir, 'im1.png'))
    with pytest.raises(FileNotFoundError, match=r"no ground truth for image 'im1'"):
        eval_edges.main(args)
    assert not out_dir.exists() or not os.listdir(out_dir)  # nothing written


def test_test_tool_saves_edges_that_eval_edges_scores(toy_run, tmp_path):
    """tools/test.py --save-edges, then eval_edges.py (2 workers) on the toy val set against
    the PASCAL-Context LabelMap .mat files: the odsF of the test run, up to the 8-bit PNGs."""
    edge_dir = tmp_path / 'edges'
    run(['tools/test.py', TOY_CONFIG, toy_run.checkpoint, '--work-dir', str(tmp_path / 'w'),
         '--save-edges', str(edge_dir), '--cfg-options'] + TINY)
    val_ids = osp.join(TOY_DATA, 'ImageSets', 'Context', 'val.txt')
    ids = [line.strip() for line in open(val_ids) if line.strip()]
    assert sorted(os.listdir(edge_dir)) == sorted(f'{i}.png' for i in ids)
    tested = json.load(open(tmp_path / 'w' / 'metrics_test.json'))['edge/odsF']
    proc = run(['tools/analysis/eval_edges.py', str(edge_dir),
                osp.join(TOY_DATA, 'pascal-context', 'trainval'), '--ids', val_ids,
                '--workers', '2', '--out-dir', str(tmp_path / 'eval')])
    assert 'odsF' in proc.stdout and 'oisF' in proc.stdout and 'AP' in proc.stdout
    result = json.load(open(tmp_path / 'eval' / 'edge_pr.json'))
    assert result['num_images'] == len(ids)
    assert result['odsF'] == pytest.approx(tested, abs=1.0)
