"""The MultiTask* geometric transforms keep every task map aligned with the image."""
import numpy as np
import pytest
from mmengine.dataset import Compose

from mmase.datasets import (MultiTaskPad, MultiTaskRandomCrop, MultiTaskRandomFlip,
                            MultiTaskRandomResize, MultiTaskResize)

H, W = 40, 50
FIELDS = ['gt_sem_seg', 'gt_human_parts', 'gt_sal', 'gt_edge', 'gt_normals']


def coord_sample():
    """Image and maps that encode each pixel's coordinates: img B = x, G = y; semseg = x,
    parts = y, sal = (x + y) % 2, edge = x % 2, normals = (0.1 + x / 100, y / 100, 1)."""
    y, x = np.mgrid[0:H, 0:W]
    img = np.stack([x, y, np.zeros_like(x)], -1).astype(np.uint8)
    normals = np.stack([0.1 + x / 100, y / 100, np.ones_like(x, float)], -1).astype(np.float32)
    return dict(img=img, img_shape=(H, W), ori_shape=(H, W), task_fields=list(FIELDS),
                gt_sem_seg=x.astype(np.uint8), gt_human_parts=y.astype(np.uint8),
                gt_sal=((x + y) % 2).astype(np.uint8), gt_edge=(x % 2).astype(np.uint8),
                gt_normals=normals)


def assert_aligned(r, flipped_x=False, region=None):
    """Every map still encodes the coordinates the image encodes (within ``region``)."""
    sl = region if region is not None else (slice(None), slice(None))
    x = r['img'][..., 0][sl].astype(int)
    y = r['img'][..., 1][sl].astype(int)
    np.testing.assert_array_equal(r['gt_sem_seg'][sl], x)
    np.testing.assert_array_equal(r['gt_human_parts'][sl], y)
    np.testing.assert_array_equal(r['gt_sal'][sl], (x + y) % 2)
    np.testing.assert_array_equal(r['gt_edge'][sl], x % 2)
    sign = -1 if flipped_x else 1
    np.testing.assert_allclose(r['gt_normals'][sl][..., 0], sign * (0.1 + x / 100), atol=1e-6)
    np.testing.assert_allclose(r['gt_normals'][sl][..., 1], y / 100, atol=1e-6)


def test_crop_keeps_alignment():
    np.random.seed(0)
    for _ in range(5):
        r = MultiTaskRandomCrop(crop_size=(16, 24))(coord_sample())
        assert r['img'].shape == (16, 24, 3) and r['img_shape'] == (16, 24)
        for key in FIELDS:
            assert r[key].shape[:2] == (16, 24)
        assert_aligned(r)
        x0, y0 = r['img'][0, 0, :2]
        assert np.all(np.diff(r['img'][0, :, 0].astype(int)) == 1)  # a contiguous window
        assert 0 <= x0 <= W - 24 and 0 <= y0 <= H - 16
    small = MultiTaskRandomCrop(crop_size=64)(coord_sample())  # larger than the image
    assert small['img'].shape[:2] == (H, W)


def test_crop_cat_max_ratio():
    # semseg: class 1 on columns 0-9, class 0 on 10-19 of a 20x20 map. A 10x10 window at
    # x1 = 0 (all 1) or x1 = 10 (all 0) has one class only: cat_max_ratio rejects those.
    def sample():
        seg = np.zeros((20, 20), np.uint8)
        seg[:, :10] = 1
        return dict(img=np.zeros((20, 20, 3), np.uint8), gt_sem_seg=seg,
                    task_fields=['gt_sem_seg'])
    np.random.seed(1)
    crop = MultiTaskRandomCrop(crop_size=10, cat_max_ratio=0.95)
    for _ in range(30):
        seg = crop(sample())['gt_sem_seg']
        assert 0 < seg.mean() < 1
    with pytest.raises(ValueError, match='cat_max_ratio'):
        MultiTaskRandomCrop(crop_size=10, cat_max_ratio=0)


