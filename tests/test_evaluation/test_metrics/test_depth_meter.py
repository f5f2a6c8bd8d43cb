"""DepthMeter: RMSE, abs-rel and delta1 on valid pixels (gt > 0), pooled."""
import numpy as np
import pytest

from mmase.evaluation import DepthMeter


def test_depth_metrics_by_hand():
    meter = DepthMeter()
    gt = np.array([[1.0, 2.0], [0.0, 4.0]])  # 0 = invalid
    pred = np.array([[1.5, 2.0], [9.0, 3.0]])
    # valid pairs (1, 1.5), (2, 2), (4, 3): squared errors 0.25, 0, 1; rel 0.5, 0, 0.25;
    # ratios 1.5, 1, 1.33 -> one below 1.25
    out = meter.compute([meter.process(pred, gt)])
    assert out['rmse'] == pytest.approx(np.sqrt(1.25 / 3))
    assert out['abs_rel'] == pytest.approx(0.75 / 3)
    assert out['delta1'] == pytest.approx(100 / 3)


def test_pooled_over_pixels_and_clamped_predictions():
    meter = DepthMeter()
    r1 = meter.process(np.array([[3.0]]), np.array([[1.0]]))  # error 2 on 1 pixel
    r2 = meter.process(np.zeros((1, 3)), np.ones((1, 3)))  # error 1 on 3 pixels (0 -> 1e-9)
    assert meter.compute([r1, r2])['rmse'] == pytest.approx(np.sqrt((4 + 3) / 4))
    negative = meter.process(np.array([[-2.0]]), np.array([[1.0]]))  # clamped to ~0
    assert meter.compute([negative])['rmse'] == pytest.approx(1.0)
    assert meter.process(np.ones((2, 2)), np.zeros((2, 2))) is None
    with pytest.raises(ValueError, match='must both be'):
        meter.process(np.ones((2, 2)), np.ones((2, 3)))
