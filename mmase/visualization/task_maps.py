"""Task maps as pictures: RGB renderings for figures and the raw files predictions are saved as."""
import os.path as osp
from typing import Dict, List, Optional

import cv2
import numpy as np

from mmase.tasks import TaskSpec


def map_kind(spec: TaskSpec) -> str:
    """How a task's prediction map is drawn and saved, from its declaration: ``'classes'``
    (``activation='argmax'``), ``'probability'`` (``'sigmoid'``), ``'vectors'``
    (``'normalize'``: unit normals), ``'depth'`` (kind ``depth``: metres) or ``'scalar'``
    (any other regressed map)."""
    by_activation = dict(argmax='classes', sigmoid='probability', normalize='vectors')
    if spec.activation in by_activation:
        return by_activation[spec.activation]
    return 'depth' if spec.kind == 'depth' else 'scalar'


def random_palette(num_classes: int) -> np.ndarray:
    """A fixed pseudo-random ``(num_classes, 3)`` uint8 palette (seed 42)."""
    rng = np.random.RandomState(42)
    return rng.randint(0, 255, size=(num_classes, 3)).astype(np.uint8)


def normals_to_rgb(normals: np.ndarray) -> np.ndarray:
    """``(3, H, W)`` unit normals -> ``(H, W, 3)`` uint8 ``round((n + 1) / 2 * 255)``; the
    all-zero (invalid) vector is black."""
    n = np.clip(normals.astype(np.float32).transpose(1, 2, 0), -1, 1)
    out = np.rint((n + 1) / 2 * 255).astype(np.uint8)
    out[(normals == 0).all(axis=0)] = 0
    return out


def render_task_map(spec: TaskSpec, data: np.ndarray,
                    palette: Optional[np.ndarray] = None) -> np.ndarray:
    """Turn one task map into an RGB uint8 image ``(H, W, 3)`` (no image underneath).

    Args:
        spec: The task's spec (its ``kind`` picks the rendering).
        data: ``(C, H, W)`` map as stored on a data sample (class ids, probabilities / {0,1}
            labels, unit normals, or metres).
        palette: ``(K, 3)`` RGB colours of segmentation classes.

    Class maps use the palette (ignore = black); binary maps are grey (ignore = dark red);
    normals map ``n`` to ``(n + 1) / 2`` RGB (invalid = black); depth is scaled to its 0-max range.
    """
    kind = map_kind(spec)
    if kind == 'classes':
        labels = data[0].astype(np.int64)
        palette = palette if palette is not None else random_palette(int(labels.max()) + 1)
        out = np.zeros(labels.shape + (3, ), np.uint8)
        valid = (labels >= 0) & (labels < len(palette))
        out[valid] = np.asarray(palette, np.uint8)[labels[valid]]
        return out
    if kind == 'probability':
        values = data[0].astype(np.float32)
        ignore = values == spec.ignore_value
        grey = (np.clip(np.where(ignore, 0, values), 0, 1) * 255).astype(np.uint8)
        out = np.repeat(grey[..., None], 3, axis=2)
        out[ignore] = (128, 0, 0)
        return out
    if kind == 'vectors':
        normals = data.astype(np.float32).transpose(1, 2, 0)
        out = ((np.clip(normals, -1, 1) + 1) * 127.5).astype(np.uint8)
        out[(normals == 0).all(axis=2)] = 0
        return out
    depth = data[0].astype(np.float32)
    top = float(np.nanmax(depth)) if np.isfinite(depth).any() else 1.0
    grey = (np.clip(np.nan_to_num(depth) / max(top, 1e-6), 0, 1) * 255).astype(np.uint8)
    return cv2.applyColorMap(grey, cv2.COLORMAP_VIRIDIS)[..., ::-1].copy()


def encode_prediction(spec: TaskSpec, data: np.ndarray, depth_format: str = 'png') -> tuple:
    """A prediction map as the array written to disk and its file suffix.

    - segmentation: class ids, uint8 PNG (uint16 from 256 classes on).
    - binary: foreground probability ``round(p * 255)``, uint8 PNG.
    - normals: RGB ``round((n + 1) / 2 * 255)``, uint8 PNG (H, W, 3, RGB order).
    - depth: ``depth_format='png'``: uint16 PNG in millimetres ``round(d * 1000)`` (clipped to
      0..65535, i.e. 65.5 m); ``'npy'``: float32 metres ``(H, W)``.
    - any other kind (a declared regression task): float32 ``(C, H, W)`` ``.npy``.

    Args:
        spec: The task's spec.
        data: ``(C, H, W)`` prediction as on the data sample.
        depth_format (str): ``'png'`` or ``'npy'``.

    Returns:
        tuple: ``(array, suffix)`` with suffix ``'.png'`` or ``'.npy'``.
    """
    kind = map_kind(spec)
    if kind == 'classes':
        labels = data[0]
        dtype = np.uint8 if labels.max(initial=0) < 256 else np.uint16
        return labels.astype(dtype), '.png'
    if kind == 'probability':
        return np.rint(np.clip(data[0], 0, 1) * 255).astype(np.uint8), '.png'
    if kind == 'vectors':
        return normals_to_rgb(data), '.png'
    if kind != 'depth':  # any other declared kind: the raw float map (C, H, W)
        return data.astype(np.float32), '.npy'
    if depth_format == 'npy':
        return data[0].astype(np.float32), '.npy'
    if depth_format != 'png':
        raise ValueError(f'depth_format must be "png" or "npy", got {depth_format!r}')
    return np.clip(np.rint(data[0].astype(np.float64) * 1000), 0, 65535).astype(np.uint16), '.png'


def save_predictions(data_sample, tasks: List[str], out_dir: str, name: str,
                     depth_format: str = 'png') -> Dict[str, str]:
    """Write each task's prediction as ``out_dir/<task>/<name><suffix>`` (see
    :func:`encode_prediction`); returns task -> file written."""
    from mmase.tasks import get_task_spec
    written = {}
    for task in tasks:
        spec = get_task_spec(task)
        if spec.pred_field not in data_sample:
            continue
        data = getattr(data_sample, spec.pred_field).data.detach().cpu().numpy()
        array, suffix = encode_prediction(spec, data, depth_format)
        folder = osp.join(out_dir, task)
        import mmengine
        mmengine.mkdir_or_exist(folder)
        path = osp.join(folder, name + suffix)
        if suffix == '.npy':
            np.save(path, array)
        else:
            bgr = array[..., ::-1] if array.ndim == 3 else array
            if not cv2.imwrite(path, np.ascontiguousarray(bgr)):
                raise OSError(f'could not write {path}')
        written[task] = path
    return written
