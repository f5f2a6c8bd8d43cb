"""Per-class IoU / Acc tables (mmseg's ``IoUMetric`` table) from the segmentation meter's own
confusion matrix: hand-computed scores, the metric's log and ``per_class_results``, the human-parts
rule coming from the task's meter, and ``SaveMetricsHook`` writing ``per_class_iou.json``."""
import json
import types

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmase.engine import SaveMetricsHook
from mmase.evaluation import MultiTaskMetric
from mmase.evaluation.metrics import SegmentationMeter, class_scores, class_table


def test_class_scores_by_hand():
    meter = SegmentationMeter(num_classes=3)
    gt = np.array([[0, 0, 1, 1, 255, 2]])
    pred = np.array([[0, 1, 1, 1, 0, 0]])
    records = [meter.process(pred, gt)]
    assert meter.confusion(records).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]  # 255 left out
    scores = meter.class_scores(records)
    # class 0: TP 1, FP 1 (the class-2 pixel), FN 1 -> 1/3; Acc 1/2
    np.testing.assert_allclose(scores['IoU'], [100 / 3, 200 / 3, 0.0])
    np.testing.assert_allclose(scores['Acc'], [50.0, 100.0, 0.0])
    # the mean of the table is the meter's mIoU
    assert meter.compute(records)['mIoU'] == pytest.approx(np.mean(scores['IoU']))
    table = class_table(scores, ['bg', 'a', 'b']).get_string()
    assert '|   bg  | 33.33 | 50.00  |' in table and '|   a   | 66.67 | 100.00 |' in table


def test_undefined_scores_are_nan_and_names_must_match():
    scores = class_scores(np.array([[2, 0], [0, 0]]))  # class 1 neither labelled nor predicted
    assert scores['IoU'][0] == 100.0 and np.isnan(scores['IoU'][1]) and np.isnan(scores['Acc'][1])
    assert 'nan' in class_table(scores, ['x', 'y']).get_string()
    with pytest.raises(ValueError, match='3 class names for 2 classes'):
        class_table(scores, ['x', 'y', 'z'])


def _sample(name, task_field, gt, pred):
    s = SegDataSample(metainfo=dict(img_path=f'{name}.jpg', img_id=name))
    s.set_field(PixelData(data=torch.tensor(gt)[None]), f'gt_{task_field}')
    s.set_field(PixelData(data=torch.tensor(pred)[None]), f'pred_{task_field}')
    return s


def test_metric_logs_the_table_and_keeps_per_class_results(capsys):
    MMLogger.get_instance('mmase_test_per_class', log_level='INFO')
    metric = MultiTaskMetric(tasks=('semseg', 'human_parts'))
    metric.dataset_meta = dict(task_classes=dict(semseg=['bg', 'cat'],
                                                 human_parts=['bg', 'head', 'torso']))
    samples = [
        {**_sample('a', 'sem_seg', [[0, 1]], [[0, 0]]).to_dict(),
         **_sample('a', 'human_parts', [[0, 0]], [[2, 2]]).to_dict()},  # no part: left out
        {**_sample('b', 'sem_seg', [[1, 1]], [[1, 1]]).to_dict(),
         **_sample('b', 'human_parts', [[1, 2]], [[1, 1]]).to_dict()},
    ]
    metric.process({}, samples)
    metrics = metric.compute_metrics(metric.results)
    per_class = metric.per_class_results
    # semseg: bg TP 1 FP 1 -> 50; cat TP 2 FN 1 -> 66.67; mean = the metric's mIoU
    assert per_class['semseg']['bg']['IoU'] == pytest.approx(50.0)
    assert per_class['semseg']['cat']['IoU'] == pytest.approx(200 / 3)
    assert metrics['semseg/mIoU'] == pytest.approx((50 + 200 / 3) / 2)
    # human_parts: image 'a' (no part pixel) is skipped as by the parts metric: bg never seen
    assert per_class['human_parts']['bg'] == dict(IoU=None, Acc=None)
    assert per_class['human_parts']['head']['IoU'] == pytest.approx(50.0)
    assert per_class['human_parts']['torso'] == dict(IoU=0.0, Acc=0.0)
    out = capsys.readouterr().out
    assert 'per class results (semseg)' in out and 'per class results (human_parts)' in out


def test_save_metrics_hook_writes_per_class_json(tmp_path):
    metric = types.SimpleNamespace(per_class_results={'semseg': {'bg': dict(IoU=50.0, Acc=1.0)}})
    runner = types.SimpleNamespace(work_dir=str(tmp_path), iter=0, epoch=0, _train_loop=None,
                                   _test_loop=types.SimpleNamespace(
                                       evaluator=types.SimpleNamespace(metrics=[metric])))
    SaveMetricsHook().after_test_epoch(runner, {'semseg/mIoU': 50.0})
    assert json.load(open(tmp_path / 'per_class_iou.json')) == metric.per_class_results
    assert json.load(open(tmp_path / 'metrics_test.json')) == {'semseg/mIoU': 50.0}
