"""BinaryHead and DenseRegressionHead built from dicts, on tiny multi-level inputs."""
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

COMMON = dict(in_channels=[8, 8], in_index=[0, 1], channels=4, input_transform='resize_concat',
              num_convs=1, concat_input=False, dropout_ratio=0.0)


def feats():
    return [torch.randn(2, 8, 8, 8), torch.randn(2, 8, 4, 4)]


def samples(data):
    out = []
    for d in data:
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=d)
        out.append(s)
    return out


def test_binary_head_shapes_and_loss():
    head = MODELS.build(dict(type='BinaryHead', **COMMON))
    assert head(feats()).shape == (2, 1, 8, 8)
    gt = torch.randint(0, 2, (2, 1, 16, 16))
    gt[:, :, :2] = 255
    losses = head.loss(feats(), samples(gt), None)
    assert set(losses) == {'loss_bce'} and losses['loss_bce'] > 0


def test_binary_head_rejects_num_classes():
    with pytest.raises(ValueError, match='num_classes is fixed'):
        MODELS.build(dict(type='BinaryHead', num_classes=2, **COMMON))


def test_regression_head_normals_and_depth():
    normals = MODELS.build(dict(type='DenseRegressionHead', **COMMON))
    assert normals(feats()).shape == (2, 3, 8, 8)
    gt = torch.nn.functional.normalize(torch.randn(2, 3, 16, 16), dim=1)
    assert 'loss_normals' in normals.loss(feats(), samples(gt), None)
    depth = MODELS.build(dict(type='DenseRegressionHead', out_channels=1,
                              loss_decode=dict(type='DepthL1Loss'), **COMMON))
    out = depth.loss(feats(), samples(torch.rand(2, 1, 16, 16) + 0.5), None)
    assert set(out) == {'loss_depth'}
    out['loss_depth'].backward()
    assert depth.conv_seg.weight.grad is not None
