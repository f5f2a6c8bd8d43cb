"""SEISM-parity edge counts: pyEdgeEval's thinning and compiled ``correspond_pixels``.

``EdgeMeter(matcher='seism')`` counts each threshold's pairs exactly as pyEdgeEval's
``evaluate_boundaries_threshold`` does (its ``binary_thin`` on ``pred >= t``, then SEISM's
``correspondPixels`` compiled from ``match.cc``): the numbers of pyEdgeEval, the Python port of
the MATLAB SEISM benchmark that the published PASCAL-Context / NYUD edge odsF come from. It costs
~20 s per PASCAL image (one core) against well under 0.1 s for the default exact matcher, and
``correspondPixels`` draws random outlier edges from a generator seeded from the clock when
pyEdgeEval loads, so two runs (of pyEdgeEval or of this mode) can differ by a few pairs.

pyEdgeEval is an optional dependency: ``pip install -r requirements/seism.txt`` (or the
``mmase[seism]`` extra).
"""
from typing import Callable, Tuple

import numpy as np

#: How to install the optional dependency of the SEISM-parity matcher.
SEISM_INSTALL = ('pip install -r requirements/seism.txt (the mmase[seism] extra: pyEdgeEval, '
                 'built from source where no wheel fits)')


def seism_functions(field: str = 'matcher') -> Tuple[Callable, Callable]:
    """pyEdgeEval's ``(binary_thin, correspond_pixels)``; an ImportError naming ``field`` and the
    extra to install when pyEdgeEval is missing."""
    try:
        from pyEdgeEval._lib import correspond_pixels
        from pyEdgeEval.preprocess import binary_thin
    except ImportError as error:
        raise ImportError(f"{field}='seism' needs pyEdgeEval ({error}); install it: "
                          f'{SEISM_INSTALL}') from None
    return binary_thin, correspond_pixels


def seism_counts(pred: np.ndarray, edges: np.ndarray, valid: np.ndarray, thresholds: np.ndarray,
                 tolerance: float) -> Tuple[np.ndarray, np.ndarray]:
    """Per-threshold pairs and predicted pixels, as pyEdgeEval counts them.

    Args:
        pred (np.ndarray): float ``(H, W)`` edge probability.
        edges (np.ndarray): bool ``(H, W)`` ground-truth edge pixels.
        valid (np.ndarray): bool ``(H, W)``, the labelled pixels (predicted pixels elsewhere are
            dropped after thinning; all True gives pyEdgeEval's numbers).
        thresholds (np.ndarray): float64 ``(K,)``; pixel set where ``pred >= t``.
        tolerance (float): Matching distance, fraction of the image diagonal (``max_dist``).

    Returns:
        tuple[np.ndarray, np.ndarray]: int64 ``(K,)`` matched (pyEdgeEval's ``count_p``) and
        predicted (``sum_p``) pixels.
    """
    binary_thin, correspond_pixels = seism_functions()
    matched = np.zeros(len(thresholds), np.int64)
    predicted = np.zeros(len(thresholds), np.int64)
    for k, threshold in enumerate(thresholds):
        thinned = binary_thin(pred >= threshold) & valid
        predicted[k] = np.count_nonzero(thinned)
        if edges.any() and predicted[k]:
            match_pred, _, _, _ = correspond_pixels(thinned, edges, max_dist=tolerance)
            matched[k] = np.count_nonzero(match_pred > 0)
    return matched, predicted
