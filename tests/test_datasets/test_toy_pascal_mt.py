"""The toy PASCAL_MT generator: determinism, layout, labels consistent across tasks."""
import filecmp
import os
import os.path as osp

import numpy as np
import pytest

from mmase.datasets.pascal_mt_labels import (NORMALS_VALID_CONTEXT_IDS, VOC_CONTEXT_IDS,
                                             decode_human_parts, decode_label_map,
                                             decode_normals, decode_sal, decode_semseg)
from mmase.datasets.toy_pascal_mt import make_toy_pascal_mt

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def all_files(root):
    out = []
    for d, _, files in os.walk(root):
        out += [osp.relpath(osp.join(d, f), root) for f in files]
    return sorted(out)


def test_same_seed_same_bytes(toy_root, tmp_path):
    again = tmp_path / 'again'
    make_toy_pascal_mt(str(again), num_train=3, num_val=2, seed=0, min_size=40, max_size=64)
    files = all_files(toy_root)
    assert files == all_files(again)
    _, mismatch, errors = filecmp.cmpfiles(toy_root, again, files, shallow=False)
    assert not mismatch and not errors
    other = tmp_path / 'other'
    make_toy_pascal_mt(str(other), num_train=3, num_val=2, seed=1, min_size=40, max_size=64)
    labels = [f for f in files if f.startswith(('pascal-context', 'human_parts', 'sal_'))]
    _, mismatch, _ = filecmp.cmpfiles(toy_root, other, labels, shallow=False)
    assert len(mismatch) == len(labels)


def test_layout(toy_root):
    ids = [f'toy_{i:06d}' for i in range(5)]
    sets = toy_root / 'ImageSets' / 'Context'
    assert (sets / 'train.txt').read_text().split() == ids[:3]
    assert (sets / 'val.txt').read_text().split() == ids[3:]
    assert (toy_root / 'README.txt').read_text().startswith('Toy PASCAL-Context')
    for i, img_id in enumerate(ids):
        for sub, ext in (('JPEGImages', '.jpg'), ('pascal-context/trainval', '.mat'),
                         ('human_parts', '.mat'), ('sal_distill', '.png'),
                         ('normals_distill', '.png')):
            assert (toy_root / sub / (img_id + ext)).is_file(), (sub, img_id)
        in_voc = (toy_root / 'semseg' / 'VOC12' / (img_id + '.png')).is_file()
        in_ctx = (toy_root / 'semseg' / 'pascal-context' / (img_id + '.png')).is_file()
        assert in_voc != in_ctx and in_voc == (i % 3 == 0)


def read(root, sub, img_id, ext):
    path = osp.join(root, sub, img_id + ext)
    with open(path, 'rb') as f:
        return f.read(), path


def test_labels_agree(tmp_path):
    root = tmp_path / 'toy'
    make_toy_pascal_mt(str(root), num_train=8, num_val=1, seed=3, min_size=48, max_size=64)
    n_person = 0
    for i in range(9):
        img_id = f'toy_{i:06d}'
        sub = 'semseg/VOC12' if i % 3 == 0 else 'semseg/pascal-context'
        semseg = decode_semseg(*read(root, sub, img_id, '.png'))
        label_map = decode_label_map(*read(root, 'pascal-context/trainval', img_id, '.mat'))
        assert label_map.dtype == np.uint16
        parts = decode_human_parts(*read(root, 'human_parts', img_id, '.mat'), semseg.shape)
        sal = decode_sal(*read(root, 'sal_distill', img_id, '.png'))
        normals = decode_normals(*read(root, 'normals_distill', img_id, '.png'))
        known = semseg != 255
        assert (semseg == 255).any() == (i % 3 == 0)
        # LabelMap holds the Context id of each object's VOC class
        for voc in np.unique(semseg[known & (semseg > 0)]):
            assert np.all(label_map[semseg == voc] == VOC_CONTEXT_IDS[voc])
        assert not np.isin(label_map[known & (semseg == 0)], VOC_CONTEXT_IDS[1:]).any()
        # parts only on persons, and every visible person has parts
        assert np.all(semseg[(parts > 0) & known] == 15)
        person = semseg == 15
        if person.any():
            n_person += 1
            assert (parts[person] > 0).mean() > 0.9
        # saliency = the objects (up to the soft boundary)
        fg = semseg > 0
        inter = (sal.astype(bool) & fg)[known].sum()
        union = (sal.astype(bool) | fg)[known].sum()
        assert union == 0 or inter / union > 0.9
        # normals are unit vectors; the generator's shading varies them
        np.testing.assert_allclose(np.linalg.norm(normals, axis=2), 1, atol=1e-5)
        valid = np.isin(label_map, NORMALS_VALID_CONTEXT_IDS)
        assert valid.any() and not valid.all()
    assert n_person >= 2


def test_committed_toy_data_matches_the_generator(tmp_path):
    committed = osp.join(REPO, 'data', 'toy_pascal_mt')
    if not osp.isdir(committed):
        pytest.skip('data/toy_pascal_mt is not present')
    fresh = tmp_path / 'fresh'
    make_toy_pascal_mt(str(fresh), num_train=4, num_val=1, seed=0)  # ids 0-4 of the 40/20 set
    files = [f for f in all_files(fresh) if f.startswith(('JPEGImages', 'semseg', 'pascal',
                                                          'human', 'sal', 'normals'))]
    assert len(files) == 5 * 6
    _, mismatch, errors = filecmp.cmpfiles(committed, fresh, files, shallow=False)
    assert not mismatch and not errors
    with open(osp.join(committed, 'ImageSets', 'Context', 'train.txt')) as f:
        assert len(f.read().split()) == 40
    with open(osp.join(committed, 'ImageSets', 'Context', 'val.txt')) as f:
        assert len(f.read().split()) == 20


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='num_train'):
        make_toy_pascal_mt(str(tmp_path), num_train=0)
    with pytest.raises(ValueError, match='min_size'):
        make_toy_pascal_mt(str(tmp_path), min_size=100, max_size=64)