def test_horizontal_flip_negates_normals_x():
    r = MultiTaskRandomFlip(prob=1.0)(coord_sample())
    assert r['flip'] is True and r['flip_direction'] == 'horizontal'
    assert r['img'][0, 0, 0] == W - 1 and r['gt_sem_seg'][0, 0] == W - 1
    assert_aligned(r, flipped_x=True)
    r = MultiTaskRandomFlip(prob=0.0)(coord_sample())
    assert r['flip'] is False and r['flip_direction'] is None
    assert_aligned(r)


def test_vertical_flip_negates_normals_y():
    r = MultiTaskRandomFlip(prob=1.0, direction='vertical')(coord_sample())
    assert r['gt_human_parts'][0, 0] == H - 1
    y = r['img'][..., 1].astype(int)
    np.testing.assert_array_equal(r['gt_human_parts'], y)
    np.testing.assert_allclose(r['gt_normals'][..., 1], -y / 100, atol=1e-6)
    np.testing.assert_allclose(r['gt_normals'][..., 0], 0.1 + r['img'][..., 0] / 100,
                               atol=1e-6)
    with pytest.raises(ValueError, match='direction'):
        MultiTaskRandomFlip(direction='diagonal')


def test_pad_uses_each_task_ignore_value():
    r = MultiTaskPad(size=(48, 60), pad_val=7)(coord_sample())
    assert r['img'].shape == (48, 60, 3)
    assert r['pad_shape'] == (48, 60) and r['img_shape'] == (H, W)
    assert_aligned(r, region=(slice(0, H), slice(0, W)))
    for key in ('gt_sem_seg', 'gt_human_parts', 'gt_sal', 'gt_edge'):
        assert r[key].shape == (48, 60)
        assert np.all(r[key][H:] == 255) and np.all(r[key][:, W:] == 255)
    assert np.all(r['gt_normals'][H:] == 0) and np.all(r['gt_normals'][:, W:] == 0)
    assert np.all(r['img'][H:] == 7) and np.all(r['img'][:, W:] == 7)
    r = MultiTaskPad(size_divisor=16)(coord_sample())
    assert r['pad_shape'] == (48, 64) and r['gt_sem_seg'].shape == (48, 64)
    with pytest.raises(ValueError, match='larger than size'):
        MultiTaskPad(size=(32, 64))(coord_sample())
    with pytest.raises(ValueError, match='exactly one'):
        MultiTaskPad(size=(48, 64), size_divisor=16)


