"""NYUDv2MTDataset and the NYUD label decoders: both archive variants against hand-made
files, depth through the geometric transforms, build-time errors, the whole pipeline."""
import io
import logging
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmcv.transforms import LoadImageFromFile
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.structures import PixelData
from mmseg.registry import DATASETS

from mmase.datasets import (LoadMultiTaskAnnotations, MultiTaskPad, MultiTaskRandomCrop,
                            MultiTaskRandomFlip, MultiTaskResize, NYUDv2MTDataset,
                            PascalContextMTDataset)
from mmase.datasets.nyud_labels import (NYUD_CLASSES, NYUD_PALETTE, decode_depth,
                                        decode_nyud_edge, decode_nyud_normals,
                                        decode_nyud_semseg)
from mmase.datasets.toy_nyud_mt import make_toy_nyud_mt
from .helpers import png_bytes, write

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TASKS = ('semseg', 'depth', 'normals', 'edge')
H, W = 6, 8


def npy_bytes(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr))
    return buf.getvalue()


# ---------------------------------------------------------------- hand-made labels

def hand_labels(k: int) -> dict:
    """Small label arrays of id ``k``, written to files by :func:`make_tree`."""
    y, x = np.mgrid[0:H, 0:W]
    seg = ((x + 5 * y + k) % 41).astype(np.uint8)  # every stored value 0..40 appears
    depth = (0.5 + 0.25 * x + 1.5 * y + k).astype(np.float32)
    depth[1, 2] = 0.0  # invalid
    normals = np.zeros((H, W, 3), np.float32)
    normals[..., 2] = 1.0
    normals[:, :4] = [0.6, 0.0, 0.8]
    normals[2, 3] = 0.0  # invalid
    edge = ((x + y + k) % 3 == 0).astype(np.uint8)
    img = np.stack([x * 30, y * 40, np.full_like(x, 100 + k)], -1).astype(np.uint8)
    return dict(img=img, seg=seg, depth=depth, normals=normals, edge=edge)


def make_tree(root, variants: dict) -> dict:
    """A NYUDv2 tree with one id per entry of ``variants`` (id -> 'mtinet' | 'invpt');
    gt_sets/train.txt lists all ids, gt_sets/val.txt the last one. Returns the arrays."""
    for d in ('images', 'segmentation', 'depth', 'normals', 'edge', 'gt_sets'):
        os.makedirs(osp.join(root, d), exist_ok=True)
    arrays = {}
    for k, (img_id, variant) in enumerate(variants.items()):
        a = arrays[img_id] = hand_labels(k)
        ext = '.jpg' if variant == 'mtinet' else '.png'
        params = [cv2.IMWRITE_JPEG_QUALITY, 100] if ext == '.jpg' else []
        ok, img = cv2.imencode(ext, a['img'], params)
        write(osp.join(root, 'images', img_id + ext), img.tobytes())
        write(osp.join(root, 'segmentation', img_id + '.png'), png_bytes(a['seg'], 'L'))
        write(osp.join(root, 'depth', img_id + '.npy'), npy_bytes(a['depth']))
        if variant == 'mtinet':
            write(osp.join(root, 'normals', img_id + '.npy'), npy_bytes(a['normals']))
            write(osp.join(root, 'edge', img_id + '.npy'), npy_bytes(a['edge'].astype(
                np.float32)))
        else:
            rgb = np.round((a['normals'] + 1) / 2 * 255)
            write(osp.join(root, 'normals', img_id + '.png'), png_bytes(rgb, 'RGB'))
            write(osp.join(root, 'edge', img_id + '.png'), png_bytes(a['edge'] * 255, 'L'))
    ids = list(variants)
    with open(osp.join(root, 'gt_sets', 'train.txt'), 'w') as f:
        f.write('\n'.join(ids) + '\n')
    with open(osp.join(root, 'gt_sets', 'val.txt'), 'w') as f:
        f.write(ids[-1] + '\n')
    return arrays


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / 'NYUDv2'
    arrays = make_tree(str(root), dict(m01='mtinet', p02='invpt'))
    return root, arrays


