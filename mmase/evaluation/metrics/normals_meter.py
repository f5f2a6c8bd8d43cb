"""Surface-normal angular error: mean; median, RMSE and accuracy within angles (ASTMT protocol)."""
import math
from typing import Dict, Mapping, Optional, Sequence

import numba
import numpy as np

from .meter_base import TASK_METERS, TaskMeter, check_protocol, sum_records

#: Angles (degrees) of the "% of pixels within" metrics of the ASTMT protocol.
WITHIN_ANGLES = (11.25, 22.5, 30.0)
#: Width (degrees) of the error histogram bins from which the median is read.
HISTOGRAM_BIN = 0.1
_NUM_BINS = int(round(180.0 / HISTOGRAM_BIN))


def angular_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Angle in degrees between corresponding vectors of two ``(3, N)`` arrays.

    Both are L2-normalised first (a zero prediction vector stays zero and scores 90°). The angle is
    ``2 atan2(|a - b|, |a + b|)`` for unit vectors a, b, which equals ``arccos(a · b)`` but stays
    accurate for small angles.

    Args:
        pred (np.ndarray): Predicted vectors, shape ``(3, N)``.
        gt (np.ndarray): Ground-truth vectors, shape ``(3, N)``, non-zero.

    Returns:
        np.ndarray: Errors, shape ``(N,)``, degrees in [0, 180].
    """
    pred = pred / (np.linalg.norm(pred, axis=0, keepdims=True) + 1e-12)
    gt = gt / np.linalg.norm(gt, axis=0, keepdims=True)
    return np.degrees(2.0 * np.arctan2(np.linalg.norm(pred - gt, axis=0),
                                       np.linalg.norm(pred + gt, axis=0)))


@numba.njit(cache=True, nogil=True)
def _valid_errors(pred, gt):
    """:func:`angular_error` of the pixels whose ground truth is non-zero, in one pass over two
    ``(3, H, W)`` maps of any float type (float64 arithmetic); returns float64 ``(N,)``."""
    height, width = gt.shape[1], gt.shape[2]
    out = np.empty(height * width, np.float64)
    count = 0
    for y in range(height):
        for x in range(width):
            g0, g1, g2 = np.float64(gt[0, y, x]), np.float64(gt[1, y, x]), np.float64(gt[2, y, x])
            if g0 == 0 and g1 == 0 and g2 == 0:
                continue
            p0, p1, p2 = (np.float64(pred[0, y, x]), np.float64(pred[1, y, x]),
                          np.float64(pred[2, y, x]))
            p_norm = math.sqrt(p0 * p0 + p1 * p1 + p2 * p2) + 1e-12
            g_norm = math.sqrt(g0 * g0 + g1 * g1 + g2 * g2)
            p0, p1, p2 = p0 / p_norm, p1 / p_norm, p2 / p_norm
            g0, g1, g2 = g0 / g_norm, g1 / g_norm, g2 / g_norm
            d0, d1, d2 = p0 - g0, p1 - g1, p2 - g2
            s0, s1, s2 = p0 + g0, p1 + g1, p2 + g2
            angle = 2.0 * math.atan2(math.sqrt(d0 * d0 + d1 * d1 + d2 * d2),
                                     math.sqrt(s0 * s0 + s1 * s1 + s2 * s2))
            out[count] = angle * (180.0 / math.pi)
            count += 1
    return out[:count]


@TASK_METERS.register_module()
class NormalsMeter(TaskMeter):
    """Angular error of surface normals on valid pixels, pooled over every valid pixel of the set.

    A pixel is valid when its ground-truth vector is non-zero; images without a valid pixel are left
    out. Metrics (degrees unless stated): ``mErr`` (mean) in every protocol; for ``'astmt'`` also
    ``median``, ``rmse`` (root of the mean squared error) and ``within11.25``, ``within22.5``,
    ``within30`` (percent of pixels with error strictly below the angle). Memory stays bounded: the
    median is read from a histogram of the errors with 0.1° bins, linearly interpolated inside the
    median's bin (off by at most one bin, negligible over the millions of pixels of a val set); the
    other metrics are exact sums.

    Args:
        protocol (str): ``'invpt'`` | ``'atrc'`` | ``'astmt'``. Default: ``'invpt'``.
    """

    #: Arguments the metric supplies from the task declaration and its own settings.
    CONTEXT_ARGS = ('protocol', )

    @classmethod
    def metric_names(cls, protocol: str = 'invpt') -> tuple:
        """Names of the metrics :meth:`compute` returns under ``protocol``."""
        extra = ('median', 'rmse', 'within11.25', 'within22.5', 'within30')
        return ('mErr', ) + (extra if protocol == 'astmt' else ())

    def __init__(self, protocol: str = 'invpt'):
        self.protocol = check_protocol(protocol)

    def process(self, pred: np.ndarray, gt: np.ndarray) -> Optional[Dict[str, np.ndarray]]:
        """Count one image.

        Args:
            pred (np.ndarray): Predicted normals, shape ``(3, H, W)`` (normalised here).
            gt (np.ndarray): Ground-truth unit normals, shape ``(3, H, W)``; all-zero = invalid.

        Returns:
            dict | None: Sums of the image's errors; None if it has no valid pixel.
        """
        pred, gt = np.asarray(pred), np.asarray(gt)
        if not np.issubdtype(pred.dtype, np.floating):
            pred = pred.astype(np.float64)
        if not np.issubdtype(gt.dtype, np.floating):
            gt = gt.astype(np.float64)
        if pred.shape != gt.shape or gt.ndim != 3 or gt.shape[0] != 3:
            raise ValueError(f'prediction {pred.shape} and ground truth {gt.shape} must both be '
                             f'(3, H, W)')
        if not np.isfinite(pred).all():
            raise ValueError('prediction holds NaN or infinite values')
        errors = _valid_errors(pred, gt)  # the pixels with a non-zero ground truth
        if not errors.size:
            return None
        record = dict(
            count=np.int64(errors.size),
            sum=np.float64(errors.sum()),
            sum_squares=np.float64(np.square(errors).sum()),
        )
        if self.protocol == 'astmt':
            record['within'] = np.array([(errors < angle).sum() for angle in WITHIN_ANGLES],
                                        dtype=np.int64)
            bins = np.minimum((errors / HISTOGRAM_BIN).astype(np.int64), _NUM_BINS - 1)
            record['histogram'] = np.bincount(bins, minlength=_NUM_BINS).astype(np.int32)
        return record

    @staticmethod
    def histogram_median(histogram: np.ndarray) -> float:
        """Median (degrees) of errors binned at :data:`HISTOGRAM_BIN`, interpolated in its bin."""
        histogram = np.asarray(histogram, dtype=np.float64)
        half = histogram.sum() / 2.0
        cumulative = np.cumsum(histogram)
        index = int(np.searchsorted(cumulative, half, side='left'))
        below = cumulative[index] - histogram[index]
        return float((index + (half - below) / histogram[index]) * HISTOGRAM_BIN)

    def compute(self, records: Sequence[Mapping[str, np.ndarray]]) -> Dict[str, float]:
        """Return ``mErr`` (and for 'astmt' ``median``, ``rmse``, ``within*``)."""
        if not records:
            raise ValueError('no image with a valid ground-truth normal was evaluated')
        totals = sum_records(records)
        count = float(totals['count'])
        metrics = dict(mErr=float(totals['sum'] / count))
        if self.protocol == 'astmt':
            metrics['median'] = self.histogram_median(totals['histogram'].astype(np.int64))
            metrics['rmse'] = float(np.sqrt(totals['sum_squares'] / count))
            for angle, within in zip(WITHIN_ANGLES, totals['within']):
                metrics[f'within{angle:g}'] = float(within / count * 100.0)
        return metrics
