"""Saliency maxF under the three published protocols (``invpt``, ``atrc``, ``astmt``) and the
saliency mIoU of the ASTMT / MTLoRA meter (the one mIoU the multi-task papers report)."""
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from .meter_base import (TASK_METERS, TaskMeter, check_binary_labels,  # noqa: F401
                         check_probabilities, check_protocol, safe_divide, sum_records)

#: Thresholds of the pooled protocols ('invpt', 'atrc'): 0.05, 0.10, ..., 0.95.
POOLED_THRESHOLDS = np.round(np.arange(1, 20) * 0.05, 10)
#: Thresholds of the per-image protocol ('astmt') and of the saliency mIoU:
#: ``np.linspace(0.2, 0.9, 15)``.
ASTMT_THRESHOLDS = np.linspace(0.2, 0.9, 15)
#: Threshold of the pooled two-class IoU ``mIoU_pooled`` (foreground where p exceeds it).
IOU_THRESHOLD = 0.5


def counts_at_thresholds(scores: np.ndarray, positive: np.ndarray, thresholds: np.ndarray,
                         strict: bool) -> Tuple[np.ndarray, np.ndarray]:
    """Count predicted positives and true positives of a score map at several thresholds at once.

    Args:
        scores (np.ndarray): Scores of the counted pixels, shape ``(N,)``.
        positive (np.ndarray): bool ``(N,)``, ground-truth foreground.
        thresholds (np.ndarray): Increasing thresholds, shape ``(K,)``.
        strict (bool): A pixel is predicted positive at t when ``score > t`` (True) or
            ``score >= t`` (False).

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(predicted, true_positive)``, int64 arrays of shape
            ``(K,)``.
    """
    # number of thresholds a pixel passes; it is positive at every threshold index below that number
    passed = np.searchsorted(thresholds, scores, side='left' if strict else 'right')
    k = len(thresholds)

    def at_least(counts: np.ndarray) -> np.ndarray:  # counts[j] = pixels passing j thresholds
        return counts.sum() - np.cumsum(counts)[:k]

    predicted = at_least(np.bincount(passed, minlength=k + 1))
    true_positive = at_least(np.bincount(passed[positive], minlength=k + 1))
    return predicted.astype(np.int64), true_positive.astype(np.int64)


def f_measure(precision: np.ndarray, recall: np.ndarray, beta_squared: float) -> np.ndarray:
    """``(1 + β²) P R / (β² P + R)``, 0 where the denominator is 0."""
    return safe_divide((1 + beta_squared) * precision * recall, beta_squared * precision + recall)


