"""Head outputs back to the original image: crop padding, undo a test-time flip, resize to
``ori_shape``, turn logits into a task's prediction (its declared ``activation``).

Used by :class:`MultiTaskEncoderDecoder` (``_postprocess``) and :class:`MultiTaskTTAModel`.

:func:`restore_prediction` does all of it in one pass and never holds the ``(C, H, W)`` logits at
the original size: on CPU one compiled loop (numba) interpolates each output pixel's classes
from the four source pixels (PyTorch's bilinear weights, float32) and keeps the running argmax,
so its memory is the prediction itself; elsewhere (GPU) the classes are resized in groups of at
most ``max_elements / (H W)`` with ``F.interpolate`` and a running argmax. Crop and flip are index
arithmetic, never copies. :func:`restore_output` (the full logits, for test-time augmentation's
averages) resizes with ``F.interpolate`` as mmseg does.
"""
from typing import Optional, Tuple

import numba
import numpy as np
import torch
import torch.nn.functional as F
from mmseg.models.utils import resize
from torch import Tensor

#: Largest number of floats a restore holds at the original size besides its output (GPU path).
MAX_ELEMENTS = 1 << 24


def unflip(out: Tensor, direction: str, spec) -> Tensor:
    """Flip a (1, C, H, W) output back; a vector map (``spec.flip_sign``, normals) also
    changes the sign of its x (or y) channel."""
    horizontal = direction == 'horizontal'
    out = out.flip(dims=(3 if horizontal else 2, ))
    if spec.flip_sign is not None:
        component = spec.flip_sign[0 if horizontal else 1]
        out = out.clone()
        out[:, component] = -out[:, component]
    return out


def _crop(out: Tensor, meta: dict) -> Tensor:
    """(1, C, h, w) -> the view without the padding of ``meta``."""
    height, width = out.shape[-2:]
    left, right, top, bottom = meta.get('img_padding_size', meta.get('padding_size', (0, 0, 0, 0)))
    return out[:, :, top:height - bottom, left:width - right]


def restore_output(out: Tensor, meta: dict, spec, align_corners: bool = False) -> Tensor:
    """``(1, C, h, w)`` output of one image -> ``(C, H, W)`` at its ``ori_shape``: padding
    cropped, a test-time flip undone (:func:`unflip`), bilinear resize (still logits)."""
    out = _crop(out, meta)
    if meta.get('flip', False):
        out = unflip(out, meta.get('flip_direction', 'horizontal'), spec)
    return resize(out, size=tuple(meta['ori_shape'][:2]), mode='bilinear',
                  align_corners=align_corners, warning=False)[0]


def activate(spec, out: Tensor, threshold: Optional[float] = None) -> Tensor:
    """(C, H, W) head output -> the prediction, by the declaration's ``activation``;
    ``threshold``: a 1-channel ``argmax`` head's foreground threshold (its ``head.threshold``)."""
    if spec.activation == 'argmax':
        if out.shape[0] == 1:
            if threshold is None:
                raise ValueError('a 1-channel argmax head needs its threshold')
            return (out.sigmoid() > threshold).long()
        return out.argmax(dim=0, keepdim=True)
    if spec.activation == 'sigmoid':
        return out.sigmoid() if out.shape[0] == 1 else out.softmax(dim=0)[1:2]
    if spec.activation == 'normalize':
        return F.normalize(out, p=2, dim=0)
    return out  # identity: depth in metres, any regressed value