def build(root, **kwargs):
    kwargs.setdefault('ann_file', 'gt_sets/train.txt')
    return NYUDv2MTDataset(data_root=str(root), **kwargs)


# ---------------------------------------------------------------- decoders

def test_tables():
    assert len(NYUD_CLASSES) == 40 and len(set(NYUD_CLASSES)) == 40
    assert NYUD_CLASSES[:3] == ('wall', 'floor', 'cabinet')
    assert NYUD_CLASSES[19] == 'floor mat' and NYUD_CLASSES[21] == 'ceiling'
    assert NYUD_CLASSES[30] == 'person' and NYUD_CLASSES[31] == 'night stand'
    assert NYUD_CLASSES[-3:] == ('otherstructure', 'otherfurniture', 'otherprop')
    assert len(NYUD_PALETTE) == 40 and [0, 0, 0] not in NYUD_PALETTE
    assert NYUD_PALETTE[0] == [128, 0, 0]  # VOC colour of stored id 1


def test_semseg_remaps_void_and_shifts_classes():
    stored = np.array([[0, 1, 2], [40, 39, 0]], np.uint8)
    out = decode_nyud_semseg(png_bytes(stored, 'L'), 's/1.png')
    np.testing.assert_array_equal(out, [[255, 0, 1], [39, 38, 255]])
    assert out.dtype == np.uint8
    palette = [v for c in range(256) for v in (c, c, c)]
    out = decode_nyud_semseg(png_bytes(stored, 'P', palette), 's/1.png')  # palette indices
    np.testing.assert_array_equal(out, [[255, 0, 1], [39, 38, 255]])
    with pytest.raises(ValueError, match=r's/1\.png.*0\.\.40.*\[41\]'):
        decode_nyud_semseg(png_bytes(np.array([[41, 3]]), 'L'), 's/1.png')
    with pytest.raises(ValueError, match=r's/1\.png.*one-channel'):
        decode_nyud_semseg(png_bytes(np.zeros((2, 2, 3)), 'RGB'), 's/1.png')


def test_depth_decoding():
    d = np.array([[0.0, 1.25], [2.5, 9.75]])
    for dtype in (np.float16, np.float32, np.float64):
        out = decode_depth(npy_bytes(d.astype(dtype)), 'd/1.npy')
        assert out.dtype == np.float32 and out.shape == (2, 2)
        np.testing.assert_array_equal(out, d.astype(np.float32))
    out = decode_depth(npy_bytes(d[..., None].astype(np.float32)), 'd/1.npy')  # (H, W, 1)
    np.testing.assert_array_equal(out, d)


def test_depth_nan_and_inf_are_masked_as_invalid():
    d = np.array([[np.nan, 1.5], [np.inf, -np.inf]], np.float32)
    out = decode_depth(npy_bytes(d), 'd/1.npy')
    np.testing.assert_array_equal(out, [[0, 1.5], [0, 0]])


@pytest.mark.parametrize('arr,match', [
    (np.ones((2, 3), np.int32), r'd/7\.npy: depth must be a float array.*int32'),
    (np.ones((2, 3), np.uint16), r'd/7\.npy: depth must be a float array.*uint16'),
    (np.ones((2, 3, 2), np.float32), r'd/7\.npy: depth must be \(H, W\).*\(2, 3, 2\)'),
    (np.ones((1, 2, 3), np.float32), r'd/7\.npy: depth must be \(H, W\).*\(1, 2, 3\)'),
    (np.ones(5, np.float32), r'd/7\.npy: depth must be \(H, W\)'),
    (np.array([[1.0, -0.5]], np.float32), r'd/7\.npy: depth must be >= 0.*-0\.5'),
])
def test_bad_depth_names_the_file(arr, match):
    with pytest.raises(ValueError, match=match):
        decode_depth(npy_bytes(arr), 'd/7.npy')


