"""Head outputs back to the original image: crop padding, undo a test-time flip, resize to
``ori_shape``, turn logits into a task's prediction (its declared ``activation``).

Used by :class:`MultiTaskEncoderDecoder` (``_postprocess``) and :class:`MultiTaskTTAModel`.
"""
from typing import Optional

import torch.nn.functional as F
from mmseg.models.utils import resize
from torch import Tensor


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


def restore_output(out: Tensor, meta: dict, spec, align_corners: bool = False) -> Tensor:
    """``(1, C, h, w)`` output of one image -> ``(C, H, W)`` at its ``ori_shape``: padding
    cropped, a test-time flip undone (:func:`unflip`), bilinear resize (still logits)."""
    height, width = out.shape[-2:]
    left, right, top, bottom = meta.get('img_padding_size', meta.get('padding_size', (0, 0, 0, 0)))
    out = out[:, :, top:height - bottom, left:width - right]
    if meta.get('flip', False):
        out = unflip(out, meta.get('flip_direction', 'horizontal'), spec)
    return resize(out, size=tuple(meta['ori_shape'][:2]), mode='bilinear',
                  align_corners=align_corners, warning=False)[0]


def activate(spec, out: Tensor, threshold: Optional[float] = None) -> Tensor:
    """(C, H, W) head output -> the prediction, by the declaration's ``activation``;
    ``threshold``: a 1-channel ``argmax`` head's foreground threshold (its ``head.threshold``)."""
    if spec.activation == 'argmax':
        if out.shape[0] == 1:
            return (out.sigmoid() > threshold).long()
        return out.argmax(dim=0, keepdim=True)
    if spec.activation == 'sigmoid':
        return out.sigmoid() if out.shape[0] == 1 else out.softmax(dim=0)[1:2]
    if spec.activation == 'normalize':
        return F.normalize(out, p=2, dim=0)
    return out  # identity: depth in metres, any regressed value
