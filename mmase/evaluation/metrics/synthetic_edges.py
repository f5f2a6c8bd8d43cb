"""Generated PASCAL-size edge maps of several kinds, for the edge metric's reference test and
benchmark (``tests/test_evaluation/test_metrics/test_edge_reference.py``,
``tools/analysis/benchmark_edges.py``).

The ground truth is the boundary of a random label map (overlapping wobbly ellipses), derived as
mmase derives PASCAL-Context edges (:func:`mmase.datasets.pascal_mt_labels.edge_from_label_map`).
The predictions imitate a trained network's: most boundaries found with a confidence that varies
slowly along them, some missed, some spurious texture edges; then one of

- ``'sharp'``: one-pixel-wide lines;
- ``'blurred'``: the lines blurred into bands a few pixels wide (what CNN edge heads output);
- ``'shifted'``: the sharp lines moved by (2, 3) pixels (inside the PASCAL tolerance of 4.7 px);
- ``'noisy'``: the blurred map plus uniform noise everywhere;
- ``'smooth'``: the blurred map seen at 1/8 of the resolution and upsampled bilinearly, between
  0.05 and 0.95 (a low-resolution head's output after its resize, e.g. the toy model's: broad
  plateaus, mean ~0.36; the hardest case for thinning, ~6.5 million pixels over 99 maps);
- ``'empty_pred'``: an all-zero prediction;
- ``'empty_gt'``: the blurred prediction against a ground truth without any edge.
"""
from typing import Tuple

import cv2
import numpy as np

from mmase.datasets.pascal_mt_labels import edge_from_label_map

#: The kinds of :func:`synthetic_edge_pair`.
SYNTHETIC_KINDS = ('sharp', 'blurred', 'shifted', 'noisy', 'smooth', 'empty_pred',
                   'empty_gt')


def random_label_map(rng: np.random.Generator, shape: Tuple[int, int],
                     num_regions: int = 12) -> np.ndarray:
    """(H, W) int64 label map of ``num_regions`` overlapping wobbly ellipses on a background."""
    height, width = shape
    labels = np.ones(shape, dtype=np.int64)
    yy, xx = np.mgrid[:height, :width].astype(np.float64)
    scale = min(height, width) / 375.0
    for k in range(num_regions):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(20, 120, 2) * scale
        angle = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = (dx * np.cos(angle) + dy * np.sin(angle)) / rx
        v = (-dx * np.sin(angle) + dy * np.cos(angle)) / ry
        wobble = 1 + 0.15 * np.sin(rng.integers(3, 7) * np.arctan2(v, u) + rng.uniform(0, 6))
        labels[np.hypot(u, v) * wobble < 1] = k + 2
    return labels


def _smooth_field(rng: np.random.Generator, shape: Tuple[int, int], sigma: float) -> np.ndarray:
    """Random field in [0, 1] varying over ~``sigma`` pixels."""
    field = cv2.GaussianBlur(rng.standard_normal(shape), (0, 0), sigma)
    field -= field.min()
    return field / max(field.max(), 1e-12)


def synthetic_edge_pair(kind: str, seed: int = 0,
                        shape: Tuple[int, int] = (375, 500)) -> Tuple[np.ndarray, np.ndarray]:
    """A generated prediction and ground truth of one of :data:`SYNTHETIC_KINDS`.

    Args:
        kind (str): One of :data:`SYNTHETIC_KINDS`.
        seed (int): Seed of the random maps. Default: 0.
        shape (tuple[int, int]): ``(H, W)``. Default: (375, 500), a PASCAL image.

    Returns:
        tuple[np.ndarray, np.ndarray]: float64 ``(H, W)`` edge probability in [0, 1] and uint8
        ``(H, W)`` ground truth in {0, 1}.
    """
    if kind not in SYNTHETIC_KINDS:
        raise ValueError(f'unknown synthetic edge map kind {kind!r}; choose from '
                         f'{SYNTHETIC_KINDS}')
    rng = np.random.default_rng(seed)
    gt = edge_from_label_map(random_label_map(rng, shape))
    texture = edge_from_label_map(random_label_map(rng, shape, num_regions=10))
    confidence = _smooth_field(rng, shape, 25.0)  # found where high, missed where low
    spurious = _smooth_field(rng, shape, 25.0)
    sharp = np.maximum(gt * np.clip(1.4 * confidence - 0.3, 0, 1),
                       texture * np.clip(1.4 * spurious - 0.4, 0, 1))
    sharp *= rng.uniform(0.8, 1.0, shape)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 1.5)
    blurred = np.clip(blurred / max(blurred.max(), 1e-12), 0, 1)
    if kind == 'sharp':
        pred = sharp
    elif kind == 'shifted':
        pred = np.roll(sharp, (2, 3), axis=(0, 1))
    elif kind == 'noisy':
        pred = np.clip(0.8 * blurred + 0.4 * rng.uniform(0, 1, shape)**2, 0, 1)
    elif kind == 'smooth':
        height, width = shape
        coarse = cv2.resize(blurred, (max(1, width // 8), max(1, height // 8)),
                            interpolation=cv2.INTER_AREA)
        coarse = cv2.GaussianBlur(coarse, (0, 0), 1.0)
        coarse = cv2.resize(coarse / max(coarse.max(), 1e-12), (width, height),
                            interpolation=cv2.INTER_LINEAR)
        pred = 0.05 + 0.9 * np.sqrt(np.clip(coarse, 0, 1))
    elif kind == 'empty_pred':
        pred = np.zeros(shape)
    else:
        pred = blurred
    if kind == 'empty_gt':
        gt = np.zeros_like(gt)
    return np.ascontiguousarray(pred, dtype=np.float64), gt.astype(np.uint8)
