"""The multi-task figure: legends with the dataset's names, colour bars fitted to the data, a
normals key, no ground-truth row without ground truth; raw prediction files."""
import cv2
import numpy as np
import torch
from matplotlib.legend import Legend
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmase.tasks import get_task_spec
from mmase.visualization import (MultiTaskLocalVisualizer, TaskFigure, encode_prediction,
                                 orientation_key, render_task_map, save_predictions)

META = dict(task_classes=dict(semseg=['background', 'aeroplane', 'bicycle']),
            task_palettes=dict(semseg=[[0, 0, 0], [0, 255, 0], [255, 0, 0]]))


def sample(h=16, w=20, gt=True):
    s = SegDataSample()
    s.pred_sem_seg = PixelData(data=torch.full((1, h, w), 2))
    s.set_field(PixelData(data=torch.full((1, h, w), 0.5)), 'pred_sal')
    normals = torch.zeros(3, h, w)
    normals[2] = 1.0
    s.set_field(PixelData(data=normals), 'pred_normals')
    depth = torch.linspace(1.5, 4.0, h * w).view(1, h, w)
    s.set_field(PixelData(data=depth), 'pred_depth')
    if gt:
        s.gt_sem_seg = PixelData(data=torch.full((1, h, w), 1))
        s.set_field(PixelData(data=torch.ones(1, h, w, dtype=torch.long)), 'gt_sal')
    return s


def legends(fig):
    return [t.get_text() for ax in fig.axes for child in ax.get_children()
            if isinstance(child, Legend) for t in child.get_texts()]


def test_render_each_kind_by_hand():
    palette = np.array([[0, 0, 0], [10, 20, 30], [200, 100, 0]], np.uint8)
    seg = render_task_map(get_task_spec('semseg'), np.array([[[2, 255]]]), palette)
    assert seg[0, 0].tolist() == [200, 100, 0] and seg[0, 1].tolist() == [0, 0, 0]
    sal = render_task_map(get_task_spec('sal'), np.array([[[1.0, 0.0, 255]]]))
    assert sal[0, 0].tolist() == [255] * 3 and sal[0, 1].tolist() == [0] * 3
    assert sal[0, 2].tolist() == [128, 0, 0]  # ignore shown dark red


def test_figure_keys_and_rows():
    image = np.full((16, 20, 3), 77, np.uint8)
    tasks = ['semseg', 'sal', 'normals', 'depth']
    with_gt = TaskFigure(tasks, META).draw(image, sample(gt=True))
    no_gt = TaskFigure(tasks, META).draw(image, sample(gt=False))
    # input + 4 tasks per row; 2 rows with ground truth, 1 without (plus the key axes)
    images = lambda fig: [ax for ax in fig.axes if ax.images and ax.get_title() != '']  # noqa
    assert len([ax for ax in with_gt.axes if ax.get_ylabel() == 'ground truth']) == 1
    assert not [ax for ax in no_gt.axes if ax.get_ylabel() == 'ground truth']
    assert len(images(no_gt)) == 5
    # legend: the dataset's names of the classes present (background left out)
    assert legends(with_gt) == ['aeroplane', 'bicycle']  # equal counts: class order
    assert legends(no_gt) == ['bicycle']
    # colour bars: saliency 0..1, depth fitted to the data in metres
    bars = {ax.get_xlabel(): ax.get_xlim() for ax in no_gt.axes if ax.get_xlabel()}
    assert bars['foreground probability'] == (0.0, 1.0)
    np.testing.assert_allclose(bars['depth (m)'], (1.5, 4.0), rtol=1e-6)
    # captions readable at 100 %: 10 pt
    titles = [ax.title for ax in no_gt.axes if ax.get_title()]
    assert {t.get_text() for t in titles} >= {'input', 'semantic seg.', 'surface normals'}
    assert min(t.get_fontsize() for t in titles) >= 10


def test_orientation_key_colours():
    key = orientation_key(65)
    assert key[32, 32].tolist() == [128, 128, 255]  # facing the viewer: (0, 0, 1)
    assert key[32, 63][0] > 240 and key[1, 32][1] > 200  # +x right is red, +y up is green
    assert key[0, 0].tolist() == [255, 255, 255]
    down = orientation_key(65, y_up=False)
    assert down[1, 32][1] < 60 and down[63, 32][1] > 200  # +y down the image is green


