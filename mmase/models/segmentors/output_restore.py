"""Head outputs back to the original image: crop padding, undo a test-time flip, resize to
``ori_shape``, turn logits into a task's prediction (its declared ``activation``).

Used by :class:`MultiTaskEncoderDecoder` (``_postprocess``) and :class:`MultiTaskTTAModel`.

:func:`restore_prediction` does all of it in one pass and never holds the ``(C, H, W)`` logits at
the original size. Given ``input_resize`` (the resize to the input size that mmseg's
``BaseDecodeHead.predict_by_feat`` would apply first), it reads the head's own output and folds
that resize in too: the two bilinear maps (head -> padded input, crop/unflip -> original) compose,
per axis, into one map of at most 4 source pixels with non-negative weights summing to 1
(:func:`compose`, float32, PyTorch's index and weight rules), so the image is resized once and the
numbers are those of the two resizes up to float32 rounding (mmseg's protocol unchanged). On CPU
the compiled loops of :mod:`.resample_kernels` resample it (class maps: an exact pruned argmax,
its memory the labels themselves); elsewhere (GPU) the input-size resize runs as mmseg's, then the
classes are resized in groups of at most ``max_elements / (H W)`` with ``F.interpolate`` and a
running argmax. Crop and flip are index arithmetic, never copies. :func:`restore_output` (the
full logits, for test-time augmentation's averages) resizes with ``F.interpolate`` as mmseg does.
"""
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmseg.models.utils import resize
from torch import Tensor

from .resample_kernels import (dense_taps, resample_argmax, resample_argmax_dense,
                               resample_values)

#: Largest number of floats a restore holds at the original size besides its output (GPU path).
MAX_ELEMENTS = 1 << 24

#: (lo int64 (n,), weights float32 (n, T)): output i reads source lo[i] .. lo[i] + T - 1.
AxisMap = Tuple[np.ndarray, np.ndarray]


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


def _padding(meta: dict) -> Tuple[int, int, int, int]:
    """(left, right, top, bottom) padding of ``meta``."""
    return tuple(meta.get('img_padding_size', meta.get('padding_size', (0, 0, 0, 0))))


def _crop(out: Tensor, meta: dict) -> Tensor:
    """(1, C, h, w) -> the view without the padding of ``meta``."""
    height, width = out.shape[-2:]
    left, right, top, bottom = _padding(meta)
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
        if align_corners:  # PyTorch: (float)(in - 1) / (out - 1)
            ratio = (np.float32(in_size - 1) / np.float32(out_size - 1) if out_size > 1
                     else np.float32(0))
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


def axis_map(out_size: int, in_size: int, align_corners: bool, flip: bool = False) -> AxisMap:
    """One bilinear resize along one axis (:func:`source_index`) as an :data:`AxisMap`
    (``T <= 2``)."""
    first, second, weight = source_index(out_size, in_size, align_corners, flip)
    return dense_taps(np.stack([first, second], 1),
                      np.stack([np.float32(1) - weight, weight], 1), in_size)


def compose(outer: AxisMap, inner: AxisMap, in_size: int) -> AxisMap:
    """``outer`` (reading the output of ``inner``) after ``inner`` (reading ``in_size`` source
    pixels): one map; weights multiplied and summed in float32."""
    lo2, w2 = outer
    lo1, w1 = inner
    mid = lo2[:, None] + np.arange(w2.shape[1])  # (n, T2) pixels of inner's output
    index = lo1[mid][:, :, None] + np.arange(w1.shape[1])  # (n, T2, T1)
    weight = w2[:, :, None] * w1[mid]
    n = lo2.shape[0]
    return dense_taps(index.reshape(n, -1), weight.reshape(n, -1), in_size)


def _grid(size: Sequence[int], meta: dict, align_corners: bool,
          input_resize: Optional[Tuple[Sequence[int], bool]] = None) -> Tuple[AxisMap, AxisMap]:
    """Row and column maps from an output of ``size`` (h, w) to ``meta['ori_shape']``: the
    resize to ``input_resize`` ((H, W), align_corners) if given, then crop, flip, resize."""
    height, width = (int(s) for s in (input_resize[0] if input_resize else size)[:2])
    left, right, top, bottom = _padding(meta)
    flip = bool(meta.get('flip', False))
    vertical = flip and meta.get('flip_direction', 'horizontal') != 'horizontal'
    ori_h, ori_w = (int(s) for s in meta['ori_shape'][:2])
    rlo, rw = axis_map(ori_h, height - top - bottom, align_corners, vertical)
    clo, cw = axis_map(ori_w, width - left - right, align_corners, flip and not vertical)
    rows, cols = (rlo + top, rw), (clo + left, cw)
    if input_resize is not None:
        head_ac = bool(input_resize[1])
        rows = compose(rows, axis_map(height, int(size[0]), head_ac), int(size[0]))
        cols = compose(cols, axis_map(width, int(size[1]), head_ac), int(size[1]))
    return rows, cols


def restore_prediction(out: Tensor, meta: dict, spec, align_corners: bool = False,
                       threshold: Optional[float] = None,
                       max_elements: int = MAX_ELEMENTS,
                       input_resize: Optional[Tuple[Sequence[int], bool]] = None,
                       prune: Optional[bool] = None) -> Tensor:
    """``(1, C, h, w)`` head output of one image -> its prediction at ``ori_shape``:
    ``activate(spec, restore_output(out, meta, spec))`` without the ``(C, H, W)`` logits.

    Args:
        input_resize: ``((H, W), align_corners)`` of the bilinear resize to the (padded) input
            size that ``out`` still needs (mmseg's ``predict_by_feat``), folded into the one
            resample; None: ``out`` is at the input size already.
        prune: the argmax by exact class pruning (True), or every class at every pixel (False;
            the same labels); None: pruning where the output has at least as many pixels as
            ``out`` (several output pixels per source window, where it pays).

    Returns:
        Tensor: ``(1, H, W)`` int64 class ids (``argmax``), ``(1, H, W)`` float32 foreground
        probability (``sigmoid``), ``(C, H, W)`` unit vectors (``normalize``) or values.
    """
    if out.device.type != 'cpu' or out.dtype != torch.float32:
        if input_resize is not None:
            out = resize(out, size=tuple(input_resize[0][:2]), mode='bilinear',
                         align_corners=bool(input_resize[1]), warning=False)
        return _restore_grouped(out, meta, spec, align_corners, threshold, max_elements)
    src = out[0].detach().contiguous().numpy()
    (rlo, rw), (clo, cw) = _grid(src.shape[1:], meta, align_corners, input_resize)
    if spec.activation == 'argmax' and src.shape[0] > 1:
        labels = np.empty((rlo.size, clo.size), np.int64)
        if prune is None:
            prune = labels.size >= src.shape[1] * src.shape[2]
        (resample_argmax if prune else resample_argmax_dense)(src, rlo, rw, clo, cw, labels)
        return torch.from_numpy(labels)[None]
    values = np.empty((src.shape[0], rlo.size, clo.size), np.float32)
    resample_values(src, rlo, rw, clo, cw, values)
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
