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


@pytest.mark.parametrize('kind', ['sharp', 'blurred', 'noisy', 'shifted', 'smooth'])
def test_nested_maps_match_skimage_at_every_threshold(kind):
    """thin_nested (the edge meter's path): every one of the 99 threshold maps of a clean or
    noisy prediction, pixel for pixel as skimage.morphology.thin."""
    from mmase.evaluation.metrics.synthetic_edges import synthetic_edge_pair
    from mmase.evaluation.metrics.thinning import thin_nested
    pred, _ = synthetic_edge_pair(kind, 1, shape=(60, 80))
    levels = np.searchsorted(np.arange(1, 100) / 100, pred, side='right')
    indptr, indices = thin_nested(levels, np.arange(99))
    assert indptr[0] == 0 and indptr[-1] == indices.size
    for k in range(99):
        np.testing.assert_array_equal(np.sort(indices[indptr[k]:indptr[k + 1]]),
                                      np.flatnonzero(thin(levels > k)), err_msg=f'map {k}')


def test_nested_maps_of_any_integer_levels():
    from mmase.evaluation.metrics.thinning import thin_nested
    rng = np.random.default_rng(3)
    levels = rng.integers(0, 5, (20, 25)).astype(np.uint8)  # unsigned, any order of cuts
    cuts = np.array([3, 0, 2, 4])
    indptr, indices = thin_nested(levels, cuts)
    for k, cut in enumerate(cuts):
        np.testing.assert_array_equal(np.sort(indices[indptr[k]:indptr[k + 1]]),
                                      np.flatnonzero(thin(levels > cut)))
    with pytest.raises(ValueError, match=r'\(H, W\)'):
        thin_nested(np.zeros((2, 3, 4)), cuts)
