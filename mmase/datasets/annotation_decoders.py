"""Decoders of the label files of declared tasks (a declaration's ``annotation.decoder``)."""
import io

import numpy as np
from PIL import Image


def _png(data: bytes, path: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            arr = np.asarray(img)
    except Exception as err:  # PIL raises several types for damaged files
        raise ValueError(f'{path}: not a readable PNG ({err})') from None
    if arr.ndim == 3:
        raise ValueError(f'{path}: expected a single-channel PNG, got {arr.shape[2]} channels')
    return arr


def decode_annotation(data: bytes, path: str, spec) -> np.ndarray:
    """File bytes -> the task's numpy map: ``(H, W)`` or ``(H, W, C)`` for ``C`` channels.

    ``spec.annotation['decoder']``: ``png_label`` values as stored (uint8); ``png_binary``
    ``v > 127`` -> {0, 1} uint8; ``png_float`` ``(v + offset) * scale`` float32; ``npy`` the
    stored array (float32 when the task is float). Errors name the file.
    """
    ann = spec.annotation
    decoder = ann['decoder']
    if decoder == 'npy':
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except Exception as err:
            raise ValueError(f'{path}: not a readable .npy array ({err})') from None
        arr = arr.astype(np.float32) if spec.is_float else arr
    else:
        values = _png(data, path)
        if decoder == 'png_label':
            arr = values.astype(np.uint8)
        elif decoder == 'png_binary':
            arr = (values > 127).astype(np.uint8)
        else:  # png_float
            arr = ((values.astype(np.float32) + float(ann['offset'])) *
                   float(ann['scale'])).astype(np.float32)
    want = 2 if spec.channels == 1 else 3
    if arr.ndim != want or (want == 3 and arr.shape[2] != spec.channels):
        raise ValueError(f'{path}: task {spec.name!r} needs a map of {spec.channels} channel(s), '
                         f'the file holds shape {arr.shape}')
    return arr
