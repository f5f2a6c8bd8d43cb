"""MultiTaskLocalVisualizer writes a PNG with input, and prediction beside ground truth per task."""
import cv2
import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmase.tasks import TASK_SPECS
from mmase.visualization import MultiTaskLocalVisualizer, render_task_map

CAPTION = 14  # px of the caption bar above every cell


def sample(h=16, w=20):
    s = SegDataSample()
    s.pred_sem_seg = PixelData(data=torch.full((1, h, w), 2))
    s.gt_sem_seg = PixelData(data=torch.full((1, h, w), 1))
    s.set_field(PixelData(data=torch.full((1, h, w), 0.5)), 'pred_sal')
    s.set_field(PixelData(data=torch.ones(1, h, w, dtype=torch.long)), 'gt_sal')
    normals = torch.zeros(3, h, w)
    normals[2] = 1.0
    s.set_field(PixelData(data=normals), 'pred_normals')
    return s


def test_render_each_kind_by_hand():
    palette = np.array([[0, 0, 0], [10, 20, 30], [200, 100, 0]], np.uint8)
    seg = render_task_map(TASK_SPECS['semseg'], np.array([[[2, 255]]]), palette)
    assert seg[0, 0].tolist() == [200, 100, 0] and seg[0, 1].tolist() == [0, 0, 0]
    sal = render_task_map(TASK_SPECS['sal'], np.array([[[1.0, 0.0, 255]]]))
    assert sal[0, 0].tolist() == [255] * 3 and sal[0, 1].tolist() == [0] * 3
    assert sal[0, 2].tolist() == [128, 0, 0]  # ignore shown dark red
    n = render_task_map(TASK_SPECS['normals'], np.array([[[0.0]], [[0.0]], [[1.0]]]))
    assert n[0, 0].tolist() == [127, 127, 255]


def test_add_datasample_writes_grid_png(tmp_path):
    vis = MultiTaskLocalVisualizer(name='mt_vis_test')
    vis.dataset_meta = dict(task_palettes=dict(
        semseg=[[0, 0, 0], [0, 255, 0], [255, 0, 0]]))
    image = np.full((16, 20, 3), 77, np.uint8)
    out = tmp_path / 'vis.png'
    vis.add_datasample('x', image, data_sample=sample(), out_file=str(out))
    canvas = cv2.imread(str(out))[..., ::-1]
    # rows: input, semseg, sal, normals; each cell 14 + 16 px high, two cells wide
    assert canvas.shape == (4 * (CAPTION + 16), 2 * 20, 3)
    row = lambda r: CAPTION + r * (CAPTION + 16) + 8  # noqa: E731  (middle of row r)
    assert canvas[row(0), 5].tolist() == [77, 77, 77]  # the input
    assert canvas[row(1), 5].tolist() == [255, 0, 0]  # semseg pred = class 2
    assert canvas[row(1), 25].tolist() == [0, 255, 0]  # semseg gt = class 1
    assert canvas[row(2), 5].tolist() == [127, 127, 127]  # saliency probability 0.5
    assert canvas[row(3), 25].tolist() == [0, 0, 0]  # no normals gt: empty cell
