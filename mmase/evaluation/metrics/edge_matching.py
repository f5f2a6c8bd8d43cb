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

How the maximum matching is found (exact; numpy and one compiled loop, numba):

1. only *matchable* predicted pixels take part, those within ``max_distance`` of a ground-truth
   pixel (the others cannot be paired; on noisy maps this drops ~90 % of them);
2. the pairs are listed once per image, for the union of the matchable pixels of all maps, with
   one look-up per integer offset of the disk (the offsets ``match.cc`` scans);
3. the maps are matched in turn (e.g. thresholds in increasing order, maps shrinking), each
   starting from the previous map's matching less the pairs of pixels it no longer has, which
   Hopcroft-Karp phases (breadth-first layers, then vertex-disjoint shortest augmenting paths,
   dead ends pruned) grow until no augmenting path is left: a maximum matching (Berge), reached
   in a few phases because consecutive maps differ by few pixels.
"""
from typing import Tuple

import cv2
import numba
import numpy as np


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
        self.near = (cv2.dilate(edges.astype(np.uint8), disk.astype(np.uint8)) > 0
                     if self.num_edges else np.zeros_like(edges))

    def count(self, pred: np.ndarray) -> int:
        """Number of pairs of a maximum matching between ``pred`` (bool ``(H, W)``, thinned
        predicted edge pixels) and the ground truth."""
        return int(self.count_stack(np.asarray(pred)[None])[0])

    def count_stack(self, maps: np.ndarray) -> np.ndarray:
        """Maximum-matching sizes of several predicted maps (e.g. one per threshold).

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
        flat = maps.reshape(len(maps), -1)
        indptr = np.zeros(len(maps) + 1, np.int64)
        np.cumsum(flat.sum(1), out=indptr[1:])
        return self.count_lists(indptr, np.nonzero(flat)[1])

    def count_lists(self, indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """Maximum-matching sizes of maps given as pixel lists (as :func:`.thinning.thin_nested`
        returns them).

        Args:
            indptr (np.ndarray): int ``(N + 1,)``; map k's pixels are
                ``indices[indptr[k]:indptr[k + 1]]``.
            indices (np.ndarray): int, flat pixel indices ``y * W + x``, unique within a map.

        Returns:
            np.ndarray: int64 ``(N,)``, each map's number of pairs.
        """
        indptr = np.asarray(indptr, np.int64)
        indices = np.asarray(indices, np.int64)
        size = self.shape[0] * self.shape[1]
        if indices.size and (indices.min() < 0 or indices.max() >= size):
            raise ValueError(f'pixel indices must be in [0, {size}) for maps of shape '
                             f'{self.shape}')
        if self.num_edges == 0 or indices.size == 0:
            return np.zeros(indptr.size - 1, np.int64)
        return _match_maps(indptr, indices, self.near.reshape(-1), self._index, self.shape[1],
                           self._pad, self._row, self._offsets, self.num_edges)


@numba.njit(cache=True, nogil=True)
def _match_maps(indptr, indices, near, gt_index, width, pad, row, offsets, num_edges):
    """Maximum-matching sizes of the maps ``indices[indptr[k]:indptr[k + 1]]``, each map's
    search started from the previous map's matching (see the module docstring)."""
    num_maps = indptr.size - 1
    # union of the matchable pixels of all maps, numbered 0..U-1
    node = np.full(near.size, -1, np.int64)
    pixels = np.empty(indices.size, np.int64)
    num_nodes = 0
    for i in range(indices.size):
        p = indices[i]
        if near[p] and node[p] < 0:
            node[p] = num_nodes
            pixels[num_nodes] = p
            num_nodes += 1
    # pairs of each node: ground-truth node ids within the disk (CSR)
    adj_ptr = np.zeros(num_nodes + 1, np.int64)
    adj = np.empty(num_nodes * offsets.size, np.int64)
    num_pairs = 0
    for u in range(num_nodes):
        y, x = divmod(pixels[u], width)
        centre = (y + pad) * row + x + pad
        for m in range(offsets.size):
            g = gt_index[centre + offsets[m]]
            if g >= 0:
                adj[num_pairs] = g
                num_pairs += 1
        adj_ptr[u + 1] = num_pairs
    match_node = np.full(num_nodes, -1, np.int64)
    match_gt = np.full(num_edges, -1, np.int64)
    in_map = np.full(num_nodes, -1, np.int64)
    dist = np.empty(num_nodes, np.int64)
    edge_at = np.empty(num_nodes, np.int64)
    queue = np.empty(num_nodes, np.int64)
    stack = np.empty(num_nodes + 1, np.int64)
    current = np.empty(num_nodes, np.int64)
    previous = np.empty(num_nodes, np.int64)
    num_previous = 0
    unreached = np.int64(1) << 62
    counts = np.zeros(num_maps, np.int64)
    for k in range(num_maps):
        num_current = 0
        for i in range(indptr[k], indptr[k + 1]):
            u = node[indices[i]]
            if u >= 0:
                in_map[u] = k
                current[num_current] = u
                num_current += 1
        for i in range(num_previous):  # pairs of pixels the map no longer has
            u = previous[i]
            if in_map[u] != k and match_node[u] >= 0:
                match_gt[match_node[u]] = -1
                match_node[u] = -1
        while True:  # Hopcroft-Karp phases
            head = tail = 0
            for i in range(num_current):
                u = current[i]
                if match_node[u] < 0:
                    dist[u] = 0
                    queue[tail] = u
                    tail += 1
                else:
                    dist[u] = unreached
            found = False
            while head < tail:
                u = queue[head]
                head += 1
                for e in range(adj_ptr[u], adj_ptr[u + 1]):
                    w = match_gt[adj[e]]
                    if w < 0:
                        found = True
                    elif dist[w] == unreached:
                        dist[w] = dist[u] + 1
                        queue[tail] = w
                        tail += 1
            if not found:
                break
            for i in range(num_current):
                root = current[i]
                if match_node[root] >= 0:
                    continue
                top = 0
                stack[0] = root
                edge_at[root] = adj_ptr[root]
                while top >= 0:  # depth-first along the layers, iteratively
                    u = stack[top]
                    descended = False
                    while edge_at[u] < adj_ptr[u + 1]:
                        w = match_gt[adj[edge_at[u]]]
                        if w < 0:  # free ground-truth pixel: augment along the stack
                            for s in range(top, -1, -1):
                                x = stack[s]
                                g = adj[edge_at[x]]
                                match_node[x] = g
                                match_gt[g] = x
                            top = -1
                            descended = True
                            break
                        if dist[w] == dist[u] + 1:
                            top += 1
                            stack[top] = w
                            edge_at[w] = adj_ptr[w]
                            descended = True
                            break
                        edge_at[u] += 1
                    if not descended:
                        dist[u] = unreached  # dead end: pruned for this phase
                        top -= 1
                        if top >= 0:
                            edge_at[stack[top]] += 1
        matched = 0
        for i in range(num_current):
            if match_node[current[i]] >= 0:
                matched += 1
        counts[k] = matched
        current, previous = previous, current
        num_previous = num_current
    return counts
