"""The toy NYUD-v2 generator: determinism, both layouts, labels consistent with the geometry,
the committed copy."""
import filecmp
import os
import os.path as osp

import numpy as np
import pytest

from mmase.datasets.nyud_labels import (NYUD_CLASSES, decode_depth, decode_nyud_edge,
                                        decode_nyud_normals, decode_nyud_semseg)
from mmase.datasets.pascal_mt_labels import edge_from_label_map
from mmase.datasets.toy_nyud_mt import make_toy_nyud_mt, render_toy_nyud_sample

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
COMMITTED = osp.join(REPO, 'data', 'toy_nyud_mt')
FLOOR, CEILING = NYUD_CLASSES.index('floor') + 1, NYUD_CLASSES.index('ceiling') + 1


def all_files(root):
    out = []
    for d, _, files in os.walk(root):
        out += [osp.relpath(osp.join(d, f), root) for f in files]
    return sorted(out)


def read(root, rel):
    path = osp.join(root, rel)
    with open(path, 'rb') as f:
        return f.read(), path


@pytest.mark.parametrize('variant', ['mtinet', 'invpt'])
def test_same_seed_same_bytes(tmp_path, variant):
    kwargs = dict(num_train=2, num_val=1, min_size=40, max_size=56, variant=variant)
    a, b, c = tmp_path / 'a', tmp_path / 'b', tmp_path / 'c'
    make_toy_nyud_mt(str(a), seed=0, **kwargs)
    make_toy_nyud_mt(str(b), seed=0, **kwargs)
    make_toy_nyud_mt(str(c), seed=1, **kwargs)
    files = all_files(a)
    assert files == all_files(b) == all_files(c)
    _, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert not mismatch and not errors
    labels = [f for f in files if f.startswith(('depth', 'normals', 'segmentation'))]
    _, mismatch, _ = filecmp.cmpfiles(a, c, labels, shallow=False)
    assert len(mismatch) == len(labels) == 9


@pytest.mark.parametrize('variant,img_ext,map_ext', [('mtinet', '.jpg', '.npy'),
                                                     ('invpt', '.png', '.png')])
def test_layout(tmp_path, variant, img_ext, map_ext):
    root = tmp_path / variant
    splits = make_toy_nyud_mt(str(root), num_train=3, num_val=2, min_size=40, max_size=48,
                              variant=variant)
    ids = [f'toy_{i:04d}' for i in range(5)]
    assert splits == dict(train=ids[:3], val=ids[3:])
    assert (root / 'gt_sets' / 'train.txt').read_text().split() == ids[:3]
    assert (root / 'gt_sets' / 'val.txt').read_text().split() == ids[3:]
    readme = (root / 'README.txt').read_text()
    assert readme.startswith('Toy NYUD-v2') and f'--variant {variant}' in readme
    expected = sorted(['README.txt', 'gt_sets/train.txt', 'gt_sets/val.txt'] + [
        f'{d}/{i}{ext}' for i in ids
        for d, ext in (('images', img_ext), ('segmentation', '.png'), ('depth', '.npy'),
                       ('normals', map_ext), ('edge', map_ext))])
    assert all_files(root) == expected


def test_rendered_labels_agree_with_the_geometry():
    n_classes = set()
    for index in range(8):
        rng = np.random.default_rng([5, index])
        s = render_toy_nyud_sample(rng, 48, 64)
        depth, normals, semseg = s['depth'], s['normals'], s['semseg']
        assert s['img'].shape == (48, 64, 3) and s['img'].dtype == np.uint8
        valid = depth > 0
        assert 0.9 < valid.mean() < 1 and depth.max() < 10
        # normals: unit where depth is valid, zero in the sensor holes
        norm = np.linalg.norm(normals, axis=2)
        np.testing.assert_allclose(norm[valid], 1, atol=1e-5)
        assert np.all(normals[~valid] == 0)
        # semseg = the class map except a few void spots; edges = its boundaries
        void = semseg == 0
        assert 0 < void.sum() < 0.05 * semseg.size
        np.testing.assert_array_equal(semseg[~void], s['classes'][~void])
        np.testing.assert_array_equal(s['edge'], edge_from_label_map(s['classes']))
        assert s['edge'].any()
        n_classes |= set(np.unique(s['classes']).tolist())
        # back-project: P = depth K^-1 (u + 0.5, v + 0.5, 1), camera frame y down, z forward
        k_inv = np.linalg.inv(s['intrinsics'])
        v, u = np.mgrid[0:48, 0:64] + 0.5
        rays = np.stack([u, v, np.ones_like(u)], -1) @ k_inv.T
        points = depth[..., None] * rays
        n_cv = normals * np.array([1, -1, -1])  # back to y down, z forward
        dist = (n_cv * points).sum(-1)  # n . P = - distance of the surface plane
        assert np.all(dist[valid] < 0)  # every visible surface faces the camera
        floor = valid & (s['classes'] == FLOOR)
        np.testing.assert_allclose(dist[floor], -s['camera_height'], atol=1e-4)
        ceiling = valid & (s['classes'] == CEILING)
        if ceiling.any():
            assert np.ptp(dist[ceiling]) < 1e-4
            room_height = s['camera_height'] - dist[ceiling].max()  # generator: 2.5-3 m
            assert 2.5 - 1e-4 < room_height < 3.0 + 1e-4
        # floor normals point up in the camera frame (y up): mostly +y
        assert np.all(normals[floor][:, 1] > 0.9)
    assert n_classes >= {1, FLOOR, CEILING} and len(n_classes) >= 8


