"""Batched morphological thinning (Guo & Hall, 1989), the operation of ``skimage.morphology.thin``.

The edge metric thins the binarised prediction at 99 thresholds per image (SEISM: MATLAB's
``bwmorph(..., 'thin')``, the same algorithm as ``skimage.morphology.thin``).
``skimage.morphology.thin`` re-evaluates every pixel of the image at every sub-iteration, which
costs seconds per image for the thick blobs that low thresholds produce. Here compiled loops
(numba) give the same result (pixel for pixel, tested against scikit-image): a sub-iteration only
re-evaluates pixels whose 8-neighbourhood changed since they were last examined with the same
deletion table, and for the nested maps of one image (:func:`thin_nested`, the maps
``levels > cut``) each map's codes and boundary are derived from the next larger map's by
removing the pixels between them, so a map costs its own peeling, not a rebuild; each skeleton
comes back as a list of pixel indices.

Algorithm (Guo & Hall, "Parallel thinning with two-subiteration algorithms", CACM 32(3), 1989,
algorithm A1): the 8 neighbours of a pixel ``p`` are ``x1..x8`` counter-clockwise from east (E, NE,
N, NW, W, SW, S, SE). ``p`` is deleted in a sub-iteration when

- G1: ``C(p) = sum_i [not x(2i-1) and (x(2i) or x(2i+1))] == 1`` (i = 1..4, x9 = x1);
- G2: ``2 <= min(N1(p), N2(p)) <= 3`` with ``N1 = sum_k x(2k-1) or x(2k)`` and
  ``N2 = sum_k x(2k) or x(2k+1)``;
- G3 (first sub-iteration): ``(x2 or x3 or not x8) and x1`` is false;
  G3' (second sub-iteration): ``(x6 or x7 or not x4) and x5`` is false.

All deletions of a sub-iteration are decided on the map as it was at its start; iterations (pairs of
sub-iterations) repeat until one deletes nothing.
"""
from typing import Tuple

import numba
import numpy as np

# Bit k of the neighbourhood code is neighbour x(k+1): offsets (row, col) counter-clockwise from
# east.
_NEIGHBOUR_OFFSETS: Tuple[Tuple[int, int], ...] = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1),
                                                   (1, -1), (1, 0), (1, 1))


def _deletion_tables() -> Tuple[np.ndarray, np.ndarray]:
    """Return the two 256-entry deletion tables (first and second sub-iteration) of Guo-Hall A1."""
    first = np.zeros(256, dtype=bool)
    second = np.zeros(256, dtype=bool)
    for code in range(256):
        x = [bool(code >> k & 1) for k in range(8)]  # x[0] = x1 ... x[7] = x8
        x.append(x[0])  # x9 = x1
        connectivity = sum((not x[2 * i]) and (x[2 * i + 1] or x[2 * i + 2]) for i in range(4))
        n1 = sum(x[2 * k] or x[2 * k + 1] for k in range(4))
        n2 = sum(x[2 * k + 1] or x[2 * k + 2] for k in range(4))
        removable = connectivity == 1 and 2 <= min(n1, n2) <= 3
        first[code] = removable and not ((x[1] or x[2] or not x[7]) and x[0])
        second[code] = removable and not ((x[5] or x[6] or not x[3]) and x[4])
    return first, second


_DELETE_FIRST, _DELETE_SECOND = _deletion_tables()

#: Masks (of a uint16 pixel state, below) that clear, in the code of the neighbour at offset k,
#: the bit pointing back at p.
_CLEAR16 = np.array([0xFFFF ^ (1 << _NEIGHBOUR_OFFSETS.index((-dr, -dc)))
                     for dr, dc in _NEIGHBOUR_OFFSETS], dtype=np.uint16)
#: The two tables indexed by ``state & 511``: an unset pixel (bit 8 clear) is never deleted.
_TABLES = np.zeros((2, 512), np.uint8)
_TABLES[0, 256:] = _DELETE_FIRST
_TABLES[1, 256:] = _DELETE_SECOND


# Per-pixel state of the padded image (uint16): bits 0-7 the neighbourhood code, bit 8 set,
# bit 9 / bit 10 "code changed since the first / second table last examined it" (pending).
_SET = 256
_PENDING = 0x600