def block_sample(h=64, w=80, block=8):
    """Image and maps made of 8x8 blocks, each with its own code (0..79) in every map."""
    y, x = np.mgrid[0:h, 0:w]
    code = (y // block) * (w // block) + x // block
    img = np.repeat(code[..., None], 3, -1).astype(np.uint8)
    normals = np.stack([code / 100, np.zeros_like(code, float), np.ones_like(code, float)],
                       -1).astype(np.float32)
    return dict(img=img, img_shape=(h, w), ori_shape=(h, w), task_fields=list(FIELDS),
                gt_sem_seg=code.astype(np.uint8), gt_human_parts=code.astype(np.uint8),
                gt_sal=(code % 2).astype(np.uint8), gt_edge=(code % 3 == 0).astype(np.uint8),
                gt_normals=normals)


def interior(seg, radius=1):
    """Pixels whose (2 radius + 1)^2 neighbourhood holds one value (never the border rows
    and columns: what lay beyond a crop border is unknown)."""
    from scipy.ndimage import maximum_filter, minimum_filter
    size = 2 * radius + 1
    return (maximum_filter(seg, size=size, mode='constant', cval=255) == minimum_filter(
        seg, size=size, mode='constant', cval=0))


def assert_blocks_aligned(r):
    code = r['gt_sem_seg']
    inside = interior(code) & (code != 255)
    assert inside.sum() > 0.2 * code.size
    np.testing.assert_array_equal(r['img'][..., 0][inside], code[inside])
    np.testing.assert_array_equal(r['gt_human_parts'], code)
    np.testing.assert_array_equal(r['gt_sal'][code != 255], code[code != 255] % 2)
    np.testing.assert_array_equal(r['gt_edge'][code != 255], code[code != 255] % 3 == 0)
    valid = code != 255
    np.testing.assert_allclose(np.abs(r['gt_normals'][..., 0][valid]), code[valid] / 100,
                               atol=1e-6)


@pytest.mark.parametrize('scale,keep_ratio,expected', [
    ((160, 160), True, (128, 160)),   # 64x80 -> long edge 160
    ((40, 40), True, (32, 40)),       # downscale by 2
    ((100, 50), False, (50, 100)),    # exact (w, h)
])
def test_resize_keeps_alignment(scale, keep_ratio, expected):
    r = MultiTaskResize(scale=scale, keep_ratio=keep_ratio)(block_sample())
    assert r['img'].shape[:2] == expected and r['img_shape'] == expected
    for key in FIELDS:
        assert r[key].shape[:2] == expected, key
    assert r['scale_factor'] == (expected[1] / 80, expected[0] / 64)
    assert r['keep_ratio'] is keep_ratio
    assert r['gt_sem_seg'].dtype == np.uint8 and r['gt_normals'].dtype == np.float32
    assert_blocks_aligned(r)


def test_resize_before_annotations_touches_only_the_image():
    img = block_sample()['img']
    r = MultiTaskResize(scale=(40, 40))(dict(img=img, img_shape=(64, 80), ori_shape=(64, 80)))
    assert r['img'].shape == (32, 40, 3) and r['ori_shape'] == (64, 80)
    r = MultiTaskResize(scale_factor=0.5)(dict(img=img))
    assert r['img'].shape == (32, 40, 3) and r['scale_factor'] == (0.5, 0.5)


def test_random_resize_range():
    np.random.seed(3)
    sizes = set()
    for _ in range(10):
        r = MultiTaskRandomResize(scale=(80, 80), ratio_range=(0.5, 2.0))(block_sample())
        h, w = r['img'].shape[:2]
        assert 40 <= w <= 160 and abs(h - w * 64 / 80) <= 1
        for key in FIELDS:
            assert r[key].shape[:2] == (h, w)
        sizes.add(w)
    assert len(sizes) > 5
    with pytest.raises(ValueError, match='ratio_range'):
        MultiTaskRandomResize(scale=(80, 80), ratio_range=(2.0, 1.0))


def test_full_training_chain_keeps_alignment():
    pipeline = Compose([
        dict(type='MultiTaskRandomResize', scale=(80, 80), ratio_range=(0.75, 2.0)),
        dict(type='MultiTaskRandomCrop', crop_size=(48, 48)),
        dict(type='MultiTaskRandomFlip', prob=0.5),
        dict(type='MultiTaskPad', size=(64, 64)),
    ])
    np.random.seed(0)
    flips = set()
    for _ in range(12):
        r = pipeline(block_sample())
        assert r['img'].shape == (64, 64, 3)
        assert r['pad_shape'] == (64, 64) and r['img_shape'] == (48, 48)
        assert np.all(r['gt_sem_seg'][48:] == 255)
        assert_blocks_aligned(r)
        # normals x sign tells whether the sample was flipped
        n_x = r['gt_normals'][:48, :48, 0]
        nonzero = np.abs(n_x) > 0
        assert np.all(np.sign(n_x[nonzero]) == (-1 if r['flip'] else 1))
        flips.add(r['flip'])
    assert flips == {True, False}


def test_photometric_distortion_changes_only_the_image():
    pipeline = Compose([dict(type='PhotoMetricDistortion'), dict(type='MultiTaskRandomFlip',
                                                                    prob=1.0)])
    np.random.seed(0)
    r = pipeline(coord_sample())
    assert r['img'].dtype == np.uint8
    ref = MultiTaskRandomFlip(prob=1.0)(coord_sample())
    for key in FIELDS:
        np.testing.assert_array_equal(r[key], ref[key])


def test_unknown_task_field_is_an_error():
    bad = dict(img=np.zeros((4, 4, 3), np.uint8), task_fields=['gt_bogus'],
               gt_bogus=np.zeros((4, 4)))
    with pytest.raises(KeyError, match='gt_bogus'):
        MultiTaskRandomFlip(prob=1.0)(bad)
