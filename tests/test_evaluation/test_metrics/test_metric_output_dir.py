"""MultiTaskMetric(output_dir=...): what mmseg's ``tools/test.py --out DIR`` asks of a metric
(it sets ``output_dir`` and ``keep_results``); files checked by hand."""
import cv2
import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample

from mmase.tasks import TASK_SPECS


def test_output_dir_writes_each_task_prediction(tmp_path):
    metric = METRICS.build(dict(type='MultiTaskMetric', tasks=['semseg', 'sal'],
                                output_dir=str(tmp_path), keep_results=True))
    metric.dataset_meta = dict(task_classes=dict(semseg=('background', 'a', 'b')))
    sample = SegDataSample(metainfo=dict(img_path='d/JPEGImages/2008_000001.jpg',
                                         img_id='2008_000001'))
    maps = dict(semseg=(torch.tensor([[[0, 1], [1, 2]]]), torch.tensor([[[0, 1], [2, 255]]])),
                sal=(torch.tensor([[[0.8, 0.28], [0.1, 1.0]]]), torch.tensor([[[1, 0], [0, 0]]])))
    for task, (pred, gt) in maps.items():
        sample.set_field(PixelData(data=pred), TASK_SPECS[task].pred_field)
        sample.set_field(PixelData(data=gt), TASK_SPECS[task].gt_field)
    metric.process(None, [sample.to_dict()])  # as mmengine's Evaluator passes them
    semseg = cv2.imread(str(tmp_path / 'semseg' / '2008_000001.png'), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(semseg, [[0, 1], [1, 2]])  # class ids
    sal = cv2.imread(str(tmp_path / 'sal' / '2008_000001.png'), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(sal, [[204, 71], [26, 255]])  # round(255 p)
    assert metric.compute_metrics(metric.results)['semseg/mIoU'] > 0  # still evaluates
