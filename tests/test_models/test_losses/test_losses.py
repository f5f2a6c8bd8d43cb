"""mmase losses against hand-computed values."""
import math

import pytest
import torch
from mmseg.registry import MODELS


def test_balanced_bce_fixed_weight_by_hand():
    loss = MODELS.build(dict(type='BalancedBinaryCrossEntropyLoss', pos_weight=0.95))
    logits = torch.tensor([0.0, 2.0, -1.0, 5.0]).view(1, 1, 2, 2)
    target = torch.tensor([1, 0, 255, 1]).view(1, 1, 2, 2)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = -(0.95 * math.log(sig(0.0)) + 0.05 * math.log(1 - sig(2.0))
                 + 0.95 * math.log(sig(5.0))) / 3
    assert loss(logits, target).item() == pytest.approx(expected, rel=1e-6)
    assert loss.loss_name == 'loss_bce'


def test_balanced_bce_self_balanced_uses_negative_share():
    loss = MODELS.build(dict(type='BalancedBinaryCrossEntropyLoss', pos_weight=None))
    logits = torch.tensor([1.0, -1.0, 0.5, 0.0]).view(1, 1, 2, 2)
    target = torch.tensor([1, 0, 0, 0]).view(1, 1, 2, 2)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    w = 3 / 4  # share of negatives
    expected = -(w * math.log(sig(1.0)) + (1 - w) * (
        math.log(1 - sig(-1.0)) + math.log(1 - sig(0.5)) + math.log(1 - sig(0.0)))) / 4
    assert loss(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_balanced_bce_all_ignored_is_zero_with_grad():
    loss = MODELS.build(dict(type='BalancedBinaryCrossEntropyLoss', pos_weight=0.95))
    logits = torch.randn(1, 1, 2, 2, requires_grad=True)
    value = loss(logits, torch.full((1, 1, 2, 2), 255))
    value.backward()
    assert value.item() == 0 and logits.grad is not None


def test_balanced_bce_rejects_bad_weight():
    with pytest.raises(ValueError, match='pos_weight=1.5'):
        MODELS.build(dict(type='BalancedBinaryCrossEntropyLoss', pos_weight=1.5))


def test_normals_l1_normalises_and_skips_invalid():
    loss = MODELS.build(dict(type='NormalsL1Loss'))
    pred = torch.zeros(1, 3, 1, 2)
    pred[0, :, 0, 0] = torch.tensor([2.0, 0.0, 0.0])  # -> (1, 0, 0)
    pred[0, :, 0, 1] = torch.tensor([5.0, 5.0, 5.0])  # invalid pixel, ignored
    target = torch.zeros(1, 3, 1, 2)
    target[0, :, 0, 0] = torch.tensor([0.0, 1.0, 0.0])
    # |1-0| + |0-1| + |0-0| over 3 components of the one valid pixel
    assert loss(pred, target).item() == pytest.approx(2 / 3)


def test_depth_l1_on_valid_pixels_only():
    loss = MODELS.build(dict(type='DepthL1Loss'))
    pred = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2)
    target = torch.tensor([1.5, 0.0, 2.0, float('nan')]).view(1, 1, 2, 2)
    assert loss(pred, target).item() == pytest.approx((0.5 + 1.0) / 2)
