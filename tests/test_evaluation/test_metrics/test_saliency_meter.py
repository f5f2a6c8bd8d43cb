"""SaliencyMeter: the three protocols, the InvPT second-sigmoid quirk, the ASTMT / MTLoRA mIoU and
the pooled two-class IoU at 0.5."""
import numpy as np
import pytest

from mmase.evaluation import SaliencyMeter
from mmase.evaluation.metrics.saliency_meter import ASTMT_THRESHOLDS, POOLED_THRESHOLDS

# one image: the two foreground pixels score 0.9 and 0.5, the background 0.45 and 0.1
GT = np.array([[1, 1], [0, 0]])
PRED = np.array([[0.9, 0.5], [0.45, 0.1]])

# two images for the pooled / per-image protocols (no score sits on a threshold)
GT_A, PRED_A = np.array([[1, 0], [0, 0]]), np.array([[0.8, 0.28], [0.1, 0.1]])
GT_B, PRED_B = np.array([[1, 1], [0, 0]]), np.array([[0.58, 0.1], [0.68, 0.1]])


def f_beta(p, r, b2=0.3):
    return (1 + b2) * p * r / (b2 * p + r)


def run(protocol, pairs):
    meter = SaliencyMeter(protocol)
    return meter.compute([meter.process(p, g) for p, g in pairs])


def test_thresholds():
    np.testing.assert_allclose(POOLED_THRESHOLDS, np.arange(1, 20) * 0.05)
    assert len(ASTMT_THRESHOLDS) == 15
    assert ASTMT_THRESHOLDS[0] == 0.2 and ASTMT_THRESHOLDS[-1] == 0.9


def test_invpt_second_sigmoid_differs_from_atrc_by_hand():
    # atrc: at t = 0.5 exactly the two foreground pixels are >= t  -> P = R = 1 -> maxF = 1
    atrc = run('atrc', [(PRED, GT)])
    assert atrc['maxF'] == pytest.approx(100.0)
    # invpt: thresholds act on sigmoid(p) = 0.711, 0.622, 0.611, 0.525
    #   t <= 0.50: all 4 positive       P = 1/2, R = 1   -> 0.565
    #   t = 0.55, 0.60: 3 positive      P = 2/3, R = 1   -> 0.722
    #   t = 0.65, 0.70: only 0.711      P = 1,   R = 1/2 -> 0.8125
    #   t >= 0.75: none                                  -> 0
    invpt = run('invpt', [(PRED, GT)])
    assert invpt['maxF'] == pytest.approx(f_beta(1, 0.5) * 100) == pytest.approx(81.25)
    assert invpt['maxF_atrc'] == pytest.approx(100.0)  # both numbers are reported


def test_pooled_protocols_over_two_images_by_hand():
    # atrc (p >= t), 3 foreground pixels in all:
    #   t 0.05-0.10: 8 predicted, TP 3      P 3/8  R 1
    #   t 0.15-0.25: 4 predicted, TP 2      P 1/2  R 2/3
    #   t 0.30-0.55: 3 predicted, TP 2      P 2/3  R 2/3
    #   t 0.60-0.65: 2 predicted, TP 1      P 1/2  R 1/3
    #   t 0.70-0.80: 1 predicted, TP 1      P 1    R 1/3   <- best: 0.6842
    atrc = run('atrc', [(PRED_A, GT_A), (PRED_B, GT_B)])
    best = max(f_beta(3 / 8, 1), f_beta(1 / 2, 2 / 3), f_beta(2 / 3, 2 / 3), f_beta(1 / 2, 1 / 3),
               f_beta(1, 1 / 3))
    assert best == pytest.approx(f_beta(1, 1 / 3))
    assert atrc['maxF'] == pytest.approx(best * 100)
    # invpt: sigmoid -> A 0.690 0.570 0.525 0.525, B 0.641 0.525 0.664 0.525
    #   t 0.55: 4 predicted TP 2; t 0.60: 3 predicted TP 2 (best, 2/3); t 0.65: 2 predicted TP 1;
    #   t >= 0.70: none
    invpt = run('invpt', [(PRED_A, GT_A), (PRED_B, GT_B)])
    assert invpt['maxF'] == pytest.approx(f_beta(2 / 3, 2 / 3) * 100)
    assert invpt['maxF_atrc'] == pytest.approx(atrc['maxF'])
    # pooled two-class IoU at 0.5 (p > 0.5): TP 2, FP 1, FN 1, TN 4 -> (2/4 + 4/6) / 2
    assert invpt['mIoU_pooled'] == pytest.approx((2 / 4 + 4 / 6) / 2 * 100)
    assert atrc['mIoU_pooled'] == invpt['mIoU_pooled']
    # the saliency mIoU is the ASTMT meter's in every protocol (see the astmt test below)
    assert invpt['mIoU'] == atrc['mIoU'] == pytest.approx((1 + 1 / 3) / 2 * 100)


