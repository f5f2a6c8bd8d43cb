"""Sliding-window inference for every task at once: mmseg's ``test_cfg=dict(mode='slide',
crop_size=(h, w), stride=(sh, sw))``.

The input is covered by windows of ``crop_size`` placed every ``stride`` (the last row and column
of windows moved back inside the image, as mmseg's ``EncoderDecoder.slide_inference`` does); each
window runs the whole model once (one backbone pass for all tasks) and every task's head output
at the window's size is summed into place; each pixel's sum is divided by the number of windows
covering it. The per-window metas carry ``img_shape`` as a ``torch.Size`` of the window (mmseg's
marker), so a head's ``predict`` resizes its output to the window.
"""
from typing import Callable, Dict, List, Sequence, Tuple

import torch
from torch import Tensor


def check_slide_cfg(test_cfg: dict) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """``(crop_size, stride)`` of a ``mode='slide'`` test_cfg; ValueError naming the field when
    either is not a pair of positive ints or a stride exceeds its crop (pixels left uncovered)."""
    pairs = []
    for key in ('crop_size', 'stride'):
        value = test_cfg.get(key)
        if (not isinstance(value, (list, tuple)) or len(value) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                           for v in value)):
            raise ValueError(f"model.test_cfg.{key} must be a pair of positive ints (h, w) for "
                             f"mode='slide', got {value!r}")
        pairs.append((int(value[0]), int(value[1])))
    crop, stride = pairs
    if stride[0] > crop[0] or stride[1] > crop[1]:
        raise ValueError(f'model.test_cfg.stride={stride} exceeds crop_size={crop}: the '
                         f'windows would leave pixels uncovered')
    return crop, stride


def window_starts(size: int, crop: int, stride: int) -> List[int]:
    """First pixel of each window along one axis of ``size`` pixels (mmseg's placement: every
    ``stride``, the last one moved back so it ends at the border; one window if ``size <= crop``).
    """
    count = max(size - crop + stride - 1, 0) // stride + 1
    return [max(min(i * stride + crop, size) - crop, 0) for i in range(count)]


def slide_inference(encode_decode: Callable[[Tensor, List[dict]], Dict[str, Tensor]],
                    inputs: Tensor, batch_img_metas: Sequence[dict], crop_size: Tuple[int, int],
                    stride: Tuple[int, int]) -> Dict[str, Tensor]:
    """Every task's output at the input size, averaged over sliding windows.

    Args:
        encode_decode: ``(crop (N, 3, h, w), metas) -> task -> (N, C, h, w)`` (the segmentor's).
        inputs (Tensor): ``(N, 3, H, W)`` normalised batch.
        batch_img_metas (Sequence[dict]): One meta per image (copied per window, not changed).
        crop_size, stride: ``(h, w)`` of the windows and of their spacing, pixels.

    Returns:
        dict[str, Tensor]: task -> ``(N, C, H, W)``.
    """
    height, width = inputs.shape[2:]
    count = inputs.new_zeros((inputs.shape[0], 1, height, width))
    sums: Dict[str, Tensor] = {}
    for top in window_starts(height, crop_size[0], stride[0]):
        for left in window_starts(width, crop_size[1], stride[1]):
            crop = inputs[:, :, top:top + crop_size[0], left:left + crop_size[1]]
            shape = torch.Size(crop.shape[2:])
            metas = [dict(meta, img_shape=shape, pad_shape=shape) for meta in batch_img_metas]
            bottom, right = top + crop.shape[2], left + crop.shape[3]
            for task, out in encode_decode(crop, metas).items():
                if task not in sums:
                    sums[task] = out.new_zeros(out.shape[:2] + (height, width))
                sums[task][:, :, top:bottom, left:right] += out
            count[:, :, top:bottom, left:right] += 1
    return {task: total / count for task, total in sums.items()}
