"""Boundary detection: a Python odsF approximating SEISM's, and the balanced BCE edge loss."""
from typing import Dict, Mapping, Optional, Sequence

import cv2
import numpy as np
from scipy.ndimage import distance_transform_edt

from .saliency_meter import check_binary_labels, check_probabilities
from .task_metrics import TaskMeter, safe_divide, sum_records
from .thinning import thin_stack

#: Lower bound of log(p) and log(1 - p) in the edge loss, as
#: ``torch.nn.functional.binary_cross_entropy``.
LOG_CLAMP = -100.0


class EdgeMeter(TaskMeter):
    """Optimal-dataset-scale F-measure (odsF, percent) of edge maps, and the balanced BCE edge loss.

    For each threshold t in 0.01, 0.02, ..., 0.99 (``num_thresholds`` evenly spaced in (0, 1)):

    1. binarise the prediction (``p >= t``) and thin it to one-pixel-wide curves (Guo-Hall thinning,
       identical to ``skimage.morphology.thin``; see :mod:`.thinning`);
    2. a thinned predicted pixel is *correct* if a ground-truth edge pixel lies within the maximum
       distance ``tolerance × image diagonal`` (Euclidean, read from
       ``scipy.ndimage.distance_transform_edt`` of the ground truth); a ground-truth edge pixel is
       *recalled* if a thinned predicted pixel lies within that distance (equivalent to thresholding
       the distance transform of the thinned prediction at the ground-truth pixels; computed as a
       dilation of the thinned map by the disk of that radius, which is exact and much faster than
       99 distance transforms);
    3. correct / predicted / recalled / ground-truth counts are summed over the images.

    P = correct / predicted, R = recalled / ground truth, F = 2PR / (P + R) (0 when undefined), and
    odsF = the best F over the thresholds (no interpolation between thresholds).

    This approximates the MATLAB SEISM toolbox the papers use (tolerance 0.0075 of the diagonal for
    PASCAL, 0.011 for NYUD; 99 thresholds; counts summed over images): SEISM matches predicted and
    ground-truth pixels one-to-one (bipartite assignment within the tolerance), whereas here any
    pixel within the tolerance counts, so several predicted pixels may share one ground-truth pixel
    and vice versa. The numbers are therefore slightly optimistic relative to SEISM; compare within
    this implementation.

    The balanced BCE loss (reported beside odsF, not used to rank) is
    ``-mean(w·y·log p + (1 − w)·(1 − y)·log(1 − p))`` over the labelled pixels of the set (pooled),
    w = ``pos_weight``, with log clamped at -100. Pixels labelled ``ignore_index`` are left out of
    everything: they are neither ground-truth edges nor counted when predicted.

    Args:
        tolerance (float): Maximum matching distance as a fraction of the image diagonal. Default:
            0.0075 (PASCAL); use 0.011 for NYUD.
        pos_weight (float): Weight w of edge pixels in the loss. Default: 0.95.
        ignore_index (int): Ground-truth value of unlabelled pixels. Default: 255.
        num_thresholds (int): Number of thresholds ``k / (num_thresholds + 1)``. Default: 99.
    """

    def __init__(self, tolerance: float = 0.0075, pos_weight: float = 0.95, ignore_index: int = 255,
                 num_thresholds: int = 99):
        if not tolerance > 0:
            raise ValueError(f'edge tolerance must be > 0 (a fraction of the image diagonal), got '
                             f'{tolerance!r}')
        if not 0 <= pos_weight <= 1:
            raise ValueError(f'edge pos_weight must be in [0, 1], got {pos_weight!r}')
        if int(num_thresholds) != num_thresholds or num_thresholds < 1:
            raise ValueError(f'num_thresholds must be a positive integer, got {num_thresholds!r}')
        self.tolerance = float(tolerance)
        self.pos_weight = float(pos_weight)
        self.ignore_index = ignore_index
        self.thresholds = np.round(np.arange(1, num_thresholds + 1) / (num_thresholds + 1), 10)

    def balanced_bce_sum(self, prob: np.ndarray, label: np.ndarray) -> float:
        """Sum over pixels of the balanced BCE; ``prob`` and bool ``label`` of the same shape."""
        log_p = np.full(prob.shape, LOG_CLAMP)
        np.log(prob, out=log_p, where=prob > 0)
        log_not_p = np.full(prob.shape, LOG_CLAMP)
        np.log(1.0 - prob, out=log_not_p, where=prob < 1)
        log_p = np.maximum(log_p, LOG_CLAMP)
        log_not_p = np.maximum(log_not_p, LOG_CLAMP)
        weighted = np.where(label, self.pos_weight * log_p, (1.0 - self.pos_weight) * log_not_p)
        return float(-weighted.sum())

    def process(self, pred: np.ndarray, gt: np.ndarray) -> Optional[Dict[str, np.ndarray]]:
        """Count one image.

        Args:
            pred (np.ndarray): Edge probability, shape ``(H, W)``, values in [0, 1].
            gt (np.ndarray): Edge labels, shape ``(H, W)``, 0 / 1 / ``ignore_index``.

        Returns:
            dict | None: Per threshold ``correct``, ``predicted``, ``recalled`` (int64
            ``(K,)``), and ``gt_edges``, ``loss_sum``, ``loss_count``; None if no pixel is labelled.
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
        edges = gt == 1
        height, width = gt.shape
        max_distance = self.tolerance * np.hypot(height, width)

        # binarise at every threshold; the maps are nested, so equal pixel counts mean equal maps
        # and each distinct map is thinned once
        # number of thresholds each pixel reaches
        passed = np.searchsorted(self.thresholds, pred, side='right')
        num = len(self.thresholds)
        sizes = passed.size - np.cumsum(np.bincount(passed.ravel(), minlength=num + 1))[:num]
        distinct = np.flatnonzero(np.r_[True, sizes[1:] != sizes[:-1]])
        thinned = thin_stack(passed[None] > distinct[:, None, None])
        thinned &= valid[None]

        # within-distance tests as dilations by the disk of radius max_distance (exact: the disk
        # holds every integer offset at Euclidean distance <= max_distance)
        radius = int(np.floor(max_distance))
        offsets = np.arange(-radius, radius + 1)
        disk = (offsets[:, None]**2 + offsets[None, :]**2 <= max_distance**2).astype(np.uint8)
        near_edge = distance_transform_edt(~edges) <= max_distance if edges.any() \
            else np.zeros_like(edges)
        predicted = thinned.sum((1, 2))
        correct = (thinned & near_edge[None]).sum((1, 2))
        recalled = np.zeros(len(distinct), dtype=np.int64)
        if edges.any():
            for i in np.flatnonzero(predicted):
                near_prediction = cv2.dilate(thinned[i].view(np.uint8), disk,
                                             borderType=cv2.BORDER_CONSTANT, borderValue=0)
                recalled[i] = np.count_nonzero(near_prediction[edges])
        # spread the distinct maps' counts back over all thresholds
        owner = np.cumsum(np.r_[True, sizes[1:] != sizes[:-1]]) - 1
        return dict(
            correct=correct[owner],
            predicted=predicted[owner],
            recalled=recalled[owner],
            gt_edges=np.int64(edges.sum()),
            loss_sum=np.float64(self.balanced_bce_sum(pred[valid], edges[valid])),
            loss_count=np.int64(valid.sum()),
        )

    def compute(self, records: Sequence[Mapping[str, np.ndarray]]) -> Dict[str, float]:
        """Return ``odsF`` (percent) and ``loss`` (mean balanced BCE)."""
        if not records:
            raise ValueError('no image with labelled edge pixels was evaluated')
        totals = sum_records(records)
        precision = safe_divide(totals['correct'], totals['predicted'])
        recall = safe_divide(totals['recalled'], totals['gt_edges'])
        f_score = safe_divide(2 * precision * recall, precision + recall)
        return dict(odsF=float(f_score.max() * 100.0),
                    loss=float(totals['loss_sum'] / totals['loss_count']))
