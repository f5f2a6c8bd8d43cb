"""EdgeMatcher: exact maximum one-to-one matchings within a distance (SEISM's correspondPixels)."""
import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from mmase.evaluation.metrics.edge_matching import EdgeMatcher, disk_offsets


def test_disk_offsets():
    dy, dx = disk_offsets(1.0)
    assert sorted(zip(dy.tolist(), dx.tolist())) == [(-1, 0), (0, -1), (0, 0), (0, 1), (1, 0)]
    dy, dx = disk_offsets(0.0075 * np.hypot(375, 500))  # PASCAL: 4.69 px
    assert len(dy) == 69 and (dy**2 + dx**2).max() == 20  # 4^2 + 2^2 <= 4.69^2 < 4^2 + 3^2
    with pytest.raises(ValueError, match='max_distance'):
        disk_offsets(-1)


def test_by_hand():
    gt = np.zeros((6, 6), bool)
    gt[2, 1:5] = True  # 4 ground-truth pixels in a row
    pred = np.zeros((6, 6), bool)
    pred[1, 1:5] = pred[3, 1:5] = True  # 8 predicted pixels, 1 px above and below
    assert EdgeMatcher(gt, 1.0).count(pred) == 4  # each ground-truth pixel used once
    assert EdgeMatcher(gt, 0.9).count(pred) == 0  # 1 px is beyond 0.9
    lonely = np.zeros((6, 6), bool)
    lonely[0, 0] = True
    assert EdgeMatcher(gt, 1.5).count(lonely) == 0
    empty = EdgeMatcher(np.zeros((6, 6), bool), 2.0)
    assert empty.num_edges == 0 and empty.count(pred) == 0
    with pytest.raises(ValueError, match='differ|must be'):
        EdgeMatcher(gt, 1.0).count(np.zeros((5, 6), bool))


def brute_force(pred, gt, radius):
    """Maximum matching by scipy's Hopcroft-Karp on the explicit pair matrix (small maps)."""
    pred_pixels, gt_pixels = np.argwhere(pred), np.argwhere(gt)
    if not len(pred_pixels) or not len(gt_pixels):
        return 0
    dist2 = ((pred_pixels[:, None, :] - gt_pixels[None, :, :])**2).sum(-1)
    return int((maximum_bipartite_matching(csr_matrix(dist2 <= radius**2),
                                           perm_type='column') >= 0).sum())


def test_matches_hopcroft_karp_on_random_maps():
    rng = np.random.default_rng(0)
    for density_pred, density_gt in [(0.05, 0.2), (0.3, 0.05), (0.15, 0.15)]:
        gt = rng.random((24, 30)) < density_gt
        maps = rng.random((4, 24, 30)) < density_pred  # both orientations of the flow occur
        for radius in (1.0, 1.5, 2.9):
            counts = EdgeMatcher(gt, radius).count_stack(maps)
            assert counts.dtype == np.int64
            expected = [brute_force(m, gt, radius) for m in maps]
            np.testing.assert_array_equal(counts, expected)
