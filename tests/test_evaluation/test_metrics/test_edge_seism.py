"""EdgeMeter(matcher='seism'): pyEdgeEval's thinning and correspond_pixels, its numbers; a missing
pyEdgeEval is an error at build naming the field and the extra."""
import sys

import numpy as np
import pytest

from mmase.evaluation import EdgeMeter, MultiTaskMetric
from mmase.evaluation.metrics.synthetic_edges import synthetic_edge_pair

pytest.importorskip('pyEdgeEval')


@pytest.mark.parametrize('kind', ['sharp', 'blurred'])
def test_seism_counts_are_pyedgeeval_counts(kind):
    from pyEdgeEval.common.binary_label.evaluate_boundaries import \
        evaluate_boundaries_threshold
    meter = EdgeMeter(matcher='seism', num_thresholds=9)
    pred, gt = synthetic_edge_pair(kind, 0, shape=(60, 80))
    record = meter.process(pred, gt)
    runs = [evaluate_boundaries_threshold(meter.thresholds, pred, gt.astype(bool),
                                          max_dist=meter.tolerance) for _ in range(2)]
    for count_r, sum_r, count_p, sum_p in runs:
        np.testing.assert_array_equal(record['predicted'], sum_p)  # the same thinning
        assert record['gt_edges'] == sum_r[0]
    # correspond_pixels draws random outlier edges (seeded from the clock when pyEdgeEval
    # loads): two of its own runs differ by a few pairs, and so may this mode from either
    spread = np.abs(runs[0][2] - runs[1][2]).max()
    assert np.abs(record['matched'] - runs[0][2]).max() <= spread + 4
    exact = EdgeMeter(num_thresholds=9).process(pred, gt)
    assert (exact['matched'] >= record['matched'] - 4).all()  # the maximum, up to thinning


def test_unknown_matcher_and_missing_pyedgeeval(monkeypatch):
    with pytest.raises(ValueError, match=r"matcher='hungarian' is not an edge matcher"):
        EdgeMeter(matcher='hungarian')
    monkeypatch.setitem(sys.modules, 'pyEdgeEval._lib', None)  # import fails
    with pytest.raises(ImportError, match=r"matcher='seism' needs pyEdgeEval.*seism"):
        EdgeMeter(matcher='seism')
    with pytest.raises(ImportError, match=r"MultiTaskMetric.edge_matcher='seism'"):
        MultiTaskMetric(tasks=('edge', ), edge_matcher='seism')
    EdgeMeter()  # the default needs no pyEdgeEval