def test_broken_npy_names_the_file():
    data = npy_bytes(np.ones((4, 4), np.float32))
    with pytest.raises(OSError, match=r'd/7\.npy'):
        decode_depth(data[:len(data) // 2], 'd/7.npy')
    with pytest.raises(OSError, match=r'd/7\.npy'):
        decode_depth(npy_bytes(np.array([{'a': 1}], dtype=object)), 'd/7.npy')


def test_normals_npy():
    n = np.zeros((2, 2, 3), np.float32)
    n[0, 0] = [0, 0, 1]
    n[0, 1] = [0, 3, 4]  # not unit: scaled to (0, 0.6, 0.8)
    n[1, 0] = [np.nan, 0, 1]  # non-finite: invalid
    # n[1, 1] stays zero: invalid
    out = decode_nyud_normals(npy_bytes(n), 'n/1.npy')
    assert out.dtype == np.float32 and out.shape == (2, 2, 3)
    np.testing.assert_allclose(out, [[[0, 0, 1], [0, 0.6, 0.8]], [[0, 0, 0], [0, 0, 0]]],
                               atol=1e-7)
    out = decode_nyud_normals(npy_bytes(n.astype(np.float64)), 'n/1.npy')
    assert out.dtype == np.float32
    with pytest.raises(ValueError, match=r'n/1\.npy: normals must be \(H, W, 3\).*\(2, 2\)'):
        decode_nyud_normals(npy_bytes(np.ones((2, 2), np.float32)), 'n/1.npy')
    with pytest.raises(ValueError, match=r'n/1\.npy: normals must be \(H, W, 3\)'):
        decode_nyud_normals(npy_bytes(np.ones((3, 2, 2), np.float32)), 'n/1.npy')
    with pytest.raises(ValueError, match=r'n/1\.npy: normals must be a float.*uint8'):
        decode_nyud_normals(npy_bytes(np.ones((2, 2, 3), np.uint8)), 'n/1.npy')
    with pytest.raises(ValueError, match=r"n/1\.mat.*unsupported file type '\.mat'"):
        decode_nyud_normals(b'', 'n/1.mat')


def test_normals_png_rgb_order_and_invalid_grey():
    rgb = np.array([[[255, 128, 128], [128, 0, 128]],
                    [[128, 128, 255], [128, 128, 128]]], np.uint8)
    out = decode_nyud_normals(png_bytes(rgb, 'RGB'), 'n/1.png')
    v = 2 * 128 / 255 - 1  # 0.0039
    expected = np.array([[[1, v, v], [v, -1, v]], [[v, v, 1], [0, 0, 0]]])
    norm = np.linalg.norm(expected, axis=2, keepdims=True)
    expected = np.where(norm > 0, expected / np.where(norm > 0, norm, 1), 0)
    np.testing.assert_allclose(out, expected, atol=1e-6)  # R -> x, G -> y, B -> z
    assert np.all(out[1, 1] == 0)  # mid-grey: invalid
    with pytest.raises(ValueError, match=r"n/1\.png.*RGB.*'L'"):
        decode_nyud_normals(png_bytes(np.zeros((2, 2)), 'L'), 'n/1.png')


def test_edge_npy_and_png():
    e = np.array([[0, 1, 1], [0, 0, 1]])
    for dtype in (np.uint8, np.int64, np.float32, np.float64, bool):
        out = decode_nyud_edge(npy_bytes(e.astype(dtype)), 'e/1.npy')
        assert out.dtype == np.uint8
        np.testing.assert_array_equal(out, e)
    np.testing.assert_array_equal(decode_nyud_edge(npy_bytes(e[..., None]), 'e/1.npy'), e)
    np.testing.assert_array_equal(decode_nyud_edge(png_bytes(e * 255, 'L'), 'e/1.png'), e)
    with pytest.raises(ValueError, match=r'e/1\.npy.*\{0, 1\}.*0\.5'):
        decode_nyud_edge(npy_bytes(np.array([[0, 0.5]])), 'e/1.npy')
    with pytest.raises(ValueError, match=r'e/1\.png.*\[128\]'):
        decode_nyud_edge(png_bytes(np.array([[0, 128, 255]]), 'L'), 'e/1.png')
    with pytest.raises(ValueError, match=r'e/1\.npy: edge map must be \(H, W\)'):
        decode_nyud_edge(npy_bytes(np.zeros((2, 2, 2))), 'e/1.npy')


# ---------------------------------------------------------------- dataset

def test_data_infos_detect_the_variant_per_file(tree):
    root, _ = tree
    ds = build(root)
    assert len(ds) == 2
    m, p = ds.get_data_info(0), ds.get_data_info(1)
    assert m['img_id'] == 'm01' and m['img_path'] == str(root / 'images' / 'm01.jpg')
    assert p['img_path'] == str(root / 'images' / 'p02.png')
    assert m['normals_path'] == str(root / 'normals' / 'm01.npy')
    assert m['edge_path'] == str(root / 'edge' / 'm01.npy')
    assert p['normals_path'] == str(root / 'normals' / 'p02.png')
    assert p['edge_path'] == str(root / 'edge' / 'p02.png')
    assert p['seg_map_path'] == str(root / 'segmentation' / 'p02.png')
    assert p['depth_path'] == str(root / 'depth' / 'p02.npy')
    assert m['tasks'] == TASKS and m['task_fields'] == [] and m['label_format'] == 'nyud'
    meta = ds.metainfo
    assert meta['classes'] == NYUD_CLASSES and len(meta['palette']) == 40
    assert meta['tasks'] == TASKS
    assert meta['task_classes'] == dict(semseg=NYUD_CLASSES)
    assert meta['task_palettes'] == dict(semseg=NYUD_PALETTE)
    ds = build(root, tasks=('depth', ))
    assert not {'seg_map_path', 'normals_path', 'edge_path'} & set(ds.get_data_info(0))
    assert ds.metainfo['tasks'] == ('depth', )


def test_both_variants_decode_to_the_hand_arrays(tree):
    root, arrays = tree
    ds = build(root, pipeline=[dict(type='LoadMultiTaskImageFromFile'),
                               dict(type='LoadMultiTaskAnnotations')])
    for i, img_id in enumerate(('m01', 'p02')):
        a, r = arrays[img_id], ds[i]
        assert r['task_fields'] == ['gt_sem_seg', 'gt_depth', 'gt_normals', 'gt_edge']
        expected_seg = np.where(a['seg'] == 0, 255, a['seg'].astype(int) - 1)
        np.testing.assert_array_equal(r['gt_sem_seg'], expected_seg)
        assert r['gt_sem_seg'].dtype == np.uint8
        assert r['gt_depth'].dtype == np.float32 and r['gt_depth'][1, 2] == 0
        np.testing.assert_array_equal(r['gt_depth'], a['depth'])
        np.testing.assert_array_equal(r['gt_edge'], a['edge'])
        assert r['gt_normals'].dtype == np.float32
        np.testing.assert_array_equal(r['gt_normals'][2, 3], 0)  # invalid stays invalid
        atol = 1e-6 if img_id == 'm01' else 2.5 / 255  # 8-bit PNG quantisation
        np.testing.assert_allclose(r['gt_normals'], a['normals'], atol=atol)
    # jpg: lossy (chroma subsampling on a tiny image), close on average
    assert np.abs(ds[0]['img'].astype(int) - arrays['m01']['img']).mean() < 12
    np.testing.assert_array_equal(ds[1]['img'], arrays['p02']['img'])  # png, BGR


def test_both_candidates_are_named_when_neither_exists(tree):
    root, _ = tree
    os.remove(root / 'normals' / 'p02.png')
    os.remove(root / 'images' / 'm01.jpg')
    with pytest.raises(FileNotFoundError) as err:
        build(root)
    msg = str(err.value)
    assert f'{root}/normals/p02.npy or {root}/normals/p02.png' in msg
    assert 'images/m01.jpg or ' in msg and 'images/m01.png' in msg
    assert '2 files' in msg
    build(root, tasks=('depth', 'edge'), ann_file='gt_sets/val.txt')  # p02 still fine
    # the other variant's image, and a .png edge next to the .npy one (first candidate wins)
    write(root / 'images' / 'm01.png', png_bytes(np.zeros((H, W, 3)), 'RGB'))
    write(root / 'edge' / 'm01.png', png_bytes(np.zeros((H, W)), 'L'))
    info = build(root, tasks=('edge', )).get_data_info(0)
    assert info['img_path'] == str(root / 'images' / 'm01.png')
    assert info['edge_path'] == str(root / 'edge' / 'm01.npy')


def test_nonfinite_depth_is_counted_and_logged_once_per_build(tree, monkeypatch):
    import mmase.datasets.nyud_mt as nyud_mt
    root, arrays = tree
    depth = arrays['m01']['depth'].copy()
    depth[0, :3] = [np.nan, np.inf, -np.inf]
    write(root / 'depth' / 'm01.npy', npy_bytes(depth))
    logged = []
    monkeypatch.setattr(nyud_mt, 'print_log', lambda msg, **kw: logged.append((msg, kw)))
    ds = build(root, pipeline=[dict(type='LoadMultiTaskImageFromFile'),
                               dict(type='LoadMultiTaskAnnotations')])
    assert ds.nonfinite_depth == {str(root / 'depth' / 'm01.npy'): 3}
    (msg, kwargs), = logged
    assert kwargs['level'] == logging.WARNING
    assert f'1 of 2 depth files hold NaN/inf values (3 pixels)' in msg
    assert f'{root}/depth/m01.npy (3 px)' in msg and 'p02' not in msg
    for _ in range(2):  # loading samples logs nothing more; the pixels stay masked
        assert (ds[0]['gt_depth'][0, :3] == 0).all()
    assert len(logged) == 1
    build(root, check_depth=False)
    build(root, tasks=('semseg', ))
    assert len(logged) == 1


def test_build_errors(tree):
    root, _ = tree
    with pytest.raises(FileNotFoundError, match=r'gt_sets/nope\.txt not found'):
        build(root, ann_file='gt_sets/nope.txt')
    (root / 'gt_sets' / 'empty.txt').write_text('\n \n')
    with pytest.raises(ValueError, match=r'empty\.txt lists no image id'):
        build(root, ann_file='gt_sets/empty.txt')
    os.remove(root / 'depth' / 'm01.npy')
    with pytest.raises(FileNotFoundError, match=r'depth/m01\.npy'):
        build(root)
    build(root, tasks=('semseg', 'normals'))  # depth not needed
    with pytest.raises(ValueError, match=r"tasks: task 'sal' is not available"):
        build(root, tasks=('semseg', 'sal'))
    with pytest.raises(ValueError, match=r"tasks: unknown task 'dept'"):
        build(root, tasks=('dept', ))
    with pytest.raises(ValueError, match='data_root'):
        NYUDv2MTDataset(ann_file='gt_sets/train.txt')
    with pytest.raises(ValueError, match='img_suffix is not an option'):
        build(root, tasks=('semseg', ), img_suffix='.png')
    with pytest.raises(ValueError, match='class subsets'):
        build(root, tasks=('semseg', ), metainfo=dict(classes=('wall', 'floor')))
    with pytest.raises(ValueError, match='reduce_zero_label'):
        build(root, tasks=('semseg', ), reduce_zero_label=True)


def _load(root, index=0, **kwargs):
    ds = build(root, **kwargs)
    return LoadImageFromFile()(ds.get_data_info(index))


def test_loader_errors_name_the_file(tree):
    root, _ = tree
    path = root / 'depth' / 'm01.npy'
    write(path, npy_bytes(np.ones((H, W), np.int32)))
    with pytest.raises(ValueError, match=r'depth/m01\.npy: depth must be a float array'):
        LoadMultiTaskAnnotations()(_load(root))
    write(path, npy_bytes(np.ones((H + 1, W), np.float32)))
    with pytest.raises(ValueError, match=rf'depth/m01\.npy: label map is {H + 1}x{W} but '
                       rf'the image .*m01\.jpg is {H}x{W}'):
        LoadMultiTaskAnnotations()(_load(root))
    write(path, npy_bytes(np.full((H, W), np.nan, np.float32)))
    np.testing.assert_array_equal(LoadMultiTaskAnnotations()(_load(root))['gt_depth'], 0)
    write(root / 'normals' / 'p02.png', png_bytes(np.zeros((H, W + 2, 3)), 'RGB'))
    with pytest.raises(ValueError, match=rf'normals/p02\.png: label map is {H}x{W + 2}'):
        LoadMultiTaskAnnotations(tasks=('normals', ))(_load(root, 1))
    with pytest.raises(KeyError, match='edge_path'):
        LoadMultiTaskAnnotations(tasks=('edge', ))(_load(root, tasks=('depth', )))
    with pytest.raises(ValueError, match=r"LoadMultiTaskAnnotations\.tasks: task 'sal' is "
                       'not available'):
        LoadMultiTaskAnnotations(tasks=('sal', ))(_load(root))
    bad = _load(root)
    bad['label_format'] = 'kitti'
    with pytest.raises(ValueError, match="label_format='kitti'"):
        LoadMultiTaskAnnotations()(bad)


def test_pascal_samples_do_not_offer_depth(tmp_path):
    from mmase.datasets.toy_pascal_mt import make_toy_pascal_mt
    root = tmp_path / 'PASCAL_MT'
    make_toy_pascal_mt(str(root), num_train=1, num_val=1, seed=0, min_size=32, max_size=32)
    info = PascalContextMTDataset(ann_file='ImageSets/Context/train.txt',
                                  data_root=str(root)).get_data_info(0)
    with pytest.raises(ValueError, match="task 'depth' is not available"):
        LoadMultiTaskAnnotations(tasks=('depth', ))(LoadImageFromFile()(info))


# ---------------------------------------------------------------- depth through transforms

def depth_sample():
    """Image encoding pixel coordinates (B = x, G = y) and a depth map with a unique value
    per pixel, 0 on two invalid pixels."""
    y, x = np.mgrid[0:10, 0:12]
    img = np.stack([x, y, np.zeros_like(x)], -1).astype(np.uint8)
    depth = (1.0 + 0.01 * x + 0.1 * y).astype(np.float32)
    depth[3, 4] = depth[7, 0] = 0.0
    return dict(img=img, img_shape=(10, 12), ori_shape=(10, 12), task_fields=['gt_depth'],
                gt_depth=depth)


def test_depth_resize_is_centre_aligned_nearest():
    src = depth_sample()['gt_depth']
    r = MultiTaskResize(scale=(36, 30), keep_ratio=False)(depth_sample())  # x3
    assert r['gt_depth'].dtype == np.float32 and r['gt_depth'].shape == (30, 36)
    np.testing.assert_array_equal(r['gt_depth'], np.repeat(np.repeat(src, 3, 0), 3, 1))
    r = MultiTaskResize(scale=(17, 13), keep_ratio=False)(depth_sample())  # non-integer
    assert set(np.unique(r['gt_depth'])) <= set(np.unique(src))  # no interpolated depth
    assert (r['gt_depth'] == 0).sum() >= 2
    r = MultiTaskResize(scale=(6, 5), keep_ratio=False)(depth_sample())  # x1/2
    assert set(np.unique(r['gt_depth'])) <= set(np.unique(src))


def test_depth_crop_flip_pad():
    np.random.seed(0)
    for _ in range(5):
        r = MultiTaskRandomCrop(crop_size=(6, 7))(depth_sample())
        x0, y0 = int(r['img'][0, 0, 0]), int(r['img'][0, 0, 1])
        np.testing.assert_array_equal(r['gt_depth'],
                                      depth_sample()['gt_depth'][y0:y0 + 6, x0:x0 + 7])
    r = MultiTaskRandomFlip(prob=1.0)(depth_sample())
    np.testing.assert_array_equal(r['gt_depth'], depth_sample()['gt_depth'][:, ::-1])
    assert r['gt_depth'][3, 12 - 1 - 4] == 0  # invalid moved, not changed; no sign flip
    r = MultiTaskRandomFlip(prob=1.0, direction='vertical')(depth_sample())
    np.testing.assert_array_equal(r['gt_depth'], depth_sample()['gt_depth'][::-1])
    r = MultiTaskPad(size=(16, 20), pad_val=9)(depth_sample())
    assert r['gt_depth'].dtype == np.float32 and r['gt_depth'].shape == (16, 20)
    np.testing.assert_array_equal(r['gt_depth'][:10, :12], depth_sample()['gt_depth'])
    assert np.all(r['gt_depth'][10:] == 0) and np.all(r['gt_depth'][:, 12:] == 0)
    assert np.all(r['img'][10:] == 9)


def test_depth_chain_and_packing():
    src = depth_sample()['gt_depth']
    pipeline = Compose([
        # x2 with a nearest image resize, so the image keeps exact source coordinates
        dict(type='MultiTaskResize', scale=(24, 20), keep_ratio=False,
             interpolation='nearest'),
        dict(type='MultiTaskRandomCrop', crop_size=(8, 10)),
        dict(type='MultiTaskRandomFlip', prob=1.0),
        dict(type='MultiTaskPad', size=(12, 12)),
        dict(type='PackMultiTaskInputs'),
    ])
    np.random.seed(1)
    for _ in range(4):
        out = pipeline(depth_sample())
        ds = out['data_samples']
        assert isinstance(ds.gt_depth, PixelData)
        d = ds.gt_depth.data
        assert d.dtype == torch.float32 and d.shape == (1, 12, 12)
        assert torch.all(d[:, 8:] == 0) and torch.all(d[:, :, 10:] == 0)  # padding
        x = out['inputs'][0, :8, :10].numpy().astype(int)
        y = out['inputs'][1, :8, :10].numpy().astype(int)
        assert np.all(x[:, 0] >= x[:, -1])  # flipped
        np.testing.assert_array_equal(d[0, :8, :10].numpy(), src[y, x])
        assert ds.flip is True and ds.pad_shape == (12, 12) and ds.img_shape == (8, 10)


# ---------------------------------------------------------------- the whole pipeline

@pytest.fixture(scope='module', params=['mtinet', 'invpt'])
def toy_nyud(request, tmp_path_factory):
    root = tmp_path_factory.mktemp('toy_nyud') / request.param
    make_toy_nyud_mt(str(root), num_train=3, num_val=2, seed=0, min_size=40, max_size=56,
                     variant=request.param)
    return root


def check_contract(sample, tasks, size):
    inputs, ds = sample['inputs'], sample['data_samples']
    assert inputs.dtype == torch.uint8 and inputs.shape[0] == 3
    for key in ('img_path', 'img_id', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor',
                'flip', 'flip_direction', 'tasks'):
        assert key in ds.metainfo, key
    assert ds.tasks == tasks
    h, w = size
    seg = ds.gt_sem_seg.data
    assert seg.dtype == torch.int64 and seg.shape == (1, h, w)
    assert set(seg.unique().tolist()) <= set(range(40)) | {255}
    depth = ds.gt_depth.data
    assert depth.dtype == torch.float32 and depth.shape == (1, h, w)
    assert depth.min() >= 0 and depth.max() < 15 and (depth > 0).float().mean() > 0.5
    normals = ds.gt_normals.data
    assert normals.dtype == torch.float32 and normals.shape == (3, h, w)
    norm = normals.norm(dim=0)
    assert torch.all((norm == 0) | ((norm - 1).abs() < 1e-4))
    edge = ds.gt_edge.data
    assert edge.dtype == torch.int64 and edge.shape == (1, h, w)
    assert set(edge.unique().tolist()) <= {0, 1, 255}


def test_train_and_val_pipelines_give_the_contract(toy_nyud):
    train_pipeline = [
        dict(type='LoadMultiTaskImageFromFile'),
        dict(type='LoadMultiTaskAnnotations'),
        dict(type='MultiTaskRandomResize', scale=(56, 56), ratio_range=(0.8, 1.2)),
        dict(type='MultiTaskRandomCrop', crop_size=(32, 40)),
        dict(type='MultiTaskRandomFlip', prob=0.5),
        dict(type='PhotoMetricDistortion'),
        dict(type='MultiTaskPad', size=(32, 40)),
        dict(type='PackMultiTaskInputs'),
    ]
    ds = build(toy_nyud, pipeline=train_pipeline)
    assert len(ds) == 3
    for i in range(len(ds)):
        sample = ds[i]
        assert sample['inputs'].shape == (3, 32, 40)
        check_contract(sample, TASKS, (32, 40))
    val_pipeline = [
        dict(type='LoadMultiTaskImageFromFile'),
        dict(type='MultiTaskResize', scale=(32, 32), keep_ratio=True),
        dict(type='LoadMultiTaskAnnotations'),
        dict(type='PackMultiTaskInputs'),
    ]
    ds = build(toy_nyud, ann_file='gt_sets/val.txt', pipeline=val_pipeline, test_mode=True)
    for i in range(len(ds)):
        sample = ds[i]
        meta = sample['data_samples'].metainfo
        assert max(sample['inputs'].shape[1:]) == 32
        check_contract(sample, TASKS, meta['ori_shape'])  # ground truth at original size


# ---------------------------------------------------------------- configs

def test_nyud_mt_config():
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', 'nyud_mt.py'))
    assert cfg.tasks == TASKS and cfg.crop_size == (448, 576)
    for loader, split in (('train_dataloader', 'train'), ('val_dataloader', 'val')):
        assert cfg[loader].dataset.type == 'NYUDv2MTDataset'
        assert cfg[loader].dataset.data_root == 'data/NYUDv2'
        assert cfg[loader].dataset.ann_file == f'gt_sets/{split}.txt'
    types = [t.type for t in cfg.train_pipeline]
    assert types == ['LoadMultiTaskImageFromFile', 'LoadMultiTaskAnnotations',
                     'MultiTaskRandomResize', 'MultiTaskRandomCrop', 'MultiTaskRandomFlip',
                     'PhotoMetricDistortion', 'MultiTaskPad', 'PackMultiTaskInputs']
    assert cfg.train_pipeline[3].crop_size == (448, 576)
    assert [t.type for t in cfg.test_pipeline][1:3] == ['MultiTaskResize',
                                                        'LoadMultiTaskAnnotations']
    assert 'val_evaluator' not in cfg


@pytest.mark.skipif(not osp.isdir(osp.join(REPO, 'data', 'toy_nyud_mt')),
                    reason='data/toy_nyud_mt is not present')
def test_toy_config_builds_on_the_committed_data():
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', 'toy_nyud_mt.py'))
    assert cfg.train_dataloader.batch_size == 4 and cfg.crop_size == (64, 64)
    assert cfg.train_dataloader.num_workers == 0
    for loader in ('train_dataloader', 'val_dataloader'):
        cfg[loader].dataset.data_root = osp.join(REPO, 'data', 'toy_nyud_mt')
    train = DATASETS.build(cfg.train_dataloader.dataset)
    val = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(train) == 30 and len(val) == 15
    batch = pseudo_collate([train[i] for i in range(4)])
    assert torch.stack(batch['inputs']).shape == (4, 3, 64, 64)
    for sample in batch['data_samples']:
        check_contract(dict(inputs=torch.zeros(3, 64, 64, dtype=torch.uint8),
                            data_samples=sample), TASKS, (64, 64))
    v = val[0]
    assert max(v['inputs'].shape[1:]) == 64
    assert v['data_samples'].gt_depth.data.shape[1:] == v['data_samples'].ori_shape
