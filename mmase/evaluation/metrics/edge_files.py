"""Edge maps on disk: the probability PNGs SEISM reads, and ground-truth edge files.

- Predictions: one-channel PNGs, 8-bit (probability ``v / 255``, what SEISM's
  ``double(imread(f)) / 255`` reads) or 16-bit (``v / 65535``). :func:`write_edge_png` writes
  8-bit ones, ``round(255 p)``, atomically (a temporary file renamed into place).
- Ground truth: a PNG of {0, 1} or {0, 255} (1 / 255 = edge), or a PASCAL-Context ``LabelMap``
  ``.mat`` (``pascal-context/trainval/<id>.mat``) from which the edges are derived as for training
  (:func:`mmase.datasets.pascal_mt_labels.edge_from_label_map`).

Every reader raises an error naming the file it could not use.
"""
import os
import os.path as osp
import tempfile

import numpy as np
from PIL import Image

from mmase.datasets.pascal_mt_labels import decode_label_map, edge_from_label_map

#: Ground-truth file suffixes looked for, in this order, by :func:`find_edge_gt`.
GT_SUFFIXES = ('.png', '.mat')


def _read_png(path: str) -> np.ndarray:
    """(H, W) array of a one-channel PNG; errors name ``path``."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'no such file: {path}')
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            arr = np.asarray(img)
    except Exception as error:  # PIL raises several types for broken files
        raise OSError(f'cannot decode image file {path}: {error}') from error
    if arr.ndim != 2 or mode == 'P':
        raise ValueError(f'{path}: expected a one-channel (grey) PNG, got mode {mode!r} with '
                         f'shape {arr.shape}')
    return arr


def read_edge_png(path: str) -> np.ndarray:
    """Edge-probability PNG -> float64 ``(H, W)`` in [0, 1].

    8-bit grey: ``v / 255``; 16-bit grey: ``v / 65535``. Binary ('1') PNGs read as 0 / 1.

    Raises:
        ValueError: Not a one-channel PNG, or a 32-bit one with values outside 0..65535.
    """
    arr = _read_png(path)
    if arr.dtype == bool:
        return arr.astype(np.float64)
    if arr.dtype == np.uint8:
        return arr / 255.0
    if arr.dtype.kind in 'iu':
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ValueError(f'{path}: edge probabilities must be 8-bit (0..255) or 16-bit '
                             f'(0..65535) values, found values in [{arr.min()}, {arr.max()}]')
        return arr / 65535.0
    raise ValueError(f'{path}: unsupported PNG data type {arr.dtype} for edge probabilities')


def read_edge_gt(path: str) -> np.ndarray:
    """Ground-truth edge file -> uint8 ``(H, W)`` in {0, 1}.

    Args:
        path (str): A ``.png`` of {0, 1} or {0, 255}, or a PASCAL-Context ``.mat`` with a
            ``LabelMap``.

    Raises:
        ValueError: A PNG with other values (not binary), or an unknown suffix.
    """
    if path.endswith('.mat'):
        if not osp.isfile(path):
            raise FileNotFoundError(f'no such file: {path}')
        with open(path, 'rb') as f:
            return edge_from_label_map(decode_label_map(f.read(), path))
    if not path.endswith('.png'):
        raise ValueError(f'{path}: ground-truth edges must be a .png or a PASCAL-Context .mat')
    arr = _read_png(path)
    values = np.unique(arr)
    if arr.dtype == bool or set(values.tolist()) <= {0, 1}:
        return arr.astype(np.uint8)
    if set(values.tolist()) <= {0, 255}:
        return (arr == 255).astype(np.uint8)
    raise ValueError(f'{path}: ground-truth edges must be binary ({{0, 1}} or {{0, 255}}), found '
                     f'values {values.tolist()[:10]}')


def find_edge_gt(gt_dir: str, img_id: str) -> str:
    """Path of ``<gt_dir>/<img_id>.png`` or ``.mat`` (the first that exists).

    Raises:
        FileNotFoundError: Neither exists (the message names both).
    """
    for suffix in GT_SUFFIXES:
        path = osp.join(gt_dir, img_id + suffix)
        if osp.isfile(path):
            return path
    tried = ' or '.join(osp.join(gt_dir, img_id + suffix) for suffix in GT_SUFFIXES)
    raise FileNotFoundError(f'no ground truth for image {img_id!r}: no {tried}')


def write_edge_png(prob: np.ndarray, path: str) -> None:
    """Write an edge probability ``(H, W)`` in [0, 1] as an 8-bit PNG (``round(255 p)``).

    The file appears complete or not at all (written to a temporary file in the same folder,
    then renamed); the folder is created if needed.

    Raises:
        ValueError: ``prob`` is not 2-D or holds values outside [0, 1] (the message names
            ``path``).
    """
    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim != 2:
        raise ValueError(f'{path}: an edge probability map must be (H, W), got {prob.shape}')
    if prob.size and not (np.isfinite(prob).all() and prob.min() >= 0 and prob.max() <= 1):
        raise ValueError(f'{path}: edge probabilities must be in [0, 1], got values in '
                         f'[{np.nanmin(prob)}, {np.nanmax(prob)}]')
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix='.png.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            Image.fromarray(np.rint(prob * 255).astype(np.uint8)).save(f, format='PNG')
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def set_edge_save_dir(cfg, directory: str, field: str = 'test_evaluator') -> None:
    """Make every ``MultiTaskMetric`` of ``cfg.<field>`` save edge PNGs into ``directory``
    (its ``edge_save_dir``); what ``tools/test.py --save-edges DIR`` does.

    Raises:
        ValueError: ``cfg.<field>`` holds no ``MultiTaskMetric``.
    """
    evaluator = cfg.get(field)
    if isinstance(evaluator, dict) and 'metrics' in evaluator:
        evaluator = evaluator['metrics']
    metrics = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
    found = False
    for metric in metrics:
        if isinstance(metric, dict) and str(metric.get('type', '')).split('.')[-1] == \
                'MultiTaskMetric':
            metric['edge_save_dir'] = directory
            found = True
    if not found:
        raise ValueError(f'saving edge PNGs needs a MultiTaskMetric in {field}, found '
                         f'{[m.get("type") if isinstance(m, dict) else m for m in metrics]}')
