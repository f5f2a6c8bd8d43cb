"""Per-pixel error of a float map of any number of channels (generic regression tasks)."""
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from .meter_base import TASK_METERS, TaskMeter, sum_records


@TASK_METERS.register_module()
class PixelErrorMeter(TaskMeter):
    """Mean absolute and root-mean-square error over the labelled pixels of the set.

    A pixel is labelled when its ground truth differs from ``ignore_value`` in at least one
    channel (all channels of a labelled pixel count). Pooled over the whole set:
    ``mae = Σ|p - g| / n``, ``rmse = sqrt(Σ(p - g)² / n)`` with ``n`` the labelled values, in the
    map's units. Images without a labelled pixel are left out.

    Args:
        ignore_value (float): Ground-truth value of unlabelled pixels (the task's
            ``ignore_value``, supplied by the metric).
    """

    CONTEXT_ARGS = ('ignore_value', )

    @classmethod
    def metric_names(cls, protocol: str = 'invpt') -> tuple:
        """Names of the metrics :meth:`compute` returns (every protocol)."""
        return ('mae', 'rmse')

    def __init__(self, ignore_value: float = 0.0):
        self.ignore_value = float(ignore_value)

    def process(self, pred: np.ndarray, gt: np.ndarray) -> Optional[Dict[str, np.ndarray]]:
        """Args: pred, gt ``(H, W)`` or ``(C, H, W)`` of the same shape. Returns the sums or None."""
        pred = np.asarray(pred, dtype=np.float64)
        gt = np.asarray(gt, dtype=np.float64)
        if pred.shape != gt.shape:
            raise ValueError(f'prediction {pred.shape} and ground truth {gt.shape} differ')
        if not np.isfinite(pred).all():
            raise ValueError('prediction holds NaN or infinite values')
        gt3 = gt[None] if gt.ndim == 2 else gt
        pred3 = pred[None] if pred.ndim == 2 else pred
        valid = (gt3 != self.ignore_value).any(axis=0)
        if not valid.any():
            return None
        diff = (pred3 - gt3)[:, valid]
        return dict(abs_sum=np.abs(diff).sum(), sq_sum=np.square(diff).sum(),
                    count=np.int64(diff.size))

    def compute(self, records: Sequence[Mapping[str, np.ndarray]]) -> Dict[str, float]:
        total = sum_records(records)
        count = float(total['count'])
        return dict(mae=float(total['abs_sum']) / count,
                    rmse=float(np.sqrt(float(total['sq_sum']) / count)))
