"""One-to-one matching of predicted and ground-truth edge pixels, as SEISM's ``correspondPixels``.

``correspondPixels`` (BSDS500 / SEISM, ``match.cc``) pairs the pixels of two binary edge maps so
that each pixel is used at most once and paired pixels lie within ``max_distance`` (Euclidean,
pixels; ``dy² + dx² <= max_distance²`` on the integer grid). It solves a min-cost assignment in
which every unmatched pixel costs ``100 × max_distance`` and a pair costs its length, so it first
maximises the number of pairs and then minimises their total length. The edge F-measure only uses
the number of pairs, which is the size of a **maximum bipartite matching** of the graph whose
nodes are the pixels of the two maps and whose edges join pixels within ``max_distance``; this
module computes that size exactly.

``correspondPixels`` only approximates that maximum: its assignment graph gives each pixel 6
random "outlier" edges instead of all of them, and the few outlier nodes left without a partner
(about ``e^-6`` of them when both maps have about as many pixels) each cost one pair. It finds
0-0.5 % fewer pairs than the maximum (never more), and its odsF reads 0.0-0.2 point below
mmase's on PASCAL-like maps (measured by ``tools/analysis/benchmark_edges.py``); it is also
random (seeded from the clock), by a few pixels per threshold from run to run.

How the maximum matching is found (exact; numpy and scipy only):

1. only *matchable* predicted pixels take part, those within ``max_distance`` of a ground-truth
   pixel (the others cannot be paired; on noisy maps this drops ~90 % of them);
2. the pairs are listed once per image, for the union of the matchable pixels of all thresholds,
   with one gather per integer offset of the disk (the offsets ``match.cc`` scans); each
   threshold's map takes its rows of that list;
3. the matching is a maximum flow source -> one side -> the other side -> sink (unit
   capacities), the side of fewer pixels next to the source, solved by scipy's compiled Dinic
   (``scipy.sparse.csgraph.maximum_flow``), whose blocking flows prune dead ends. (scipy's
   Hopcroft-Karp, ``maximum_bipartite_matching``, finds the same size, but its depth-first search
   does not prune them: it takes up to a minute on a blurred map's dense pair graph, where Dinic
   takes milliseconds.)
"""
from typing import Tuple

import numpy as np
from scipy.ndimage import binary_dilation
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_flow


def disk_offsets(max_distance: float) -> Tuple[np.ndarray, np.ndarray]:
    """Integer offsets ``(dy, dx)`` with ``dy² + dx² <= max_distance²`` (as ``match.cc``).

    Args:
        max_distance (float): Radius in pixels, >= 0.

    Returns:
        tuple[np.ndarray, np.ndarray]: int64 ``(M,)`` row and column offsets, (0, 0) included.
    """
    if not max_distance >= 0:
        raise ValueError(f'max_distance must be >= 0 pixels, got {max_distance!r}')
    radius = int(np.floor(max_distance))
    steps = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(steps, steps, indexing='ij')
    inside = dy**2 + dx**2 <= max_distance**2
    return dy[inside], dx[inside]


