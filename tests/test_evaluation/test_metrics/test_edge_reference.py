"""EdgeMeter against pyEdgeEval's compiled port of SEISM's correspondPixels (the reference).

Generated PASCAL-size (500x375) maps of every kind of ``synthetic_edges``; the reference runs on
mmase's own thinned maps (the thinning is tested against scikit-image in ``test_thinning``), at
11 of the 99 thresholds to keep the test short (``tools/analysis/benchmark_edges.py`` compares all
99). correspondPixels is random (seeded from the clock) and finds slightly fewer pairs than the
maximum matching mmase computes, never more (its sparse random outlier graph, see
``mmase.evaluation.metrics.edge_matching``): counts must agree within 0.5 % (or one pixel, for
the small counts of high thresholds); F within 0.25 point (measured: 0.00 to 0.17 on these
maps, the shortfall of correspondPixels, not an error of mmase's count).
"""
import numpy as np
import pytest

from mmase.evaluation import EdgeMeter
from mmase.evaluation.metrics.synthetic_edges import SYNTHETIC_KINDS, synthetic_edge_pair
from mmase.evaluation.metrics.thinning import thin_stack

correspond_pixels = pytest.importorskip('pyEdgeEval._lib').correspond_pixels

#: Indices into EdgeMeter's 99 thresholds: 0.05, 0.14, ..., 0.95.
CHECKED = np.arange(4, 99, 9)


def best_f(matched, predicted, gt_edges):
    precision = np.divide(matched, predicted, out=np.zeros(len(matched)), where=predicted > 0)
    recall = matched / gt_edges if gt_edges else np.zeros(len(matched))
    total = precision + recall
    return float(np.max(np.divide(2 * precision * recall, total, out=np.zeros(len(matched)),
                                  where=total > 0)) * 100)


@pytest.mark.parametrize('kind', SYNTHETIC_KINDS)
def test_counts_and_f_match_correspond_pixels(kind):
    pred, gt = synthetic_edge_pair(kind, seed=1)
    assert pred.shape == gt.shape == (375, 500)
    meter = EdgeMeter(tolerance=0.0075)
    record = meter.process(pred, gt)
    thinned = thin_stack(pred[None] >= meter.thresholds[CHECKED, None, None])
    ref_matched, ref_gt_matched = [], []
    for binary in thinned:
        match_pred, match_gt, _, _ = correspond_pixels(binary.astype(np.float64),
                                                       gt.astype(np.float64), 0.0075)
        ref_matched.append(np.count_nonzero(match_pred))
        ref_gt_matched.append(np.count_nonzero(match_gt))
    ref_matched = np.array(ref_matched)
    np.testing.assert_array_equal(ref_matched, ref_gt_matched)  # one-to-one: cntP == cntR
    np.testing.assert_array_equal(record['predicted'][CHECKED], thinned.sum((1, 2)))
    assert record['gt_edges'] == gt.sum()
    matched = record['matched'][CHECKED]
    # correspondPixels never finds more pairs than a maximum matching
    assert (matched >= ref_matched).all()
    np.testing.assert_allclose(matched, ref_matched, rtol=0.005, atol=1)
    ours = best_f(matched, record['predicted'][CHECKED], record['gt_edges'])
    reference = best_f(ref_matched, record['predicted'][CHECKED], record['gt_edges'])
    assert reference <= ours <= reference + 0.25
    if kind.startswith('empty'):
        assert ours == 0 and not matched.any()
    else:  # the maps are PASCAL-like: neither trivial nor perfect (smooth ones: poorer)
        assert (30 if kind == 'smooth' else 50) < ours < 85
