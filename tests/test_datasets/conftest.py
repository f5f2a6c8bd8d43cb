import pytest
from mmengine.registry import init_default_scope

import mmase  # noqa: F401  (registers the transforms and datasets)
from mmase.datasets.toy_pascal_mt import make_toy_pascal_mt


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


@pytest.fixture(scope='session')
def toy_root(tmp_path_factory):
    """A tiny generated PASCAL_MT tree (3 train + 2 val ids of 40-64 px). Do not modify:
    tests that change files copy it first (see ``toy_copy``)."""
    root = tmp_path_factory.mktemp('toy') / 'PASCAL_MT'
    make_toy_pascal_mt(str(root), num_train=3, num_val=2, seed=0, min_size=40, max_size=64)
    return root


@pytest.fixture
def toy_copy(toy_root, tmp_path):
    """A private copy of ``toy_root`` that a test may change."""
    import shutil
    dst = tmp_path / 'PASCAL_MT'
    shutil.copytree(toy_root, dst)
    return dst
