"""Boundary detection: SEISM's odsF (one-to-one matching: exact and compiled, or pyEdgeEval's for
parity), and the balanced BCE edge loss."""
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from .edge_matching import EdgeMatcher
from .edge_seism import seism_counts, seism_functions
from .meter_base import (TASK_METERS, TaskMeter, check_binary_labels, check_probabilities,
                         safe_divide, sum_records)
from .thinning import thin_nested

#: The matchers: exact maximum matching, or pyEdgeEval's ``correspond_pixels``.
EDGE_MATCHERS = ('exact', 'seism')


def check_edge_matcher(matcher: str, field: str = 'matcher') -> str:
    """Return ``matcher`` if known (and, for ``'seism'``, if pyEdgeEval imports), else raise an
    error naming ``field``: a missing pyEdgeEval fails at build, not at the first image."""
    if matcher not in EDGE_MATCHERS:
        raise ValueError(f'{field}={matcher!r} is not an edge matcher; choose from '
                         f'{EDGE_MATCHERS}')
    if matcher == 'seism':
        seism_functions(field)
    return matcher


#: Lower bound of log(p) and log(1 - p) in the edge loss, as
#: ``torch.nn.functional.binary_cross_entropy``.
LOG_CLAMP = -100.0


@TASK_METERS.register_module()
class EdgeMeter(TaskMeter):
    """Optimal-dataset-scale F-measure (odsF, percent) of edge maps as the MATLAB SEISM toolbox
    computes it, and the balanced BCE edge loss.

    For each threshold t in 0.01, 0.02, ..., 0.99 (``num_thresholds`` evenly spaced in (0, 1)):

    1. binarise the prediction (``p >= t``) and thin it to one-pixel-wide curves (Guo-Hall thinning,
       identical to MATLAB's ``bwmorph(..., 'thin')`` and ``skimage.morphology.thin``; see
       :mod:`.thinning`);
    2. match the thinned predicted pixels one-to-one with the ground-truth edge pixels closer than
       ``tolerance × image diagonal`` (SEISM's ``correspondPixels``): ``matched`` is the size of a
       maximum matching, computed exactly (``matcher='exact'``, :mod:`.edge_matching`), or
       pyEdgeEval's thinning and compiled ``correspondPixels`` (``matcher='seism'``,
       :mod:`.edge_seism`: its numbers, ~200x slower);
    3. matched / predicted / ground-truth counts are summed over the images.

    P = matched / predicted, R = matched / ground truth, F = 2PR / (P + R) (0 when undefined), and
    odsF = the best F over the thresholds (no interpolation between thresholds). With the
    tolerance of the papers (0.0075 of the diagonal for PASCAL, 0.011 for NYUD) this is SEISM's
    number up to ``correspondPixels``' own shortfall (it finds slightly fewer pairs than the
    maximum on near-perfect maps: see :mod:`.edge_matching`); checked against ``pyEdgeEval``'s
    compiled port in ``tests/test_evaluation/test_metrics/test_edge_reference.py``. Use
    ``matcher='seism'`` for a number to print beside published ones (docs/evaluation.md).

    :meth:`summary` also gives the P/R curve, oisF (each image at its own best threshold) and AP.

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
        matcher (str): ``'exact'`` (maximum matching, fast) or ``'seism'`` (pyEdgeEval's,
            optional dependency: checked here). Default: ``'exact'``.
    """

    #: Arguments the metric supplies from the task declaration and its own settings.
    CONTEXT_ARGS = ('tolerance', 'pos_weight', 'ignore_index', 'matcher')

    @classmethod
    def metric_names(cls, protocol: str = 'invpt') -> tuple:
        """Names of the metrics :meth:`compute` returns under ``protocol``."""
        return ('odsF', 'loss')

    def __init__(self, tolerance: float = 0.0075, pos_weight: float = 0.95, ignore_index: int = 255,
                 num_thresholds: int = 99, matcher: str = 'exact'):
        if not tolerance > 0:
            raise ValueError(f'edge tolerance must be > 0 (a fraction of the image diagonal), got '
                             f'{tolerance!r}')
        if not 0 <= pos_weight <= 1:
            raise ValueError(f'edge pos_weight must be in [0, 1], got {pos_weight!r}')
        if int(num_thresholds) != num_thresholds or num_thresholds < 1:
            raise ValueError(f'num_thresholds must be a positive integer, got {num_thresholds!r}')
        self.matcher = check_edge_matcher(matcher)
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
            dict | None: Per threshold ``matched`` and ``predicted`` (int64 ``(K,)``: pairs of
            the maximum matching, thinned predicted pixels), and ``gt_edges``, ``loss_sum``,
            ``loss_count``; None if no pixel is labelled.
        """
        pred = np.asarray(pred)
        if not np.issubdtype(pred.dtype, np.floating):
            pred = pred.astype(np.float64)
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
        if self.matcher == 'seism':
            matched, predicted = seism_counts(pred, edges, valid, self.thresholds, self.tolerance)
            num_edges = int(np.count_nonzero(edges))
        else:
            matched, predicted, num_edges = self._exact_counts(pred, edges, valid)
        labelled = pred[valid].astype(np.float64)
        return dict(
            matched=matched,
            predicted=predicted,
            gt_edges=np.int64(num_edges),
            loss_sum=np.float64(self.balanced_bce_sum(labelled, edges[valid])),
            loss_count=np.int64(labelled.size),
        )

    def _exact_counts(self, pred: np.ndarray, edges: np.ndarray,
                      valid: np.ndarray) -> Tuple[np.ndarray, np.ndarray, int]:
        """Per-threshold pairs of a maximum matching and thinned predicted pixels (int64
        ``(K,)`` each), and the number of ground-truth edge pixels."""
        # number of thresholds each pixel reaches (p >= t, compared in float64)
        passed = np.searchsorted(self.thresholds, pred, side='right')
        num = len(self.thresholds)
        # the maps are nested, so equal pixel counts mean equal maps: each distinct map is
        # thinned and matched once
        sizes = passed.size - np.cumsum(np.bincount(passed.ravel(), minlength=num + 1))[:num]
        new_map = np.r_[True, sizes[1:] != sizes[:-1]]
        distinct = np.flatnonzero(new_map)
        indptr, indices = thin_nested(passed, distinct)
        keep = valid.reshape(-1)[indices]  # predicted pixels on unlabelled ones do not count
        indices = indices[keep]
        kept_before = np.zeros(keep.size + 1, np.int64)  # kept pixels before each position
        np.cumsum(keep, out=kept_before[1:])
        indptr = kept_before[indptr]
        predicted = np.diff(indptr)
        matcher = EdgeMatcher(edges, self.tolerance * np.hypot(*edges.shape))
        matched = matcher.count_lists(indptr, indices)
        # spread the distinct maps' counts back over all thresholds
        owner = np.cumsum(new_map) - 1
        return matched[owner], predicted[owner], matcher.num_edges

    @staticmethod
    def _f_score(matched: np.ndarray, predicted: np.ndarray,
                 gt_edges: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Precision, recall and F (fractions, 0 where undefined) of counts."""
        precision = safe_divide(matched, predicted)
        recall = safe_divide(matched, gt_edges)
        return precision, recall, safe_divide(2 * precision * recall, precision + recall)

    def compute(self, records: Sequence[Mapping[str, np.ndarray]]) -> Dict[str, float]:
        """Return ``odsF`` (percent) and ``loss`` (mean balanced BCE)."""
        if not records:
            raise ValueError('no image with labelled edge pixels was evaluated')
        totals = sum_records(records)
        _, _, f_score = self._f_score(totals['matched'], totals['predicted'], totals['gt_edges'])
        return dict(odsF=float(f_score.max() * 100.0),
                    loss=float(totals['loss_sum'] / totals['loss_count']))

    def summary(self, records: Sequence[Mapping[str, np.ndarray]]) -> Dict[str, object]:
        """The whole evaluation of a set: P/R curve, odsF, oisF and AP (as the BSDS/SEISM
        benchmarks define them, without interpolation between thresholds).

        - odsF: best F of the counts summed over the images (the threshold ``ods_threshold``);
        - oisF: F of the counts summed over the images, each at the threshold of its own best F
          (the first on ties);
        - AP: area under the precision-recall curve, precision interpolated linearly at the
          recalls 0, 0.01, ..., 1 from the distinct recalls of the curve (the precision of the
          lowest threshold with that recall) and 0 outside them
          (``collect_eval_bdry`` of the BSDS500 benchmark).

        Args:
            records (Sequence[dict]): Records of :meth:`process` (None entries not allowed).

        Returns:
            dict: ``thresholds``, ``precision``, ``recall``, ``f`` (lists of K floats, fractions),
            ``odsF``, ``oisF``, ``AP`` (percent), ``ods_threshold``, ``loss``, ``num_images``.
        """
        if not records:
            raise ValueError('no image with labelled edge pixels was evaluated')
        totals = sum_records(records)
        precision, recall, f_score = self._f_score(totals['matched'], totals['predicted'],
                                                   totals['gt_edges'])
        best = int(np.argmax(f_score))
        # each image at its own best threshold
        ois = np.zeros(3, dtype=np.int64)
        for record in records:
            _, _, own_f = self._f_score(record['matched'], record['predicted'],
                                        record['gt_edges'])
            k = int(np.argmax(own_f))
            ois += [record['matched'][k], record['predicted'][k], record['gt_edges']]
        _, _, ois_f = self._f_score(*ois)
        unique_recall, first = np.unique(recall, return_index=True)
        if unique_recall.size > 1:
            grid = np.linspace(0, 1, 101)
            interpolated = np.interp(grid, unique_recall, precision[first], left=0, right=0)
            average_precision = float(interpolated.sum() * 0.01)
        else:
            average_precision = 0.0
        return dict(thresholds=self.thresholds.tolist(), precision=precision.tolist(),
                    recall=recall.tolist(), f=f_score.tolist(),
                    odsF=float(f_score[best] * 100.0), ods_threshold=float(self.thresholds[best]),
                    oisF=float(ois_f * 100.0), AP=average_precision * 100.0,
                    loss=float(totals['loss_sum'] / totals['loss_count']),
                    num_images=len(records))