@numba.njit(cache=True, nogil=True)
def _base_first(order, n, offsets, base, boundary, in_boundary):
    """Write map ``order[:n]`` with its codes into ``base``; list its boundary pixels (code not
    255: interior pixels are deleted by neither table). Returns their number."""
    for i in range(n):
        base[order[i]] = _SET
    num = 0
    for i in range(n):  # (branch-free: the decisions are close to random)
        p = order[i]
        code = 0
        for j in range(8):
            code |= (base[p + offsets[j]] >> 8 & 1) << j
        base[p] = _SET | code
        on_boundary = code != 255
        boundary[num] = p
        in_boundary[p] = on_boundary
        num += on_boundary
    return num


@numba.njit(cache=True, nogil=True)
def _base_shrink(order, n, m, offsets, clear, base, boundary, num, in_boundary):
    """Remove pixels ``order[n:m]`` from the map in ``base`` (the next, smaller nested map),
    updating its neighbours' codes and the boundary list. Returns the list's new length."""
    for i in range(n, m):
        base[order[i]] = 0
    for i in range(n, m):
        p = order[i]
        for j in range(8):
            q = p + offsets[j]
            v = base[q]
            base[q] = v & clear[j]
            add = ((v >> 8) & 1) & (in_boundary[q] ^ 1)
            boundary[num] = q
            num += add
            in_boundary[q] |= add
    kept = 0
    for i in range(num):  # drop the removed pixels from the list
        q = boundary[i]
        boundary[kept] = q
        keep = base[q] >> 8
        in_boundary[q] = keep
        kept += keep
    return kept


@numba.njit(cache=True, nogil=True)
def _peel(state, lists, num, offsets, clear, tables, dels):
    """Thin the map in ``state`` in place; ``lists[0, :num]`` holds its boundary pixels.

    Each table examines only the set pixels whose code changed since it last ran (``lists[t]``,
    deduplicated by the pending bits); all deletions of a sub-iteration are decided before any
    is applied.
    """
    for i in range(num):
        state[lists[0, i]] |= _PENDING
    lists[1, :num] = lists[0, :num]
    first, second = lists[0], lists[1]
    num_first = num_second = num
    deleted_before = 0
    step = 0
    while True:
        t = step & 1
        table = tables[t]
        keep_bits = np.uint16(0xFFFF ^ (512 << t))  # clears this table's pending bit
        num_del = 0
        cand = first if t == 0 else second
        for i in range(num_first if t == 0 else num_second):
            p = cand[i]
            v = state[p]
            state[p] = v & keep_bits
            dels[num_del] = p
            num_del += table[v & 511]  # (an unset pixel indexes the table's zero half)
        if t == 0:
            num_first = 0
        else:
            num_second = 0
        for i in range(num_del):
            p = dels[i]
            state[p] &= np.uint16(0xFFFF ^ _SET)
            for j in range(8):
                q = p + offsets[j]
                v = state[q]
                if v & _SET:  # a set neighbour: its code changed, both tables look again
                    first[num_first] = q
                    num_first += ((v >> 9) & 1) ^ 1
                    second[num_second] = q
                    num_second += ((v >> 10) & 1) ^ 1
                    state[q] = (v & clear[j]) | _PENDING
        if t == 1 and num_del == 0 and deleted_before == 0:
            break  # a whole iteration (both sub-iterations) deleted nothing
        deleted_before = num_del
        step += 1


@numba.njit(cache=True, nogil=True)
def _collect(order, n, state, out, num_out):
    """Append the still-set pixels of ``order[:n]`` to ``out``; returns the new count."""
    for i in range(n):
        p = order[i]
        out[num_out] = p
        num_out += (state[p] >> 8) & 1
    return num_out


