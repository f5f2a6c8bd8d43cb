"""thin_stack: the Guo-Hall thinning of skimage.morphology.thin, batched."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage.morphology import thin

from mmase.evaluation import thin_stack
from mmase.evaluation.metrics.thinning import _DELETE_FIRST, _DELETE_SECOND


def test_interior_pixels_are_never_deleted():
    assert not _DELETE_FIRST[255] and not _DELETE_SECOND[255]


def test_thick_bar_becomes_a_line():
    bar = np.zeros((7, 12), bool)
    bar[2:5, 2:10] = True
    out = thin_stack(bar)
    assert out.dtype == bool and out.shape == bar.shape
    assert out.sum() > 0 and (out.sum(0) <= 1).all()  # one pixel per column
    np.testing.assert_array_equal(out, thin(bar))


def test_matches_skimage_on_random_stacks():
    rng = np.random.default_rng(0)
    for _ in range(5):
        stack = np.stack([gaussian_filter(rng.random((23, 31)), s) > 0.5 for s in (0.7, 1.5, 3)]
                         + [rng.random((23, 31)) > 0.4, np.zeros((23, 31), bool)])
        np.testing.assert_array_equal(thin_stack(stack), np.stack([thin(m) for m in stack]))


def test_bad_shape():
    with pytest.raises(ValueError, match=r'\(N, H, W\) or \(H, W\)'):
        thin_stack(np.zeros((1, 2, 3, 4)))
