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
random "outlier" edges instead of all of them, and a few outlier nodes end up without a partner
(about ``e^-6`` of them when both maps have about as many pixels), each costing one pair. On
near-perfect predictions it therefore finds up to ~0.5 % fewer pairs than the maximum, on
realistic ones (odsF below ~90) a few pixels in a million fewer (measured by
``tools/analysis/benchmark_edges.py``); it is also random (seeded from the clock).

How the maximum matching is found (exact; numpy and scipy only):

1. only *matchable* predicted pixels take part, those within ``max_distance`` of a ground-truth
   pixel (the others cannot be paired; on noisy maps this drops ~90 % of them);
2. the pairs are listed with one gather per integer offset of the disk (the offsets ``match.cc``
   scans), in predicted-pixel order, which is already the sparse row layout;
3. the matching is a maximum flow source -> predicted pixels -> ground-truth pixels -> sink (unit
   capacities), solved by scipy's compiled Dinic (``scipy.sparse.csgraph.maximum_flow``), whose
   blocking flows prune dead ends. (scipy's Hopcroft-Karp, ``maximum_bipartite_matching``, finds
   the same size but its depth-first search does not, and it takes up to a minute on a blurred
   map's dense pair graph, where Dinic takes milliseconds.)
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
        """Number of pairs of a maximum matching between ``pred`` and the ground truth.

        Args:
            pred (np.ndarray): bool ``(H, W)``, predicted edge pixels (thinned).

        Returns:
            int: The matching's size (at most ``min(pred.sum(), num_edges)``).
        """
        pred = np.asarray(pred, dtype=bool)
        if pred.shape != self.shape:
            raise ValueError(f'predicted map {pred.shape} and ground truth {self.shape} differ '
                             f'in size')
        ys, xs = np.nonzero(pred & self.near)
        num_pred = ys.size
        if num_pred == 0:
            return 0
        flat = (ys + self._pad) * self._row + (xs + self._pad)
        gt = self._index[flat[:, None] + self._offsets[None, :]]  # (P, M) node ids or -1
        linked = gt >= 0
        # nodes: predicted pixels 0..P-1, ground-truth pixels P..P+G-1, source, sink
        num_gt = self.num_edges
        source, sink = num_pred + num_gt, num_pred + num_gt + 1
        degree = linked.sum(1)
        indptr = np.zeros(source + 3, dtype=np.int32)
        indptr[1:num_pred + 1] = np.cumsum(degree)  # predicted -> ground truth
        indptr[num_pred + 1:source + 1] = indptr[num_pred] + np.arange(1, num_gt + 1)  # -> sink
        indptr[source + 1] = indptr[source] + num_pred  # source -> predicted
        indptr[sink + 1] = indptr[source + 1]
        indices = np.concatenate([num_pred + gt[linked], np.full(num_gt, sink),
                                  np.arange(num_pred)]).astype(np.int32)
        capacity = np.ones(indices.size, dtype=np.int32)
        graph = csr_matrix((capacity, indices, indptr), shape=(sink + 1, sink + 1))
        return int(maximum_flow(graph, source, sink, method='dinic').flow_value)