class EdgeMatcher:
    """Maximum one-to-one matchings of several binary maps against one ground-truth edge map.

    Args:
        edges (np.ndarray): bool ``(H, W)``, the ground-truth edge pixels.
        max_distance (float): Largest distance of a pair, in pixels (SEISM: ``maxDist × image
            diagonal``).
    """

    def __init__(self, edges: np.ndarray, max_distance: float):
        edges = np.asarray(edges, dtype=bool)
        if edges.ndim != 2:
            raise ValueError(f'ground-truth edges must have shape (H, W), got {edges.shape}')
        dy, dx = disk_offsets(max_distance)
        self.shape = edges.shape
        height, width = edges.shape
        pad = int(max(np.abs(dy).max(), 0))
        self._pad = pad
        self._row = width + 2 * pad
        # node id of every ground-truth pixel in a padded image (-1 elsewhere), so that a
        # predicted pixel's neighbours are gathered without bounds checks
        self.num_edges = int(edges.sum())
        index = np.full((height + 2 * pad, width + 2 * pad), -1, dtype=np.int64)
        index[pad:pad + height, pad:pad + width][edges] = np.arange(self.num_edges)
        self._index = index.reshape(-1)
        self._offsets = dy * self._row + dx
        disk = np.zeros((2 * pad + 1, 2 * pad + 1), dtype=bool)
        disk[dy + pad, dx + pad] = True
        # pixels within max_distance of a ground-truth pixel: the only matchable predictions
        self.near = binary_dilation(edges, disk) if self.num_edges else np.zeros_like(edges)

    def count(self, pred: np.ndarray) -> int:
        """Number of pairs of a maximum matching between ``pred`` (bool ``(H, W)``, thinned
        predicted edge pixels) and the ground truth."""
        return int(self.count_stack(np.asarray(pred)[None])[0])

    def count_stack(self, maps: np.ndarray) -> np.ndarray:
        """Maximum-matching sizes of several predicted maps (e.g. one per threshold).

        The pairs are listed once for the union of the maps' matchable pixels; each map then
        takes its rows of that list.

        Args:
            maps (np.ndarray): bool ``(N, H, W)``, predicted edge pixels (thinned).

        Returns:
            np.ndarray: int64 ``(N,)``, each map's number of pairs (at most
            ``min(map.sum(), num_edges)``).
        """
        maps = np.asarray(maps, dtype=bool)
        if maps.ndim != 3 or maps.shape[1:] != self.shape:
            raise ValueError(f'predicted maps {maps.shape} must be (N, H, W) with (H, W) the '
                             f'ground truth\'s {self.shape}')
        counts = np.zeros(len(maps), dtype=np.int64)
        if self.num_edges == 0:
            return counts
        matchable = maps & self.near[None]
        ys, xs = np.nonzero(matchable.any(0))  # every pixel matchable in some map
        if ys.size == 0:
            return counts
        present = matchable[:, ys, xs]  # (N, U)
        flat = (ys + self._pad) * self._row + (xs + self._pad)
        gt = self._index[flat[:, None] + self._offsets[None, :]]  # (U, M) node ids or -1
        linked = gt >= 0
        pair_pred = np.broadcast_to(np.arange(ys.size)[:, None], gt.shape)[linked]  # sorted
        pair_gt = gt[linked]
        by_gt = np.argsort(pair_gt, kind='stable')  # the same pairs sorted by ground truth
        pred_by_gt, gt_by_gt = pair_pred[by_gt], pair_gt[by_gt]
        for k, row in enumerate(present):
            num_pred = int(np.count_nonzero(row))
            if num_pred == 0:
                continue
            keep = row[pair_pred]
            gt_degree = np.bincount(pair_gt[keep], minlength=self.num_edges)
            if num_pred <= np.count_nonzero(gt_degree):
                # fewer predicted than reached ground-truth pixels: predicted ones on the
                # source side
                counts[k] = self._max_flow(linked[row].sum(1), pair_gt[keep], self.num_edges)
            else:
                local = np.cumsum(row) - 1  # union index -> index among this map's pixels
                counts[k] = self._max_flow(gt_degree, local[pred_by_gt[row[pred_by_gt]]],
                                           num_pred)
        return counts

    @staticmethod
    def _max_flow(degree: np.ndarray, targets: np.ndarray, num_targets: int) -> int:
        """Maximum matching size of a bipartite graph given as rows.

        Args:
            degree (np.ndarray): ``(A,)``, the number of pairs of each source-side node.
            targets (np.ndarray): ``(sum(degree),)``, the other end (``0..num_targets-1``) of
                each pair, grouped by source-side node in order.
            num_targets (int): Number of nodes on the other side.

        Returns:
            int: The matching's size, the maximum flow of source -> side A -> side B -> sink
            with unit capacities. The side of fewer nodes should be A: Dinic's searches then
            start from fewer free nodes (2x faster on noisy maps).
        """
        num_source = degree.size
        # nodes: side A 0..A-1, side B A..A+B-1, source, sink
        source, sink = num_source + num_targets, num_source + num_targets + 1
        indptr = np.zeros(sink + 2, dtype=np.int32)
        np.cumsum(degree, out=indptr[1:num_source + 1])  # A -> B
        indptr[num_source + 1:source + 1] = indptr[num_source] + np.arange(1, num_targets + 1)
        indptr[source + 1] = indptr[source] + num_source  # source -> A
        indptr[sink + 1] = indptr[source + 1]
        indices = np.concatenate([num_source + targets, np.full(num_targets, sink),
                                  np.arange(num_source)]).astype(np.int32)
        capacity = np.ones(indices.size, dtype=np.int32)
        graph = csr_matrix((capacity, indices, indptr), shape=(sink + 1, sink + 1))
        return int(maximum_flow(graph, source, sink, method='dinic').flow_value)