def test_astmt_per_image_average_by_hand():
    # per image (p > t) at t = 0.2, 0.25, ..., 0.9:
    #   A: t < 0.28: P 1/2 R 1;  0.3 <= t < 0.8: P 1 R 1;  t >= 0.8: P 0 R 0
    #   B: t < 0.58: P 1/2 R 1/2; 0.6 <= t < 0.68: P 0 R 0; t >= 0.7: P 0 R 0
    # mean over the two images, F with beta^2 = 1:
    #   t 0.20-0.25: P 1/2 R 3/4 -> 0.6;  t 0.30-0.55: P 3/4 R 3/4 -> 0.75 (best);  later <= 0.5
    astmt = run('astmt', [(PRED_A, GT_A), (PRED_B, GT_B)])
    assert astmt['maxF'] == pytest.approx(75.0)
    # per-image foreground IoU: A 1/2 then 1 then 0; B 1/3 then 0 -> best mean (1 + 1/3) / 2
    assert astmt['mIoU'] == pytest.approx((1 + 1 / 3) / 2 * 100)
    assert 'maxF_atrc' not in astmt and 'mIoU_astmt' not in astmt
    assert astmt['mIoU_pooled'] == pytest.approx((2 / 4 + 4 / 6) / 2 * 100)


def test_astmt_empty_image_conventions():
    meter = SaliencyMeter('astmt')
    record = meter.process(np.zeros((2, 2)), np.zeros((2, 2), int))
    # nothing predicted, nothing to find: P = R = 0 (as ASTMT's +1e-12), IoU = 1
    np.testing.assert_array_equal(record['astmt_precision'], 0)
    np.testing.assert_array_equal(record['astmt_recall'], 0)
    np.testing.assert_array_equal(record['jaccard'], 1)


def test_ignored_pixels_do_not_count():
    gt = np.array([[1, 255], [0, 255]])
    pred = np.array([[0.9, 0.9], [0.1, 0.9]])
    for protocol in ('atrc', 'astmt'):
        assert run(protocol, [(pred, gt)])['maxF'] == pytest.approx(100.0)
    meter = SaliencyMeter()
    assert meter.process(pred, np.full((2, 2), 255)) is None


def test_errors():
    meter = SaliencyMeter()
    with pytest.raises(ValueError, match=r'probabilities in \[0, 1\]'):
        meter.process(np.array([[1.5, 0.0]]), np.array([[1, 0]]))
    with pytest.raises(ValueError, match='must hold 0, 1 or 255'):
        meter.process(np.array([[0.5, 0.0]]), np.array([[2, 0]]))
    with pytest.raises(ValueError, match="protocol='mti'"):
        SaliencyMeter('mti')
    with pytest.raises(ValueError, match='no image'):
        meter.compute([])


def mtlora_style_miou(pairs):
    """The saliency mIoU as MTLoRA's ``evaluation/eval_sal_no_beta.py`` computes it, written
    out loop by loop: per image and threshold t in linspace(0.2, 0.9, 15), predicted = p > t,
    Jaccard = |gt & pred| / |gt | pred| (1 when both are empty); mean over images, max over t."""
    thresholds = np.linspace(0.2, 0.9, 15)
    jaccards = np.zeros((len(pairs), len(thresholds)))
    for i, (pred, gt) in enumerate(pairs):
        for j, t in enumerate(thresholds):
            mask, fg = pred > t, gt.astype(bool)
            union = np.logical_or(mask, fg).sum()
            jaccards[i, j] = 1.0 if union == 0 else np.logical_and(mask, fg).sum() / union
    return jaccards.mean(0).max() * 100


@pytest.mark.parametrize('protocol', ['invpt', 'atrc', 'astmt'])
def test_miou_matches_the_mtlora_meter_on_random_images(protocol):
    rng = np.random.default_rng(0)
    pairs = []
    for k in range(6):
        gt = (rng.random((9, 7)) < 0.3 + 0.1 * k).astype(np.int64)
        pred = np.clip(gt * 0.35 + rng.random((9, 7)) * 0.65, 0, 1)
        pairs.append((pred, gt))
    # an empty image predicted empty counts 1 at every threshold; one predicted full counts 0
    pairs.append((np.full((4, 4), 0.1), np.zeros((4, 4), np.int64)))
    pairs.append((np.full((4, 4), 0.95), np.zeros((4, 4), np.int64)))
    expected = mtlora_style_miou(pairs)
    assert 30 < expected < 95  # not a degenerate case
    assert run(protocol, pairs)['mIoU'] == pytest.approx(expected, abs=1e-9)
