"""PackMultiTaskInputs produces the data contract; IgnoreEmptyHumanParts."""
import numpy as np
import torch
from mmseg.structures import SegDataSample

from mmase.datasets import IgnoreEmptyHumanParts, MultiTaskRandomFlip, PackMultiTaskInputs


def sample():
    img = np.zeros((4, 6, 3), np.uint8)
    img[..., 0] = 10  # B
    img[..., 2] = 200  # R
    normals = np.zeros((4, 6, 3), np.float32)
    normals[..., 2] = 1
    normals[0, 0] = 0  # invalid
    return dict(img=img, img_path='a/x.jpg', img_id='x', ori_shape=(4, 6), img_shape=(4, 6),
                tasks=('semseg', 'sal', 'normals'),
                task_fields=['gt_sem_seg', 'gt_sal', 'gt_normals'],
                gt_sem_seg=np.full((4, 6), 3, np.uint8), gt_sal=np.eye(4, 6, dtype=np.uint8),
                gt_normals=normals)


def test_pack_contract():
    packed = PackMultiTaskInputs()(sample())
    inputs, ds = packed['inputs'], packed['data_samples']
    assert isinstance(ds, SegDataSample)
    assert inputs.dtype == torch.uint8 and inputs.shape == (3, 4, 6)
    assert inputs[0, 0, 0] == 10 and inputs[2, 0, 0] == 200  # BGR kept
    assert ds.gt_sem_seg.data.dtype == torch.int64 and ds.gt_sem_seg.data.shape == (1, 4, 6)
    assert torch.all(ds.gt_sem_seg.data == 3)
    assert ds.gt_sal.data.dtype == torch.int64
    assert torch.equal(ds.gt_sal.data[0], torch.eye(4, 6, dtype=torch.int64))
    n = ds.gt_normals.data
    assert n.dtype == torch.float32 and n.shape == (3, 4, 6)
    assert torch.all(n[:, 0, 0] == 0) and torch.all(n[2, 1:] == 1)
    assert 'gt_edge' not in ds
    assert ds.metainfo == dict(img_path='a/x.jpg', img_id='x', ori_shape=(4, 6),
                               img_shape=(4, 6), pad_shape=(4, 6), scale_factor=(1.0, 1.0),
                               flip=False, flip_direction=None,
                               tasks=('semseg', 'sal', 'normals'))


def test_pack_flipped_views_and_meta():
    r = MultiTaskRandomFlip(prob=1.0)(sample())
    packed = PackMultiTaskInputs(meta_keys=('img_id', 'flip', 'flip_direction'))(r)
    ds = packed['data_samples']
    assert ds.metainfo == dict(img_id='x', flip=True, flip_direction='horizontal')
    assert torch.equal(ds.gt_sal.data[0], torch.from_numpy(np.eye(4, 6)[:, ::-1].copy()).long())


def test_ignore_empty_human_parts():
    t = IgnoreEmptyHumanParts()
    empty = t(dict(gt_human_parts=np.array([[0, 0], [255, 0]], np.uint8)))
    np.testing.assert_array_equal(empty['gt_human_parts'], 255)
    some = np.array([[0, 2], [255, 0]], np.uint8)
    np.testing.assert_array_equal(t(dict(gt_human_parts=some.copy()))['gt_human_parts'], some)
    assert t(dict(gt_sal=np.zeros((2, 2), np.uint8)))['gt_sal'].max() == 0
