"""EdgeMeter: odsF with a distance tolerance on thinned maps, and the balanced BCE loss."""
import numpy as np
import pytest

from mmase.evaluation import EdgeMeter


def vertical_gt():
    """8x8, ground-truth edge: column 3, rows 1..6 (6 pixels)."""
    gt = np.zeros((8, 8), int)
    gt[1:7, 3] = 1
    return gt


def ods(meter, *pairs):
    return meter.compute([meter.process(p, g) for p, g in pairs])['odsF']


def test_thresholds():
    meter = EdgeMeter()
    assert len(meter.thresholds) == 99
    assert meter.thresholds[0] == 0.01 and meter.thresholds[-1] == 0.99


def test_perfect_prediction():
    gt = vertical_gt()
    assert ods(EdgeMeter(), (gt.astype(float), gt)) == pytest.approx(100.0)
    # a soft but well-ranked prediction is perfect at the best threshold
    soft = np.where(gt == 1, 0.7, 0.2)
    assert ods(EdgeMeter(), (soft, gt)) == pytest.approx(100.0)


def test_one_pixel_shift_within_and_beyond_tolerance():
    gt = vertical_gt()
    shifted = np.zeros((8, 8))
    shifted[1:7, 4] = 1.0
    # diagonal 8*sqrt(2) = 11.31 px: tolerance 0.1 -> 1.13 px (shift matched), 0.05 -> 0.57 px (not)
    assert ods(EdgeMeter(tolerance=0.1), (shifted, gt)) == pytest.approx(100.0)
    assert ods(EdgeMeter(tolerance=0.05), (shifted, gt)) == pytest.approx(0.0)


def test_partial_match_by_hand():
    gt = vertical_gt()
    pred = np.zeros((8, 8))
    pred[1:4, 3] = 0.9  # rows 1-3 on the edge
    pred[4:7, 5] = 0.5  # rows 4-6 two columns off
    meter = EdgeMeter(tolerance=0.1)  # 1.13 px
    record = meter.process(pred, gt)
    # t <= 0.5: 6 predicted, 3 correct; recalled: rows 1-3 and row 4 (1 px from (3, 3)) = 4 of 6
    #           F = 2 * 1/2 * 2/3 / (1/2 + 2/3) = 4/7
    # 0.5 < t <= 0.9: 3 predicted, 3 correct, recalled 4 of 6: F = 2 * 1 * 2/3 / (5/3) = 0.8
    # t > 0.9: nothing predicted
    t = meter.thresholds
    np.testing.assert_array_equal(record['predicted'],
                                  np.where(t <= 0.5, 6, np.where(t <= 0.9, 3, 0)))
    np.testing.assert_array_equal(record['correct'], np.where(t <= 0.9, 3, 0))
    np.testing.assert_array_equal(record['recalled'], np.where(t <= 0.9, 4, 0))
    assert record['gt_edges'] == 6
    assert meter.compute([record])['odsF'] == pytest.approx(80.0)


def test_counts_summed_over_images():
    gt = vertical_gt()
    empty = np.zeros((8, 8))
    meter = EdgeMeter()
    # image 1 perfect, image 2 misses all 6 edge pixels: P = 1, R = 1/2 -> F = 2/3
    assert ods(meter, (gt.astype(float), gt), (empty, gt)) == pytest.approx(200 / 3)


def test_ignored_pixels():
    gt = vertical_gt()
    gt[:, 6] = 255
    pred = np.where(gt == 1, 1.0, 0.0)
    pred[:, 6] = 1.0  # a second predicted line, on ignored pixels: neither right nor wrong
    assert ods(EdgeMeter(), (pred, gt)) == pytest.approx(100.0)
    unlabelled = vertical_gt()  # the same line labelled background: 8 false positives of 14
    assert ods(EdgeMeter(), (pred, unlabelled)) == pytest.approx(2 * (6 / 14) / (6 / 14 + 1) * 100)
    assert EdgeMeter().process(np.zeros((2, 2)), np.full((2, 2), 255)) is None


def test_balanced_bce_loss_by_hand():
    meter = EdgeMeter(pos_weight=0.95)
    pred = np.array([[0.9, 0.2], [0.5, 0.0]])
    gt = np.array([[1, 0], [255, 0]])
    expected = (-0.95 * np.log(0.9) - 0.05 * np.log(0.8) - 0.05 * np.log(1.0)) / 3
    assert meter.compute([meter.process(pred, gt)])['loss'] == pytest.approx(expected)
    # log(0) is clamped at -100, as torch's binary_cross_entropy
    out = meter.compute([meter.process(np.array([[1.0]]), np.array([[0]]))])
    assert out['loss'] == pytest.approx(0.05 * 100)


def test_errors():
    with pytest.raises(ValueError, match='tolerance must be > 0'):
        EdgeMeter(tolerance=0)
    with pytest.raises(ValueError, match=r'pos_weight must be in \[0, 1\]'):
        EdgeMeter(pos_weight=2)
    with pytest.raises(ValueError, match='probabilities'):
        EdgeMeter().process(np.full((2, 2), -0.5), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match='no image'):
        EdgeMeter().compute([])
