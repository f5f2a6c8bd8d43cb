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
    # t <= 0.5: 6 predicted, 3 matched (rows 1-3; ground-truth row 4 is within 1 px of the
    #           predicted (3, 3), but that pixel is already paired with (3, 3)): F = 1/2
    # 0.5 < t <= 0.9: 3 predicted, 3 matched of 6: P = 1, R = 1/2, F = 2/3
    # t > 0.9: nothing predicted
    t = meter.thresholds
    np.testing.assert_array_equal(record['predicted'],
                                  np.where(t <= 0.5, 6, np.where(t <= 0.9, 3, 0)))
    np.testing.assert_array_equal(record['matched'], np.where(t <= 0.9, 3, 0))
    assert record['gt_edges'] == 6
    assert meter.compute([record])['odsF'] == pytest.approx(200 / 3)


def test_one_to_one():
    """Two predicted lines beside one ground-truth line: only one of them can be matched."""
    gt = vertical_gt()
    pred = np.zeros((8, 8))
    pred[1:7, 2] = pred[1:7, 4] = 1.0  # both 1 px from the edge, 12 pixels
    meter = EdgeMeter(tolerance=0.1)  # 1.13 px
    record = meter.process(pred, gt)
    assert record['predicted'][0] == 12 and record['matched'][0] == 6
    # P = 1/2, R = 1 (an "any pixel within the tolerance" count would give P = 1)
    assert meter.compute([record])['odsF'] == pytest.approx(200 / 3)
    # one ground-truth pixel and a predicted 3x3 square around it: one pair at most, however the
    # square thins
    single = np.zeros((8, 8), int)
    single[4, 4] = 1
    square = np.zeros((8, 8))
    square[3:6, 3:6] = 1.0
    record = EdgeMeter(tolerance=0.2).process(square, single)
    assert record['matched'].max() == 1


def test_summary_by_hand():
    gt = vertical_gt()
    pred = np.zeros((8, 8))
    pred[1:4, 3] = 0.9
    pred[4:7, 5] = 0.5
    meter = EdgeMeter(tolerance=0.1)
    # image 2: perfect at t <= 0.3, nothing above
    records = [meter.process(pred, gt), meter.process(np.where(gt == 1, 0.3, 0.0), gt)]
    out = meter.summary(records)
    t = np.asarray(out['thresholds'])
    # pooled: t <= 0.3: 9 of 12 predicted, 9 of 12 recalled, F = 3/4;
    #         0.3 < t <= 0.5: 3 of 6, 3 of 12, F = 1/3; 0.5 < t <= 0.9: 3 of 3, 3 of 12, F = 2/5
    f_expected = np.where(t <= 0.3, 3 / 4, np.where(t <= 0.5, 1 / 3, np.where(t <= 0.9, 0.4, 0)))
    np.testing.assert_allclose(out['f'], f_expected)
    assert out['odsF'] == pytest.approx(75.0) and out['ods_threshold'] == pytest.approx(0.01)
    # per image best: image 1 at t in (0.5, 0.9] (3 of 3, 3 of 6), image 2 at t <= 0.3 (6 of 6)
    # -> 9 of 9 predicted, 9 of 12 recalled: F = 2 * 3/4 / (7/4) = 6/7
    assert out['oisF'] == pytest.approx(600 / 7)
    # curve (R, P): (3/4, 3/4), (1/4, 1/2), (1/4, 1), (0, 0); the lowest threshold of recall 1/4
    # has P = 1/2: AP = sum over r = 0, 0.01, .., 0.75 of the interpolated P, times 0.01
    grid = np.linspace(0, 1, 101)
    precision = np.interp(grid, [0, 0.25, 0.75], [0, 0.5, 0.75], right=0)
    assert out['AP'] == pytest.approx(precision.sum())
    assert out['num_images'] == 2 and len(out['precision']) == 99


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
