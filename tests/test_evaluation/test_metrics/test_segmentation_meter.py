"""SegmentationMeter: dataset-level mIoU, 255 ignored, human-parts skipping."""
import numpy as np
import pytest

from mmase.evaluation import SegmentationMeter, build_task_meter

# two 2x2 images, 3 classes (hand-computed below)
GT1, PRED1 = np.array([[0, 1], [2, 255]]), np.array([[0, 1], [1, 2]])
GT2, PRED2 = np.array([[1, 1], [2, 2]]), np.array([[1, 0], [2, 2]])


def test_pooled_miou_by_hand():
    meter = SegmentationMeter(3)
    records = [meter.process(PRED1, GT1), meter.process(PRED2, GT2)]
    # class 0: TP 1, FP 1 (img2 gt 1 -> 0), FN 0          -> 1/2
    # class 1: TP 2, FP 1 (img1 gt 2 -> 1), FN 1          -> 2/4
    # class 2: TP 2, FP 0 (the ignored pixel's 2 is not counted), FN 1  -> 2/3
    np.testing.assert_allclose(meter.class_iou(records), [1 / 2, 1 / 2, 2 / 3])
    assert meter.compute(records)['mIoU'] == pytest.approx((1 / 2 + 1 / 2 + 2 / 3) / 3 * 100)
    np.testing.assert_array_equal(records[0]['confusion'], [[1, 0, 0], [0, 1, 0], [0, 1, 0]])


def test_pooled_not_per_image_mean():
    meter = SegmentationMeter(2)
    # image 1: 1 px class 0 right; image 2: 3 px class 1, one wrong
    r1 = meter.process(np.array([[0]]), np.array([[0]]))
    r2 = meter.process(np.array([[1, 1, 0]]), np.array([[1, 1, 1]]))
    # pooled: class 0 TP 1 FP 1 -> 1/2; class 1 TP 2 FN 1 -> 2/3
    assert meter.compute([r1, r2])['mIoU'] == pytest.approx((1 / 2 + 2 / 3) / 2 * 100)


def test_class_never_seen_is_left_out_of_the_mean():
    meter = SegmentationMeter(4)  # class 3 appears nowhere
    records = [meter.process(PRED1, GT1), meter.process(PRED2, GT2)]
    assert np.isnan(meter.class_iou(records)[3])
    assert meter.compute(records)['mIoU'] == pytest.approx((1 / 2 + 1 / 2 + 2 / 3) / 3 * 100)


def test_human_parts_skips_images_without_parts():
    meter = build_task_meter('human_parts', num_classes=3)
    assert meter.skip_no_foreground
    # all background / all ignore / background + ignore: skipped, whatever the prediction
    assert meter.process(np.ones((2, 2), int), np.zeros((2, 2), int)) is None
    assert meter.process(np.ones((2, 2), int), np.full((2, 2), 255)) is None
    assert meter.process(np.ones((2, 2), int), np.array([[0, 255], [0, 0]])) is None
    record = meter.process(np.array([[0, 1], [2, 2]]), np.array([[0, 1], [1, 2]]))
    # class 0: 1/1; class 1: TP 1 FN 1 -> 1/2; class 2: TP 1 FP 1 -> 1/2
    assert meter.compute([record])['mIoU'] == pytest.approx((1 + 0.5 + 0.5) / 3 * 100)
    # semseg does not skip
    semseg = build_task_meter('semseg', num_classes=3)
    assert semseg.process(np.ones((2, 2), int), np.zeros((2, 2), int)) is not None


def test_errors():
    meter = SegmentationMeter(3)
    with pytest.raises(ValueError, match='labels outside'):
        meter.process(np.zeros((2, 2), int), np.array([[0, 7], [0, 0]]))
    with pytest.raises(ValueError, match='class ids outside'):
        meter.process(np.array([[0, 3], [0, 0]]), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match='must both be'):
        meter.process(np.zeros((2, 3), int), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match='no labelled pixel'):
        meter.compute([meter.process(np.zeros((2, 2), int), np.full((2, 2), 255))])
    with pytest.raises(ValueError, match='num_classes'):
        SegmentationMeter(1)
    with pytest.raises(ValueError, match="task 'semseg' needs num_classes"):
        build_task_meter('semseg')
