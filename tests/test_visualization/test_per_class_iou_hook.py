"""Per-class IoU tables: hand-computed confusion matrix, scores, and each image counted once."""
import types

import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmase.visualization import PerClassIoUHook, confusion_matrix, iou_table, per_class_scores


def test_confusion_matrix_and_scores_by_hand():
    gt = torch.tensor([[0, 0, 1, 1, 255, 2]])
    pred = torch.tensor([[0, 1, 1, 1, 0, 0]])
    matrix = confusion_matrix(gt, pred, 3, 255)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]  # the 255 pixel left out
    scores = per_class_scores(matrix)
    np.testing.assert_allclose(scores['IoU'], [100 / 3, 200 / 3, 0.0])
    np.testing.assert_allclose(scores['Acc'], [50.0, 100.0, 0.0])
    table = iou_table(matrix, ['bg', 'a', 'b']).get_string()
    assert '33.33' in table and '66.67' in table


def sample(path, gt, pred):
    s = SegDataSample(metainfo=dict(img_path=path))
    s.gt_sem_seg = PixelData(data=torch.tensor(gt)[None])
    s.pred_sem_seg = PixelData(data=torch.tensor(pred)[None])
    return s


def test_hook_counts_each_image_once_and_writes_json(tmp_path):
    hook = PerClassIoUHook()
    dataset = types.SimpleNamespace(metainfo=dict(task_classes=dict(semseg=['bg', 'a'])))
    model = types.SimpleNamespace(tasks=('semseg', ))
    runner = types.SimpleNamespace(test_dataloader=types.SimpleNamespace(dataset=dataset),
                                   model=model, rank=0, work_dir=str(tmp_path))
    hook.before_test(runner)
    one = sample('a.jpg', [[0, 1]], [[0, 0]])
    hook.after_test_iter(runner, 0, outputs=[one, sample('b.jpg', [[1, 1]], [[1, 1]])])
    hook.after_test_iter(runner, 1, outputs=[one])  # a sampler's repeated image
    hook.after_test_epoch(runner)
    import json
    report = json.load(open(tmp_path / 'per_class_iou.json'))
    # bg: TP 1, FP 1 -> 50; a: TP 2, FN 1 -> 66.67
    assert round(report['semseg']['bg']['IoU'], 2) == 50.0
    assert round(report['semseg']['a']['IoU'], 2) == 66.67