def thin_nested(levels: np.ndarray, cuts: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Thin the nested binary maps ``levels > cuts[k]`` of one image.

    The maps are visited from the largest to the smallest: the next map's codes and boundary
    come from the previous one by removing the pixels between them, and each map is thinned
    on a copy of that state.

    Args:
        levels (np.ndarray): Integer ``(H, W)``, e.g. the number of thresholds each pixel passes.
        cuts (np.ndarray): Integer ``(N,)``; map k is ``levels > cuts[k]``.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``indptr`` int64 ``(N + 1,)`` and ``indices`` int64: the
        kept pixels of map k are ``indices[indptr[k]:indptr[k + 1]]``, flat indices
        ``y * W + x`` (by decreasing level, then raster order).
    """
    levels = np.asarray(levels)
    cuts = np.asarray(cuts, dtype=np.int64).reshape(-1)
    if levels.ndim != 2:
        raise ValueError(f'thin_nested: levels must have shape (H, W), got {levels.shape}')
    height, width = levels.shape
    row = width + 2
    # pixels by level, highest first: map k is the first sizes[k] of them
    flat_levels = levels.reshape(-1)
    small = flat_levels.size == 0 or (flat_levels.min() >= 0 and flat_levels.max() < 2**15)
    # (a stable sort of 16-bit keys is numpy's radix sort)
    order = np.argsort(-flat_levels.astype(np.int16 if small else np.int64), kind='stable')
    sorted_levels = flat_levels[order].astype(np.int64)
    sizes = np.searchsorted(-sorted_levels, -cuts, side='left').astype(np.int64)
    ys, xs = np.divmod(order, width)
    padded_order = ((ys + 1) * row + (xs + 1)).astype(np.int32)  # (the image has < 2**31 px)
    base = np.zeros((height + 2) * row, np.uint16)
    state = np.empty_like(base)
    in_boundary = np.zeros(base.size, np.uint8)
    boundary = np.empty(base.size + 1, np.int32)  # (+1: a branch-free append writes one past)
    lists = np.empty((2, base.size + 1), np.int32)
    dels = np.empty(base.size, np.int32)
    offsets = np.array([dr * row + dc for dr, dc in _NEIGHBOUR_OFFSETS], np.int64)
    out = np.empty(int(sizes.sum()) + 1, np.int32)
    counts = np.zeros(cuts.size, np.int64)
    starts = np.zeros(cuts.size, np.int64)
    num_out = previous = num_boundary = 0
    for rank, k in enumerate(np.argsort(-sizes, kind='stable')):  # largest map first
        if rank == 0:
            num_boundary = _base_first(padded_order, sizes[k], offsets, base, boundary,
                                       in_boundary)
        elif sizes[k] < previous:
            num_boundary = _base_shrink(padded_order, sizes[k], previous, offsets, _CLEAR16,
                                        base, boundary, num_boundary, in_boundary)
        previous = sizes[k]
        state[:] = base
        lists[0, :num_boundary] = boundary[:num_boundary]
        _peel(state, lists, num_boundary, offsets, _CLEAR16, _TABLES, dels)
        starts[k] = num_out
        num_out = _collect(padded_order, sizes[k], state, out, num_out)
        counts[k] = num_out - starts[k]
    indptr = np.zeros(cuts.size + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    if np.array_equal(starts, indptr[:-1]):  # maps visited in the order of cuts
        kept = out[:num_out]
    else:
        kept = out[np.concatenate([np.arange(s, s + c) for s, c in zip(starts, counts)])]
    kept = kept.astype(np.int64)
    return indptr, (kept // row - 1) * width + (kept % row - 1)


def thin_stack(masks: np.ndarray) -> np.ndarray:
    """Thin each binary map of a stack to one-pixel-wide curves.

    Equivalent to ``np.stack([skimage.morphology.thin(m) for m in masks])``.

    Args:
        masks (np.ndarray): Binary maps, shape ``(N, H, W)`` or ``(H, W)``, any dtype (non-zero =
            set).

    Returns:
        np.ndarray: bool array of the input's shape, the thinned maps.
    """
    masks = np.asarray(masks)
    if masks.ndim == 2:
        return thin_stack(masks[None])[0]
    if masks.ndim != 3:
        raise ValueError(f'thin_stack: expected maps of shape (N, H, W) or (H, W), got '
                         f'{masks.shape}')
    out = np.zeros(masks.shape, dtype=bool)
    for k, mask in enumerate(masks):  # one map: the nested maps of levels in {0, 1}
        indptr, indices = thin_nested((mask != 0).astype(np.int8), np.zeros(1, np.int64))
        out[k].reshape(-1)[indices] = True
    return out
