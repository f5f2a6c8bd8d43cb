"""Dataset-level mIoU from a confusion matrix (semantic segmentation and human parts), and the
per-class IoU / accuracy table mmseg's ``IoUMetric`` prints."""
from typing import Dict, Mapping, Optional, Sequence

import numpy as np
from prettytable import PrettyTable

from .meter_base import TASK_METERS, TaskMeter, safe_divide, sum_records


@TASK_METERS.register_module()
class SegmentationMeter(TaskMeter):
    """mIoU from TP/FP/FN pooled over the whole set, pixels labelled ``ignore_index`` left out.

    Per class c: IoU_c = TP_c / (TP_c + FP_c + FN_c) with the counts summed over all images; mIoU
    is the mean over the classes that appear in the ground truth or the prediction of the set (a
    class absent from both has no IoU). Reported in percent.

    Args:
        num_classes (int): Number of classes C; labels and predictions are ids in ``[0, C)``.
        ignore_index (int): Ground-truth value of unlabelled pixels. Default: 255.
        skip_no_foreground (bool): Leave out images whose ground truth has no pixel of a class other
            than 0 (all background or all ignore), as the human-parts protocol does. Default: False.
    """

    #: Arguments the metric supplies from the task declaration and its own settings.
    CONTEXT_ARGS = ('num_classes', 'ignore_index')

    @classmethod
    def metric_names(cls, protocol: str = 'invpt') -> tuple:
        """Names of the metrics :meth:`compute` returns under ``protocol``."""
        return ('mIoU', )

    def __init__(self, num_classes: int, ignore_index: int = 255, skip_no_foreground: bool = False):
        if int(num_classes) != num_classes or num_classes < 2:
            raise ValueError(f'num_classes must be an integer >= 2, got {num_classes!r}')
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.skip_no_foreground = skip_no_foreground

    def process(self, pred: np.ndarray, gt: np.ndarray) -> Optional[Dict[str, np.ndarray]]:
        """Count one image.

        Args:
            pred (np.ndarray): Class ids, shape ``(H, W)``, integers in ``[0, C)``.
            gt (np.ndarray): Labels, shape ``(H, W)``, integers in ``[0, C)`` or ``ignore_index``.

        Returns:
            dict | None: ``{'confusion': (C, C) int64}`` (rows = ground truth, columns =
            prediction), or
            None when ``skip_no_foreground`` and the image has no foreground label.
        """
        pred = np.asarray(pred)
        gt = np.asarray(gt)
        if pred.shape != gt.shape or gt.ndim != 2:
            raise ValueError(f'prediction {pred.shape} and ground truth {gt.shape} must both be '
                             f'(H, W)')
        valid = gt != self.ignore_index
        labels = gt[valid].astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f'ground truth holds labels outside [0, {self.num_classes}) other '
                             f'than {self.ignore_index}: {np.unique(labels).tolist()}')
        if self.skip_no_foreground and not (labels > 0).any():
            return None
        predicted = pred[valid].astype(np.int64)
        if predicted.size and (predicted.min() < 0 or predicted.max() >= self.num_classes):
            raise ValueError(f'prediction holds class ids outside [0, {self.num_classes}): '
                             f'{np.unique(predicted).tolist()}')
        confusion = np.bincount(labels * self.num_classes + predicted,
                                minlength=self.num_classes**2)
        return dict(confusion=confusion.reshape(self.num_classes, self.num_classes))

    def confusion(self, records: Sequence[Mapping[str, np.ndarray]]) -> np.ndarray:
        """The set's ``(C, C)`` int64 confusion matrix (rows = ground truth)."""
        return sum_records(records, ['confusion'])['confusion']

    def class_scores(self, records: Sequence[Mapping[str, np.ndarray]]) -> Dict[str, np.ndarray]:
        """Per-class ``IoU`` and ``Acc`` (percent, ``(C,)``) of the set: :func:`class_scores`."""
        return class_scores(self.confusion(records))

    def class_iou(self, records: Sequence[Mapping[str, np.ndarray]]) -> np.ndarray:
        """IoU of each class over the set, shape ``(C,)``, in [0, 1]; NaN for a class never seen."""
        confusion = self.confusion(records).astype(np.float64)
        tp = np.diag(confusion)
        union = confusion.sum(0) + confusion.sum(1) - tp
        iou = safe_divide(tp, union)
        iou[union == 0] = np.nan
        return iou

    def compute(self, records: Sequence[Mapping[str, np.ndarray]]) -> Dict[str, float]:
        """Return ``{'mIoU': percent}``."""
        iou = self.class_iou(records)
        if np.isnan(iou).all():
            raise ValueError('no labelled pixel in the evaluated set: mIoU is undefined')
        return dict(mIoU=float(np.nanmean(iou) * 100.0))


def class_scores(confusion: np.ndarray) -> Dict[str, np.ndarray]:
    """Per-class scores of a ``(C, C)`` confusion matrix (rows = ground truth), in percent:
    ``IoU_c = TP / (TP + FP + FN)`` (NaN for a class absent from ground truth and prediction)
    and ``Acc_c = TP / (TP + FN)`` (NaN for a class absent from the ground truth)."""
    confusion = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(confusion)
    gt = confusion.sum(axis=1)
    union = gt + confusion.sum(axis=0) - tp
    iou = np.full_like(tp, np.nan)
    acc = np.full_like(tp, np.nan)
    np.divide(tp * 100.0, union, out=iou, where=union > 0)
    np.divide(tp * 100.0, gt, out=acc, where=gt > 0)
    return dict(IoU=iou, Acc=acc)


def class_table(scores: Mapping[str, np.ndarray], class_names: Sequence[str]) -> PrettyTable:
    """mmseg's per-class table: ``Class | IoU | Acc`` (2 decimals, ``nan`` where undefined)."""
    if len(class_names) != len(scores['IoU']):
        raise ValueError(f'{len(class_names)} class names for {len(scores["IoU"])} classes')
    table = PrettyTable()
    table.field_names = ['Class', 'IoU', 'Acc']
    for name, iou, acc in zip(class_names, scores['IoU'], scores['Acc']):
        table.add_row([name, f'{iou:.2f}', f'{acc:.2f}'])
    return table
