"""restore_prediction: one pass from head output to the prediction at the original size, equal to
the reference path (F.interpolate of the cropped, unflipped logits, then the activation); with
``input_resize``, from the head's own output, equal to the two resizes of mmseg's protocol (to the
padded input, then crop, flip back and to the original size); its pruned argmax equal to the
unpruned one; memory bounded by the labels."""
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmase.models.segmentors.output_restore import (activate, axis_map, compose, restore_output,
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


# ---------------------------------------------------------------- resize once from the head output
def two_step(out, meta, task_spec, align_corners, pad, head_align_corners, threshold=0.5):
    """mmseg's protocol, in two resizes: to the padded input, crop, flip back, resize to the
    original size, activate; returns the prediction and the logits at the original size."""
    padded = F.interpolate(out, size=pad, mode='bilinear', align_corners=head_align_corners)
    logits = restore_output(padded, meta, task_spec, align_corners)
    return activate(task_spec, logits, threshold), logits


#: (head (h, w), padded input (H, W), meta): up- and downsampling at either step, odd sizes
FUSED_CASES = [
    ((16, 20), (64, 80), dict(ori_shape=(50, 61), padding_size=(0, 7, 0, 5))),
    ((16, 20), (64, 80), dict(ori_shape=(97, 45), padding_size=(2, 7, 3, 5), flip=True,
                              flip_direction='vertical')),
    ((13, 17), (52, 68), dict(ori_shape=(37, 29), padding_size=(0, 3, 0, 0), flip=True,
                              flip_direction='horizontal')),
    ((33, 27), (20, 15), dict(ori_shape=(41, 13), padding_size=(1, 0, 2, 0), flip=True)),
    ((9, 11), (9, 11), dict(ori_shape=(9, 11))),  # nothing to resize
]


@pytest.mark.parametrize('head, pad, meta', FUSED_CASES)
@pytest.mark.parametrize('align_corners', [False, True])
@pytest.mark.parametrize('head_align_corners', [False, True])
def test_resize_once_matches_the_two_resizes(head, pad, meta, align_corners,
                                             head_align_corners):
    torch.manual_seed(0)
    out = 3 * torch.randn(1, 12, *head)
    fold = dict(input_resize=(pad, head_align_corners))
    for task_spec, channels in [(spec('sigmoid'), 1), (spec('identity'), 2),
                                (spec('normalize', (0, 1)), 3)]:
        got = restore_prediction(out[:, :channels], meta, task_spec, align_corners, **fold)
        want, logits = two_step(out[:, :channels], meta, task_spec, align_corners, pad,
                                head_align_corners)
        assert got.shape == want.shape and got.dtype == torch.float32
        if task_spec.activation == 'normalize':  # away from the origin, where norms amplify
            keep = logits.norm(dim=0) > 0.3
            got, want = got[:, keep], want[:, keep]
        torch.testing.assert_close(got, want, atol=4e-6, rtol=1e-5)
    binary = restore_prediction(out[:, :1], meta, spec('argmax'), align_corners, threshold=0.3,
                                **fold)
    want, logits = two_step(out[:, :1], meta, spec('argmax'), align_corners, pad,
                            head_align_corners, threshold=0.3)
    near = (logits.sigmoid() - 0.3).abs() < 1e-5
    assert torch.equal(binary[~near], want[~near])
    labels = restore_prediction(out, meta, spec('argmax'), align_corners, **fold)
    want, logits = two_step(out, meta, spec('argmax'), align_corners, pad, head_align_corners)
    assert labels.dtype == torch.int64 and labels.shape == want.shape
    top2 = logits.topk(2, dim=0).values
    differ = labels[0] != want[0]
    # labels differ only where the two best classes are within float32 rounding, and rarely
    assert (top2[0] - top2[1])[differ].max().item() < 1e-5 if differ.any() else True
    assert differ.float().mean() < 0.01


def test_torch_path_resizes_to_the_input_then_restores():
    """Off the CPU kernels (another device or dtype; float64 here) ``input_resize`` runs as
    mmseg's resize, then the grouped restore: exactly the two resizes."""
    torch.manual_seed(3)
    head, pad, meta = FUSED_CASES[1]
    out = torch.randn(1, 5, *head, dtype=torch.float64)
    for task_spec, channels in [(spec('argmax'), 5), (spec('normalize', (0, 1)), 3)]:
        got = restore_prediction(out[:, :channels], meta, task_spec, True,
                                 input_resize=(pad, False), max_elements=97 * 45 * 2)
        want, _ = two_step(out[:, :channels], meta, task_spec, True, pad, False)
        assert torch.equal(got, want)


def adversarial_logits(h, w):
    """Three classes per 2 x 2 head cell: class 2 is second best at every head pixel (9 against
    a checkerboard of 10 and 0 in classes 0 and 1) and wins between them (5, 5, 9); ties of
    integers elsewhere (the first class must win), and 4 distractors just below."""
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    checker = ((y + x) % 2).float()
    out = torch.stack([10 * checker, 10 * (1 - checker), torch.full((h, w), 9.0),
                       torch.full((h, w), 9.0), 8.999 + 0 * checker,
                       torch.randint(0, 3, (h, w)).float() + 7,
                       torch.randint(0, 11, (h, w)).float()])
    return out[None]


@pytest.mark.parametrize('head, pad, meta', FUSED_CASES)
@pytest.mark.parametrize('align_corners', [False, True])
def test_pruning_never_changes_a_label(head, pad, meta, align_corners):
    torch.manual_seed(2)
    cases = [adversarial_logits(*head),
             torch.randn(1, 40, *head) * 0.01,  # many classes within a hair of each other
             torch.randn(1, 40, *head).round()]  # exact ties everywhere
    for out in cases:
        for fold in (dict(input_resize=(pad, False)), dict(input_resize=(pad, True)), dict()):
            pruned = restore_prediction(out, meta, spec('argmax'), align_corners, prune=True,
                                        **fold)
            full = restore_prediction(out, meta, spec('argmax'), align_corners, prune=False,
                                      **fold)
            values = restore_prediction(out, meta, spec('identity'), align_corners, **fold)
            assert torch.equal(pruned, full)
            # both: the argmax of the same resampled values, the first class on ties
            assert torch.equal(pruned, values.argmax(0, keepdim=True))
            assert torch.equal(restore_prediction(out, meta, spec('argmax'), align_corners,
                                                  **fold), pruned)  # either, as the size says


def test_pruning_margin_covers_float_rounding():
    """Class 0 one or two float32 steps below a constant class 1 everywhere: its window maximum is
    below class 1's minimum, yet after rounding it ties or wins at some pixels (and ties go to the
    first class); without the margin the pruning would drop it there."""
    torch.manual_seed(0)
    ulp = float(np.spacing(np.float32(0.7)))
    below = 0.7 - ulp * torch.randint(1, 3, (6, 7)).float()
    out = torch.stack([below, torch.full((6, 7), 0.7)])[None]
    meta = dict(ori_shape=(31, 37), padding_size=(0, 1, 0, 2))
    pruned = restore_prediction(out, meta, spec('argmax'), input_resize=((23, 29), False),
                                prune=True)
    full = restore_prediction(out, meta, spec('argmax'), input_resize=((23, 29), False),
                              prune=False)
    assert (full == 0).any() and torch.equal(pruned, full)


def test_adversarial_middle_class_wins():
    out = adversarial_logits(4, 4)[:, :3]  # 0/10 checkerboard in classes 0 and 1, 9 in class 2
    labels = restore_prediction(out, dict(ori_shape=(8, 8)), spec('argmax'),
                                input_resize=((8, 8), True))
    assert (labels == 2).any() and (labels != 2).any()  # corners to 0 / 1, between them to 2
    want, _ = two_step(out, dict(ori_shape=(8, 8)), spec('argmax'), False, (8, 8), True)
    assert torch.equal(labels, want)


def test_compose_is_one_map_of_convex_weights():
    outer = axis_map(375, 384, False)  # crop of 384 rows of a 512 pad, back to 375
    inner = axis_map(512, 128, False)  # head rows to the padded input
    lo, weights = compose(outer, inner, 128)
    assert weights.dtype == np.float32 and lo.dtype == np.int64 and weights.shape[1] <= 4
    assert (weights >= 0).all() and np.allclose(weights.sum(1), 1, atol=1e-6)
    assert lo.min() >= 0 and (lo + weights.shape[1]).max() <= 128
    # the dense matrices multiply: one map = outer after inner
    dense = np.zeros((375, 128), np.float32)
    np.put_along_axis(dense, lo[:, None] + np.arange(weights.shape[1]), weights, 1)
    m_outer = np.zeros((375, 384), np.float32)
    np.put_along_axis(m_outer, outer[0][:, None] + np.arange(outer[1].shape[1]), outer[1], 1)
    m_inner = np.zeros((512, 128), np.float32)
    np.put_along_axis(m_inner, inner[0][:, None] + np.arange(inner[1].shape[1]), inner[1], 1)
    np.testing.assert_allclose(dense, m_outer @ m_inner[:384], atol=1e-6)


def _rss_kib(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise KeyError(field)


def test_large_image_memory_is_the_labels():
    """A 2000 x 3000 original from a 59-class 16 x 16 head output: the peak resident memory grows
    by about the int64 labels (46 MiB), not the (C, H, W) logits (1.3 GiB); the same holds at
    12000 x 12000 (1.1 GiB of labels, 32 GiB of logits), too slow for a test."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # reset the peak (VmHWM) to the current resident set
    except OSError:
        pytest.skip('needs Linux /proc/self/clear_refs')
    torch.manual_seed(0)
    out = torch.randn(1, 59, 16, 16)
    meta = dict(ori_shape=(2000, 3000), padding_size=(0, 0, 0, 21))
    restore_prediction(out[:, :, :4, :4], dict(ori_shape=(6, 6)), spec('argmax'),
                       input_resize=((8, 8), False))  # compiled before the measure
    before = _rss_kib('VmRSS')
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    labels = restore_prediction(out, meta, spec('argmax'), input_resize=((64, 64), False))
    grown = (_rss_kib('VmHWM') - before) * 1024
    assert labels.shape == (1, 2000, 3000)
    assert grown < labels.numel() * 8 * 1.25 + (64 << 20)
