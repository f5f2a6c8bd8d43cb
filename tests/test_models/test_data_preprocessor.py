"""MultiTaskDataPreProcessor: ground-truth maps padded by their image's padding (mmseg's
``stack_batch`` rule), by hand on a 4x6 image."""
import torch
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmase  # noqa: F401


def _sample(gt_hw):
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=torch.ones((1, ) + gt_hw, dtype=torch.uint8))
    sample.gt_normals = PixelData(data=torch.ones((3, ) + gt_hw))
    return sample


def test_maps_padded_by_their_image_padding():
    pre = MODELS.build(dict(type='MultiTaskDataPreProcessor', size=(6, 8)))
    image = torch.zeros(3, 4, 6, dtype=torch.uint8)
    samples = [_sample((4, 6)), _sample((9, 11))]  # training crop / test-pipeline GT
    out = pre(dict(inputs=[image, image.clone()], data_samples=samples), training=True)
    assert out['inputs'].shape == (2, 3, 6, 8)
    same, original = out['data_samples']
    assert same.padding_size == (0, 2, 0, 2)
    seg = same.gt_sem_seg.data
    assert seg.shape == (1, 6, 8) and seg[:, :4, :6].eq(1).all()
    assert seg[:, 4:].eq(255).all() and seg[:, :, 6:].eq(255).all()  # the label ignore value
    assert same.gt_normals.data.shape == (3, 6, 8) and same.gt_normals.data[:, 4:].eq(0).all()
    # a 9x11 map beside a 4x6 image (mmseg's benchmark.py on a test pipeline): its own frame,
    # padded by the image's 2 rows and 2 columns, never an error
    assert original.gt_sem_seg.data.shape == (1, 11, 13)
    assert original.gt_sem_seg.data[:, :9, :11].eq(1).all()
    assert original.gt_sem_seg.data[:, 9:].eq(255).all()


def test_no_target_padding_at_test_time():
    pre = MODELS.build(dict(type='MultiTaskDataPreProcessor', size=(6, 8)))
    out = pre(dict(inputs=[torch.zeros(3, 4, 6, dtype=torch.uint8)],
                   data_samples=[_sample((9, 11))]))
    sample = out['data_samples'][0]
    assert out['inputs'].shape == (1, 3, 4, 6) and sample.gt_sem_seg.data.shape == (1, 9, 11)
