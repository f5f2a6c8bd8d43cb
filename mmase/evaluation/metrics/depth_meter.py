"""Depth errors on valid pixels: RMSE (main), absolute relative error and δ < 1.25 accuracy."""
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from .meter_base import TASK_METERS, TaskMeter, sum_records

#: Predictions are clamped to at least this depth (metres), as the public depth meters do, so that
#: the ratio metrics stay defined.
MIN_DEPTH = 1e-9


@TASK_METERS.register_module()
class DepthMeter(TaskMeter):
    """Depth metrics pooled over every valid pixel (ground truth > 0) of the set.

    - ``rmse``: sqrt(Σ (d − d*)² / N), metres (the main metric).
    - ``abs_rel``: Σ |d − d*| / d* / N.
    - ``delta1``: percent of pixels with max(d / d*, d* / d) < 1.25.

    Predictions below :data:`MIN_DEPTH` are clamped to it first, as the public MTI-Net depth meter
    (used by InvPT and its successors) does. Images without a valid pixel are left out.
    """

    #: Arguments the metric supplies from the task declaration and its own settings.
    CONTEXT_ARGS = ()

    @classmethod
    def metric_names(cls, protocol: str = 'invpt') -> tuple:
        """Names of the metrics :meth:`compute` returns under ``protocol``."""
        return ('rmse', 'abs_rel', 'delta1')

    def process(self, pred: np.ndarray, gt: np.ndarray) -> Optional[Dict[str, np.ndarray]]:
        """Count one image.

        Args:
            pred (np.ndarray): Predicted depth, shape ``(H, W)``, metres.
            gt (np.ndarray): Ground-truth depth, shape ``(H, W)``, metres; 0 = invalid.

        Returns:
            dict | None: The image's error sums; None if it has no valid pixel.
        """
        pred = np.asarray(pred, dtype=np.float64)
        gt = np.asarray(gt, dtype=np.float64)
        if pred.shape != gt.shape or gt.ndim != 2:
            raise ValueError(f'prediction {pred.shape} and ground truth {gt.shape} must both be '
                             f'(H, W)')
        if not np.isfinite(pred).all():
            raise ValueError('prediction holds NaN or infinite values')
        valid = np.isfinite(gt) & (gt > 0)
        if not valid.any():
            return None
        target = gt[valid]
        depth = np.maximum(pred[valid], MIN_DEPTH)
        ratio = np.maximum(depth / target, target / depth)
        return dict(
            count=np.int64(target.size),
            sum_squares=np.float64(np.square(depth - target).sum()),
            sum_abs_rel=np.float64((np.abs(depth - target) / target).sum()),
            delta1=np.int64((ratio < 1.25).sum()),
        )

    def compute(self, records: Sequence[Mapping[str, np.ndarray]]) -> Dict[str, float]:
        """Return ``rmse`` (metres), ``abs_rel`` and ``delta1`` (percent)."""
        if not records:
            raise ValueError('no image with a valid ground-truth depth was evaluated')
        totals = sum_records(records)
        count = float(totals['count'])
        return dict(
            rmse=float(np.sqrt(totals['sum_squares'] / count)),
            abs_rel=float(totals['sum_abs_rel'] / count),
            delta1=float(totals['delta1'] / count * 100.0),
        )