@pytest.mark.parametrize('variant', ['mtinet', 'invpt'])
def test_files_decode_to_the_rendered_labels(tmp_path, variant):
    root = tmp_path / variant
    make_toy_nyud_mt(str(root), num_train=2, num_val=1, seed=2, min_size=40, max_size=56,
                     variant=variant)
    ext = '.npy' if variant == 'mtinet' else '.png'
    for index in range(3):
        img_id = f'toy_{index:04d}'
        rng = np.random.default_rng([2, index])
        h, w = (int(x) for x in rng.integers(40, 57, size=2))
        s = render_toy_nyud_sample(rng, h, w)
        semseg = decode_nyud_semseg(*read(root, f'segmentation/{img_id}.png'))
        np.testing.assert_array_equal(semseg, np.where(s['semseg'] == 0, 255,
                                                       s['semseg'].astype(int) - 1))
        np.testing.assert_array_equal(decode_depth(*read(root, f'depth/{img_id}.npy')),
                                      s['depth'])
        np.testing.assert_array_equal(decode_nyud_edge(*read(root, f'edge/{img_id}{ext}')),
                                      s['edge'])
        normals = decode_nyud_normals(*read(root, f'normals/{img_id}{ext}'))
        invalid = np.all(s['normals'] == 0, axis=2)
        assert invalid.any()
        np.testing.assert_array_equal(np.all(normals == 0, axis=2), invalid)  # kept
        np.testing.assert_allclose(normals, s['normals'], atol=1e-6 if ext == '.npy' else
                                   2.5 / 255)


def test_committed_toy_data_matches_the_generator(tmp_path):
    if not osp.isdir(COMMITTED):
        pytest.skip('data/toy_nyud_mt is not present')
    fresh = tmp_path / 'fresh'
    # ids 0-4 of the committed 30/15 set (each id has its own random stream)
    make_toy_nyud_mt(str(fresh), num_train=4, num_val=1, seed=0, variant='invpt')
    files = [f for f in all_files(fresh) if not f.startswith(('gt_sets', 'README'))]
    assert len(files) == 5 * 5
    _, mismatch, errors = filecmp.cmpfiles(COMMITTED, fresh, files, shallow=False)
    assert not mismatch and not errors
    with open(osp.join(COMMITTED, 'gt_sets', 'train.txt')) as f:
        assert f.read().split() == [f'toy_{i:04d}' for i in range(30)]
    with open(osp.join(COMMITTED, 'gt_sets', 'val.txt')) as f:
        assert f.read().split() == [f'toy_{i:04d}' for i in range(30, 45)]
    readme = open(osp.join(COMMITTED, 'README.txt')).read()
    assert '--num-train 30 --num-val 15' in readme and '--variant invpt' in readme
    committed = all_files(COMMITTED)
    assert len(committed) == 45 * 5 + 3
    size = sum(osp.getsize(osp.join(COMMITTED, f)) for f in committed)
    assert size < 1.5e6


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='num_train'):
        make_toy_nyud_mt(str(tmp_path), num_train=0)
    with pytest.raises(ValueError, match='min_size'):
        make_toy_nyud_mt(str(tmp_path), min_size=100, max_size=64)
    with pytest.raises(ValueError, match="variant must be one of.*'png'"):
        make_toy_nyud_mt(str(tmp_path), variant='png')