@TASK_METERS.register_module()
class SaliencyMeter(TaskMeter):
    """Saliency maxF (in percent) under a named protocol, and the ASTMT / MTLoRA mIoU.

    - ``'atrc'``: P and R from TP / predicted / actual positives pooled over the set at thresholds
      0.05..0.95 (pixel positive when p >= t), F with β² = 0.3, maxF = the best threshold's F.
    - ``'invpt'``: the same, but as the public InvPT/TaskPrompter/MLoRE meter does it: that meter
      receives the foreground probability p and squashes it through a sigmoid once more, so
      threshold t is applied to sigmoid(p) (every pixel is positive for t <= 0.5, none for t >=
      sigmoid(1) ≈ 0.731). Reproduced for comparability with published numbers; the correct value is
      reported beside it as ``maxF_atrc``.
    - ``'astmt'``: per image, at the 15 thresholds ``np.linspace(0.2, 0.9, 15)`` (positive when p >
      t), precision TP / (TP + FP) and recall TP / (TP + FN) (each 0 when its denominator is 0, like
      the ASTMT code's ``+1e-12``); both averaged over images; F = 2 P R / (P + R) (β² = 1); maxF =
      the best threshold.

    Every protocol reports the same ``mIoU``, the saliency mIoU of the ASTMT meter
    (``fblib/evaluation/eval_sal.py``) as MTLoRA (``evaluation/eval_sal_no_beta.py``), M3ViT and
    ASE use it: per image, at each of the 15 thresholds ``np.linspace(0.2, 0.9, 15)``
    (foreground where p > t), the Jaccard index of predicted and ground-truth foreground (1 when
    both are empty); averaged over images per threshold; the best threshold's mean. It is not a
    two-class mean: the background does not count. Also ``mIoU_pooled``: foreground where
    p > 0.5, IoU of foreground and of background from counts pooled over the set, averaged over
    the two classes (mmase's earlier ``mIoU``). Pixels labelled ``ignore_index`` are left out
    everywhere (ASTMT's ``void_pixels``; MTLoRA passes none, which is the same on PASCAL's
    saliency labels: they hold no ignore value), and an image without a labelled pixel does not
    count.

    Args:
        protocol (str): ``'invpt'`` | ``'atrc'`` | ``'astmt'``. Default: ``'invpt'``.
        ignore_index (int): Ground-truth value of unlabelled pixels. Default: 255.
        beta_squared (float, optional): β² of the pooled protocols. Default: 0.3.
    """

    #: Arguments the metric supplies from the task declaration and its own settings.
    CONTEXT_ARGS = ('protocol', 'ignore_index')

    @classmethod
    def metric_names(cls, protocol: str = 'invpt') -> tuple:
        """Names of the metrics :meth:`compute` returns under ``protocol``."""
        return ('maxF', ) + (('maxF_atrc', ) if protocol == 'invpt' else ()) + ('mIoU', 'mIoU_pooled')

    def __init__(self, protocol: str = 'invpt', ignore_index: int = 255, beta_squared: float = 0.3):
        self.protocol = check_protocol(protocol)
        self.ignore_index = ignore_index
        self.beta_squared = beta_squared

    def process(self, pred: np.ndarray, gt: np.ndarray) -> Optional[Dict[str, np.ndarray]]:
        """Count one image.

        Args:
            pred (np.ndarray): Foreground probability, shape ``(H, W)``, values in [0, 1].
            gt (np.ndarray): Labels, shape ``(H, W)``, 0 / 1 / ``ignore_index``.

        Returns:
            dict | None: The image's counts (see :meth:`compute`); None if no pixel is labelled.
        """
        pred = np.asarray(pred, dtype=np.float64)
        gt = np.asarray(gt)
        if pred.shape != gt.shape or gt.ndim != 2:
            raise ValueError(f'prediction {pred.shape} and ground truth {gt.shape} must both be '
                             f'(H, W)')
        check_binary_labels(gt, self.ignore_index)
        check_probabilities(pred)
        valid = gt != self.ignore_index
        if not valid.any():
            return None
        scores = pred[valid]
        positive = gt[valid] == 1
        fg = scores > IOU_THRESHOLD
        predicted, tp = counts_at_thresholds(scores, positive, ASTMT_THRESHOLDS, strict=True)
        actual = positive.sum()
        union = predicted + actual - tp
        record = dict(jaccard=np.where(union == 0, 1.0, safe_divide(tp, union)))
        record['iou_counts'] = np.array([
            (fg & positive).sum(),  # true foreground
            (fg & ~positive).sum(),  # false foreground
            (~fg & positive).sum(),  # false background
            (~fg & ~positive).sum(),  # true background
        ], dtype=np.int64)
        if self.protocol in ('atrc', 'invpt'):
            record['positives'] = np.int64(positive.sum())
            record['atrc_predicted'], record['atrc_tp'] = counts_at_thresholds(
                scores, positive, POOLED_THRESHOLDS, strict=False)
        if self.protocol == 'invpt':
            squashed = 1.0 / (1.0 + np.exp(-scores))  # the public meter's second sigmoid
            record['invpt_predicted'], record['invpt_tp'] = counts_at_thresholds(
                squashed, positive, POOLED_THRESHOLDS, strict=False)
        if self.protocol == 'astmt':
            record['astmt_precision'] = safe_divide(tp, predicted)
            record['astmt_recall'] = safe_divide(tp, np.full_like(tp, actual))
        return record

    def _pooled_max_f(self, totals: Mapping[str, np.ndarray], name: str) -> float:
        precision = safe_divide(totals[f'{name}_tp'], totals[f'{name}_predicted'])
        recall = safe_divide(totals[f'{name}_tp'], totals['positives'])
        return float(f_measure(precision, recall, self.beta_squared).max() * 100.0)

    def compute(self, records: Sequence[Mapping[str, np.ndarray]]) -> Dict[str, float]:
        """Return ``maxF``, ``mIoU``, ``mIoU_pooled`` (percent), and ``maxF_atrc`` ('invpt')."""
        if not records:
            raise ValueError('no image with labelled saliency pixels was evaluated')
        totals = sum_records(records)
        tp, fp, fn, tn = totals['iou_counts'].astype(np.float64)
        iou_fg = safe_divide(tp, tp + fp + fn)
        iou_bg = safe_divide(tn, tn + fp + fn)
        metrics = {}
        if self.protocol == 'invpt':
            metrics['maxF'] = self._pooled_max_f(totals, 'invpt')
            metrics['maxF_atrc'] = self._pooled_max_f(totals, 'atrc')
        elif self.protocol == 'atrc':
            metrics['maxF'] = self._pooled_max_f(totals, 'atrc')
        else:
            precision = totals['astmt_precision'] / len(records)
            recall = totals['astmt_recall'] / len(records)
            metrics['maxF'] = float(f_measure(precision, recall, 1.0).max() * 100.0)
        metrics['mIoU'] = float((totals['jaccard'] / len(records)).max() * 100.0)
        metrics['mIoU_pooled'] = float((iou_fg + iou_bg) / 2 * 100.0)
        return metrics
