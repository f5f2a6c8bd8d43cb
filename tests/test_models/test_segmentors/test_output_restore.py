"""restore_prediction: one pass from head output to the prediction at the original size, equal to
the reference path (F.interpolate of the cropped, unflipped logits, then the activation)."""
import types

import numpy as np
import pytest
import torch

from mmase.models.segmentors.output_restore import (activate, restore_output,
                                                    restore_prediction, source_index)


def spec(activation, flip_sign=None):
    return types.SimpleNamespace(activation=activation, flip_sign=flip_sign)


def reference(out, meta, task_spec, align_corners, threshold=0.5):
    return activate(task_spec, restore_output(out, meta, task_spec, align_corners), threshold)


METAS = [
    dict(ori_shape=(23, 31), padding_size=(0, 3, 0, 5), flip=False),  # upsampled, padded
    dict(ori_shape=(9, 7), padding_size=(1, 0, 2, 0), flip=True, flip_direction='horizontal'),
    dict(ori_shape=(17, 16), flip=True, flip_direction='vertical'),  # same width
]


@pytest.mark.parametrize('meta', METAS)
@pytest.mark.parametrize('align_corners', [False, True])
def test_cpu_kernel_matches_the_reference(meta, align_corners):
    torch.manual_seed(0)
    out = torch.randn(1, 6, 12, 16)
    for task_spec, channels in [(spec('sigmoid'), 1), (spec('identity'), 2),
                                (spec('normalize', (0, 1)), 3)]:
        got = restore_prediction(out[:, :channels], meta, task_spec, align_corners)
        want = reference(out[:, :channels], meta, task_spec, align_corners)
        assert got.shape == want.shape and got.dtype == torch.float32
        torch.testing.assert_close(got, want, atol=2e-6, rtol=1e-5)
    labels = restore_prediction(out, meta, spec('argmax'), align_corners)
    logits = restore_output(out, meta, spec('argmax'), align_corners)
    want = logits.argmax(0, keepdim=True)
    top2 = logits.topk(2, dim=0).values
    clear = (top2[0] - top2[1]) > 1e-4  # away from near-ties, where rounding may decide
    assert labels.dtype == torch.int64 and labels.shape == want.shape
    assert clear.float().mean() > 0.95
    assert torch.equal(labels[0][clear], want[0][clear])
    binary = restore_prediction(out[:, :1], meta, spec('argmax'), align_corners, threshold=0.3)
    assert torch.equal(binary, (restore_output(out[:, :1], meta, spec('argmax'),
                                               align_corners).sigmoid() > 0.3).long())


def test_grouped_path_is_the_reference_argmax_exactly():
    torch.manual_seed(1)
    out = torch.randn(1, 7, 10, 12, dtype=torch.float64)  # not float32: the torch path
    meta = METAS[1]
    want = reference(out, meta, spec('argmax'), False)
    for max_elements in (1, 3 * 9 * 7, 1 << 24):  # one class per group, 3, all
        got = restore_prediction(out, meta, spec('argmax'), max_elements=max_elements)
        assert torch.equal(got, want)


def test_source_index_by_hand():
    # 2 -> 4 pixels, align_corners=False: sources -0.25 (clamped 0), 0.25, 0.75, 1.25
    first, second, weight = source_index(4, 2, False)
    np.testing.assert_array_equal(first, [0, 0, 0, 1])
    np.testing.assert_array_equal(second, [1, 1, 1, 1])
    np.testing.assert_allclose(weight, [0, 0.25, 0.75, 0.25])
    first, second, _ = source_index(4, 2, False, flip=True)
    np.testing.assert_array_equal(first, [1, 1, 1, 0])


def test_one_channel_argmax_needs_its_threshold():
    with pytest.raises(ValueError, match='threshold'):
        restore_prediction(torch.zeros(1, 1, 4, 4), dict(ori_shape=(4, 4)), spec('argmax'))