def test_add_datasample_overlays_segmentation(tmp_path):
    vis = MultiTaskLocalVisualizer(name='mt_vis_test', dpi=50)
    vis.dataset_meta = dict(META, tasks=['semseg', 'sal'])
    image = np.full((16, 20, 3), 77, np.uint8)
    out = tmp_path / 'vis.png'
    vis.add_datasample('x', image, data_sample=sample(gt=False), out_file=str(out))
    canvas = cv2.imread(str(out))[..., ::-1]
    assert canvas.shape == vis.get_image().shape
    # the semseg panel blends class 2 (red) over the grey image: 0.4 * 77 + 0.6 * 255
    blended = [round(0.4 * 77 + 0.6 * 255), round(0.4 * 77), round(0.4 * 77)]
    hits = (np.abs(canvas.astype(int) - blended).max(axis=2) <= 2).sum()
    assert hits > 100
    vis.add_datasample('x', image, data_sample=sample(), out_file=str(tmp_path / 'vis.pdf'))
    assert (tmp_path / 'vis.pdf').read_bytes()[:4] == b'%PDF'


def test_encode_and_save_predictions(tmp_path):
    depth = np.array([[[1.2346, 0.0, 70.0]]], np.float32)
    array, suffix = encode_prediction(get_task_spec('depth'), depth)
    assert suffix == '.png' and array.dtype == np.uint16 and array.tolist() == [[1235, 0, 65535]]
    normals = np.array([[[0.0]], [[-1.0]], [[1.0]]], np.float32)
    assert encode_prediction(get_task_spec('normals'), normals)[0][0, 0].tolist() == [128, 0, 255]
    s = sample(gt=False)
    written = save_predictions(s, ['semseg', 'depth'], str(tmp_path), 'img1')
    stored = cv2.imread(written['depth'], cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.uint16 and stored[0, 0] == 1500 and stored[-1, -1] == 4000
    assert cv2.imread(written['semseg'], cv2.IMREAD_UNCHANGED).max() == 2


def test_mmseg_browse_dataset_call_on_a_packed_sample(tmp_path):
    """mmseg's tools/analysis_tools/browse_dataset.py: ``add_datasample(name, img,
    item['data_samples'].numpy(), draw_gt=True, draw_pred=False, ...)``."""
    vis = MultiTaskLocalVisualizer(name='mt_vis_browse', dpi=40)
    vis.dataset_meta = dict(META, tasks=['semseg', 'sal'])
    s = sample(gt=True)
    out = tmp_path / 'b.png'
    vis.add_datasample('b', np.zeros((16, 20, 3), np.uint8), s.numpy(), draw_gt=True,
                       draw_pred=False, wait_time=0, out_file=str(out), show=False)
    assert cv2.imread(str(out)) is not None
    fig = vis.draw_multitask(np.zeros((16, 20, 3), np.uint8), s.numpy())
    assert legends(fig) == ['aeroplane', 'bicycle']


def test_a_declared_regression_task_gets_a_colour_bar_and_a_float_file(tmp_path):
    from mmase.tasks import declare_tasks, undeclare_task
    declare_tasks([dict(type='RegressionTask', name='toy_flow', channels=2, ignore_value=-1.0,
                        main_metric='mae', meter=dict(type='PixelErrorMeter'))], 'test')
    try:
        s = SegDataSample()
        flow = torch.linspace(-2.0, 3.0, 2 * 16 * 20).view(2, 16, 20)
        s.set_field(PixelData(data=flow), 'pred_toy_flow')
        fig = TaskFigure(['toy_flow']).draw(np.zeros((16, 20, 3), np.uint8), s)
        bars = {ax.get_xlabel(): ax.get_xlim() for ax in fig.axes if ax.get_xlabel()}
        np.testing.assert_allclose(bars['toy_flow (channel 0)'],
                                   (-2.0, float(flow[0].max())), rtol=1e-6)
        written = save_predictions(s, ['toy_flow'], str(tmp_path), 'a')
        np.testing.assert_array_equal(np.load(written['toy_flow']), flow.numpy())
    finally:
        undeclare_task('toy_flow')
