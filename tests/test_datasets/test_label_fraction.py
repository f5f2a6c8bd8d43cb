"""label_fraction: a seeded subset of one task's labels; the rest load as all-ignore maps."""
import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

import mmase  # noqa: F401

ROOT = 'data/toy_pascal_mt'
PIPE = [dict(type='LoadMultiTaskImageFromFile'),
        dict(type='LoadMultiTaskAnnotations')]


def build(**kwargs):
    init_default_scope('mmseg')
    return DATASETS.build(dict(type='PascalContextMTDataset', data_root=ROOT,
                               ann_file='ImageSets/Context/train.txt', tasks=('semseg', 'sal'),
                               pipeline=PIPE, **kwargs))


@pytest.fixture(autouse=True)
def repo_root(monkeypatch):
    import os.path as osp
    monkeypatch.chdir(osp.dirname(osp.dirname(osp.dirname(__file__))))


def test_fraction_keeps_a_seeded_subset_and_others_are_unlabelled():
    ds = build(label_fraction=dict(sal=0.25))
    kept = ds.labelled_ids('sal')
    assert len(kept) == round(0.25 * len(ds)) == 10
    assert kept == build(label_fraction=dict(sal=0.25)).labelled_ids('sal')  # deterministic
    assert kept != build(label_fraction=dict(sal=0.25), label_seed=1).labelled_ids('sal')
    assert len(ds.labelled_ids('semseg')) == len(ds)  # other tasks stay full
    full = build()
    for i in range(len(ds)):
        sample, ref = ds[i], full[i]
        np.testing.assert_array_equal(sample['gt_sem_seg'], ref['gt_sem_seg'])
        if sample['img_id'] in kept:
            np.testing.assert_array_equal(sample['gt_sal'], ref['gt_sal'])
        else:
            assert (sample['gt_sal'] == 255).all() and sample['gt_sal'].shape == \
                ref['gt_sal'].shape


def test_count():
    assert len(build(label_fraction=dict(sal=3)).labelled_ids('sal')) == 3


@pytest.mark.parametrize('kwargs, match', [
    (dict(label_fraction=dict(edge=0.5)), r"label_fraction\['edge'\]: 'edge' is not one of"),
    (dict(label_fraction=dict(sal=1.5)), r"label_fraction\['sal'\] must be a fraction"),
    (dict(label_fraction=dict(sal=0)), r"label_fraction\['sal'\] must be a fraction"),
    (dict(label_fraction=dict(sal=999)), r"label_fraction\['sal'\]=999 exceeds"),
    (dict(label_fraction=dict(sal=0.5), test_mode=True), r'label_fraction is for training'),
])
def test_bad_label_fraction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)
