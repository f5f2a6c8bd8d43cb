"""NormalsMeter: angular error on valid pixels, ASTMT statistics."""
import numpy as np
import pytest

from mmase.evaluation import NormalsMeter
from mmase.evaluation.metrics.normals_meter import angular_error


def normals_pair():
    """2x2 image: errors 0, 45, 90 degrees on three valid pixels, the fourth invalid."""
    gt = np.zeros((3, 2, 2))
    pred = np.zeros((3, 2, 2))
    gt[:, 0, 0], pred[:, 0, 0] = (0, 0, 1), (0, 0, 2)  # same direction, not unit: 0 deg
    gt[:, 0, 1], pred[:, 0, 1] = (0, 0, 1), (1, 0, 1)  # 45 deg
    gt[:, 1, 0], pred[:, 1, 0] = (1, 0, 0), (0, 1, 0)  # 90 deg
    pred[:, 1, 1] = (1, 0, 0)  # gt (0, 0, 0): invalid, not counted
    return pred, gt


def test_angular_error():
    a = np.array([[1, 0, 0], [0, 0, 3]], float).T
    b = np.array([[1, 1, 0], [0, 0, -1]], float).T
    np.testing.assert_allclose(angular_error(a, b), [45, 180])


def test_mean_error_by_hand():
    meter = NormalsMeter('invpt')
    record = meter.process(*normals_pair())
    assert record['count'] == 3
    out = meter.compute([record])
    assert out == pytest.approx(dict(mErr=45.0))


def test_astmt_statistics_by_hand():
    meter = NormalsMeter('astmt')
    pred, gt = normals_pair()
    pred2 = np.zeros((3, 1, 1))
    pred2[:, 0, 0] = (np.cos(np.radians(20)), np.sin(np.radians(20)), 0)
    gt2 = np.zeros((3, 1, 1))
    gt2[0] = 1
    out = meter.compute([meter.process(pred, gt), meter.process(pred2, gt2)])
    errors = np.array([0, 45, 90, 20])  # pooled over the set
    assert out['mErr'] == pytest.approx(errors.mean())
    assert out['rmse'] == pytest.approx(np.sqrt(np.mean(errors**2)))
    assert out['within11.25'] == pytest.approx(25.0)
    assert out['within22.5'] == pytest.approx(50.0)
    assert out['within30'] == pytest.approx(50.0)
    # histogram median: half of 4 pixels is reached in the 20-degree bin
    assert 20.0 <= out['median'] <= 20.1


def test_histogram_median_matches_numpy_on_a_large_set():
    rng = np.random.default_rng(0)
    gt = np.zeros((3, 200, 300))
    gt[2] = 1
    pred = gt + rng.normal(scale=0.3, size=gt.shape)
    meter = NormalsMeter('astmt')
    out = meter.compute([meter.process(pred, gt)])
    errors = angular_error(pred.reshape(3, -1), gt.reshape(3, -1))
    assert out['median'] == pytest.approx(np.median(errors), abs=0.01)
    assert out['mErr'] == pytest.approx(errors.mean())


def test_invalid_images_and_errors():
    meter = NormalsMeter()
    assert meter.process(np.ones((3, 2, 2)), np.zeros((3, 2, 2))) is None
    with pytest.raises(ValueError, match='no image with a valid'):
        meter.compute([])
    with pytest.raises(ValueError, match=r'must both be \(3, H, W\)'):
        meter.process(np.ones((1, 2, 2)), np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match='NaN'):
        meter.process(np.full((3, 2, 2), np.nan), np.ones((3, 2, 2)))


def test_compiled_errors_equal_angular_error():
    """The meter's one-pass loop gives angular_error's values on the valid pixels (any float)."""
    from mmase.evaluation.metrics.normals_meter import _valid_errors
    rng = np.random.default_rng(5)
    pred = rng.normal(size=(3, 7, 9)).astype(np.float32)
    gt = rng.normal(size=(3, 7, 9))
    gt[:, 2] = 0  # an invalid row
    pred[:, 0, 0] = 0  # a zero prediction scores 90 degrees
    valid = (gt != 0).any(0)
    expected = angular_error(pred[:, valid].astype(np.float64), gt[:, valid])
    np.testing.assert_allclose(_valid_errors(pred, gt), expected, rtol=0, atol=1e-12)
    assert _valid_errors(pred, gt).size == 54 and expected[0] == pytest.approx(90.0)
