"""Edge PNGs and ground-truth files; MultiTaskMetric.edge_save_dir; set_edge_save_dir."""
import io
import os

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from PIL import Image
from scipy import io as sio

from mmase.datasets.pascal_mt_labels import edge_from_label_map
from mmase.evaluation import MultiTaskMetric
from mmase.evaluation.metrics.edge_files import (find_edge_gt, read_edge_gt, read_edge_png,
                                                 set_edge_save_dir, write_edge_png)


def test_png_round_trip_is_8_bit(tmp_path):
    prob = np.array([[0.0, 0.5], [0.999, 1.0]])
    path = str(tmp_path / 'sub' / 'a.png')
    write_edge_png(prob, path)
    assert os.listdir(tmp_path / 'sub') == ['a.png']  # no temporary file left
    np.testing.assert_allclose(read_edge_png(path), [[0, 128 / 255], [1, 1]])
    Image.fromarray(np.array([[0, 65535]], np.uint16)).save(tmp_path / 'b.png')
    np.testing.assert_allclose(read_edge_png(str(tmp_path / 'b.png')), [[0, 1]])


def test_bad_predictions_name_the_file(tmp_path):
    with pytest.raises(ValueError, match=r'x\.png: edge probabilities must be in \[0, 1\]'):
        write_edge_png(np.array([[1.5]]), str(tmp_path / 'x.png'))
    assert not os.listdir(tmp_path)
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / 'rgb.png')
    with pytest.raises(ValueError, match=r'rgb\.png: expected a one-channel'):
        read_edge_png(str(tmp_path / 'rgb.png'))
    (tmp_path / 'broken.png').write_bytes(b'not a png')
    with pytest.raises(OSError, match=r'broken\.png'):
        read_edge_png(str(tmp_path / 'broken.png'))
    with pytest.raises(FileNotFoundError, match=r'missing\.png'):
        read_edge_png(str(tmp_path / 'missing.png'))


def test_ground_truth_files(tmp_path):
    Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).save(tmp_path / 'a.png')
    Image.fromarray(np.array([[0, 1], [0, 0]], np.uint8)).save(tmp_path / 'b.png')
    Image.fromarray(np.array([[0, 7], [255, 0]], np.uint8)).save(tmp_path / 'c.png')
    np.testing.assert_array_equal(read_edge_gt(str(tmp_path / 'a.png')), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(read_edge_gt(str(tmp_path / 'b.png')), [[0, 1], [0, 0]])
    with pytest.raises(ValueError, match=r'c\.png: ground-truth edges must be binary'):
        read_edge_gt(str(tmp_path / 'c.png'))
    label_map = np.ones((6, 8), np.uint16)
    label_map[2:5, 3:7] = 9
    buf = io.BytesIO()
    sio.savemat(buf, dict(LabelMap=label_map))
    (tmp_path / 'd.mat').write_bytes(buf.getvalue())
    np.testing.assert_array_equal(read_edge_gt(str(tmp_path / 'd.mat')),
                                  edge_from_label_map(label_map.astype(np.int64)))
    assert find_edge_gt(str(tmp_path), 'd').endswith('d.mat')
    assert find_edge_gt(str(tmp_path), 'a').endswith('a.png')
    with pytest.raises(FileNotFoundError, match=r"'zz'.*zz\.png or .*zz\.mat"):
        find_edge_gt(str(tmp_path), 'zz')


def edge_sample(img_id, prob):
    data_sample = SegDataSample(metainfo=dict(img_path=f'data/{img_id}.jpg', img_id=img_id))
    gt = (prob > 0.5).astype(np.int64)
    data_sample.set_field(PixelData(data=torch.from_numpy(gt)[None]), 'gt_edge')
    data_sample.set_field(PixelData(data=torch.from_numpy(prob).float()[None]), 'pred_edge')
    return data_sample


def test_multitask_metric_saves_edge_pngs(tmp_path):
    out = tmp_path / 'edges'
    metric = MultiTaskMetric(tasks=('edge', ), edge_save_dir=str(out))
    prob = np.zeros((5, 7))
    prob[2, 1:6] = 0.8
    metric.process({}, [edge_sample('img_a', prob).to_dict(), edge_sample('img_b', prob / 2)])
    assert sorted(os.listdir(out)) == ['img_a.png', 'img_b.png']
    np.testing.assert_allclose(read_edge_png(str(out / 'img_a.png')), np.rint(prob * 255) / 255)
    np.testing.assert_allclose(read_edge_png(str(out / 'img_b.png')), np.rint(prob * 127.5) / 255)
    assert metric.evaluate(2)['edge/odsF'] == pytest.approx(100.0)
    with pytest.raises(ValueError, match='edge_save_dir.*no task of.*is an edge task'):
        MultiTaskMetric(tasks=('sal', ), edge_save_dir=str(out))


def test_a_declared_edge_task_gets_the_edge_options(tmp_path):
    # the options follow the task's meter, not its name: a second edge labelling declared in
    # the config takes edge_eval_ids, and each edge task saves into its own folder
    from mmase.tasks import undeclare_task
    declared = [dict(type='BinaryTask', name='edge_fine', field='edge_fine', main_metric='odsF',
                     meter=dict(type='EdgeMeter'))]
    ids = tmp_path / 'ids.txt'
    ids.write_text('img_a\n')
    try:
        metric = MultiTaskMetric(tasks=('edge', 'edge_fine'), custom_tasks=declared,
                                 edge_eval_ids=str(ids), edge_save_dir=str(tmp_path / 'e'))
        assert metric.edge_tasks == ('edge', 'edge_fine')
        prob = np.zeros((5, 7))
        prob[2, 1:6] = 0.8
        samples = []
        for name in ('img_a', 'img_b'):
            sample = edge_sample(name, prob if name == 'img_a' else 1 - prob)
            sample.set_field(sample.gt_edge.clone(), 'gt_edge_fine')
            sample.set_field(sample.pred_edge.clone(), 'pred_edge_fine')
            samples.append(sample)
        metric.process({}, samples)
        assert sorted(os.listdir(tmp_path / 'e')) == ['edge', 'edge_fine']
        assert sorted(os.listdir(tmp_path / 'e' / 'edge_fine')) == ['img_a.png', 'img_b.png']
        # img_b (inverted prediction) is not listed: both tasks count img_a only
        assert [r['edge_fine'] is None for r in metric.results] == [False, True]
        metrics = metric.evaluate(2)
        assert metrics['edge/odsF'] == pytest.approx(100.0)
        assert metrics['edge_fine/odsF'] == pytest.approx(100.0)
    finally:
        undeclare_task('edge_fine')


def test_set_edge_save_dir():
    cfg = Config(dict(test_evaluator=dict(type='MultiTaskMetric', tasks=('edge', ))))
    set_edge_save_dir(cfg, 'out/edges')
    assert cfg.test_evaluator.edge_save_dir == 'out/edges'
    cfg = Config(dict(test_evaluator=[dict(type='MultiTaskMetric'), dict(type='DumpResults')]))
    set_edge_save_dir(cfg, 'e')
    assert cfg.test_evaluator[0].edge_save_dir == 'e' and 'edge_save_dir' not in \
        cfg.test_evaluator[1]
    with pytest.raises(ValueError, match='needs a MultiTaskMetric in test_evaluator'):
        set_edge_save_dir(Config(dict(test_evaluator=dict(type='IoUMetric'))), 'e')