def source_index(out_size: int, in_size: int, align_corners: bool,
                 flip: bool = False) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PyTorch's bilinear source pixels and weights along one axis (float32 arithmetic, as
    ``upsample_bilinear2d`` on CPU).

    Returns:
        tuple: int64 ``(out_size,)`` first and second source index, float32 ``(out_size,)``
        weight of the second; ``flip`` mirrors the source indices (a flipped input read back).
    """
    dst = np.arange(out_size, dtype=np.float32)
    if in_size == out_size:
        first = np.arange(out_size, dtype=np.int64)
        second, weight = first.copy(), np.zeros(out_size, np.float32)
    else:
        if align_corners:
            ratio = np.float32((in_size - 1) / (out_size - 1)) if out_size > 1 else np.float32(0)
            real = ratio * dst
        else:
            ratio = np.float32(in_size) / np.float32(out_size)
            real = np.maximum(ratio * (dst + np.float32(0.5)) - np.float32(0.5), np.float32(0))
        first = real.astype(np.int64)
        second = first + (first < in_size - 1)
        weight = np.clip(real - first.astype(np.float32), 0, 1).astype(np.float32)
    if flip:
        first, second = in_size - 1 - first, in_size - 1 - second
    return first, second, weight


@numba.njit(cache=True, nogil=True)
def _bilinear_kernel(src, rows, cols, out, labels):
    """Bilinear values of ``src`` (C, h, w) float32 at the output grid (PyTorch's weights; rows
    blended first, then columns). ``rows`` / ``cols``: (first, second, weight) per output row /
    column. With ``labels`` of shape (H, W) (``out`` unused) it keeps only the argmax over
    channels (the first on ties); else it writes ``out`` (C, H, W)."""
    r0, r1, rw = rows
    c0, c1, cw = cols
    num = src.shape[0]
    height, width = r0.size, c0.size
    argmax = labels.shape[0] > 0
    low = min(c0.min(), c1.min())
    high = max(c0.max(), c1.max()) + 1
    line = np.empty(high, np.float32)  # one source row blended between two rows
    best = np.empty(width, np.float32)
    best_class = np.empty(width, np.int32)
    w0x = np.float32(1) - cw
    for y in range(height):
        a, b = r0[y], r1[y]
        w1y = rw[y]
        w0y = np.float32(1) - w1y
        for c in range(num):
            for s in range(low, high):
                line[s] = src[c, a, s] * w0y + src[c, b, s] * w1y
            if not argmax:
                for x in range(width):
                    out[c, y, x] = line[c0[x]] * w0x[x] + line[c1[x]] * cw[x]
            elif c == 0:
                for x in range(width):
                    best[x] = line[c0[x]] * w0x[x] + line[c1[x]] * cw[x]
                    best_class[x] = 0
            else:
                for x in range(width):  # branch-free running argmax
                    value = line[c0[x]] * w0x[x] + line[c1[x]] * cw[x]
                    better = value > best[x]
                    best[x] = max(value, best[x])
                    best_class[x] = c if better else best_class[x]
        if argmax:
            labels[y] = best_class


def _grid(out: Tensor, meta: dict, align_corners: bool):
    """(first, second, weight) per output row and column, the crop and the flip folded in."""
    height, width = out.shape[-2:]
    left, right, top, bottom = meta.get('img_padding_size', meta.get('padding_size', (0, 0, 0, 0)))
    flip = bool(meta.get('flip', False))
    vertical = flip and meta.get('flip_direction', 'horizontal') != 'horizontal'
    ori_h, ori_w = (int(s) for s in meta['ori_shape'][:2])
    rows = source_index(ori_h, height - top - bottom, align_corners, vertical)
    cols = source_index(ori_w, width - left - right, align_corners, flip and not vertical)
    return (rows[0] + top, rows[1] + top, rows[2]), (cols[0] + left, cols[1] + left, cols[2])


def restore_prediction(out: Tensor, meta: dict, spec, align_corners: bool = False,
                       threshold: Optional[float] = None,
                       max_elements: int = MAX_ELEMENTS) -> Tensor:
    """``(1, C, h, w)`` head output of one image -> its prediction at ``ori_shape``:
    ``activate(spec, restore_output(out, meta, spec))`` without the ``(C, H, W)`` logits.

    Returns:
        Tensor: ``(1, H, W)`` int64 class ids (``argmax``), ``(1, H, W)`` float32 foreground
        probability (``sigmoid``), ``(C, H, W)`` unit vectors (``normalize``) or values.
    """
    if out.device.type != 'cpu' or out.dtype != torch.float32:
        return _restore_grouped(out, meta, spec, align_corners, threshold, max_elements)
    src = out[0].detach().contiguous().numpy()
    rows, cols = _grid(out, meta, align_corners)
    ori_h, ori_w = rows[0].size, cols[0].size
    if spec.activation == 'argmax' and src.shape[0] > 1:
        labels = np.empty((ori_h, ori_w), np.int64)
        _bilinear_kernel(src, rows, cols, np.empty((0, 0, 0), np.float32), labels)
        return torch.from_numpy(labels)[None]
    values = np.empty((src.shape[0], ori_h, ori_w), np.float32)
    _bilinear_kernel(src, rows, cols, values, np.empty((0, 0), np.int64))
    values = torch.from_numpy(values)
    if meta.get('flip', False) and spec.flip_sign is not None:
        horizontal = meta.get('flip_direction', 'horizontal') == 'horizontal'
        values[spec.flip_sign[0 if horizontal else 1]].neg_()
    return _activate_small(spec, values, threshold)


def _activate_small(spec, values: Tensor, threshold: Optional[float]) -> Tensor:
    """:func:`activate` for outputs of few channels, in place where it can be."""
    if spec.activation == 'normalize':  # x / max(|x|, 1e-12), as F.normalize
        norm = values.square().sum(0, keepdim=True).sqrt_().clamp_min_(1e-12)
        return values.div_(norm)
    if spec.activation == 'sigmoid' and values.shape[0] == 1:
        return values.sigmoid_()
    return activate(spec, values, threshold)


def _restore_grouped(out: Tensor, meta: dict, spec, align_corners: bool,
                     threshold: Optional[float], max_elements: int) -> Tensor:
    """:func:`restore_prediction` with ``F.interpolate`` on groups of classes (any device)."""
    if not (spec.activation == 'argmax' and out.shape[1] > 1):
        return activate(spec, restore_output(out, meta, spec, align_corners), threshold)
    out = _crop(out, meta)
    if meta.get('flip', False):  # a view: a flip of class scores needs no sign change
        out = out.flip(dims=(3 if meta.get('flip_direction', 'horizontal') == 'horizontal'
                             else 2, ))
    size = tuple(int(s) for s in meta['ori_shape'][:2])
    group = max(1, max_elements // (size[0] * size[1]))
    best = labels = None
    for start in range(0, out.shape[1], group):
        scores = F.interpolate(out[:, start:start + group], size=size, mode='bilinear',
                               align_corners=align_corners)[0]
        value, index = scores.max(dim=0, keepdim=True)
        if best is None:
            best, labels = value, index
        else:  # strictly greater: the first class wins a tie, as argmax
            better = value > best
            best = torch.where(better, value, best)
            labels = torch.where(better, index + start, labels)
    return labels
