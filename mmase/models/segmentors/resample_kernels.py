"""Compiled (numba) separable resampling of one image's head output, float32, one core.

An *axis map* ``(lo, weights)`` gives each output row (or column) ``i`` the source window
``lo[i] .. lo[i] + T - 1`` (int64 ``(n,)``, every window inside the source) and its float32
weights ``(n, T)`` (non-negative, summing to 1): one bilinear resize has ``T <= 2``, two composed
ones (:func:`.output_restore.compose`) ``T <= 4`` when the first upsamples. The value at the
output pixel ``(y, x)`` is ``sum_a rw[y, a] * sum_b cw[x, b] * src[c, rlo[y] + a, clo[x] + b]``
(columns blended first), the same float32 expression in every kernel, so the labels of both
argmax kernels are the argmax of :func:`resample_values`'s output: :func:`resample_argmax` prunes
classes exactly (for outputs larger than the source: many output pixels per source window),
:func:`resample_argmax_dense` computes every class (for smaller outputs; the tests' reference).
"""
import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def dense_taps(index, weight, in_size):
    """Taps ``index`` int64 / ``weight`` float32 (n, K) of each output -> ``(lo, weights)``: the
    narrowest common window width ``T`` over the taps of positive weight, each window moved
    inside ``[0, in_size)``, taps of one source pixel summed (in tap order)."""
    n, num = index.shape
    lo = np.empty(n, np.int64)
    hi = np.empty(n, np.int64)
    taps = 1
    for i in range(n):
        low, high = in_size, -1
        for t in range(num):
            if weight[i, t] > 0:
                low = min(low, index[i, t])
                high = max(high, index[i, t])
        if high < 0:  # no positive weight (cannot happen for a resize): its first tap
            low = high = index[i, 0]
        lo[i], hi[i] = low, high
        taps = max(taps, high - low + 1)
    dense = np.zeros((n, taps), np.float32)
    for i in range(n):
        lo[i] = min(lo[i], in_size - taps)
        for t in range(num):
            if weight[i, t] > 0:
                dense[i, index[i, t] - lo[i]] += weight[i, t]
    return lo, dense


@numba.njit(cache=True, nogil=True)
def _blend_columns(plane, top, clo, cw, cols):
    """``cols[j, x]`` = the columns of source row ``top + j`` of ``plane`` (h, w) blended for
    output column ``x`` (a gather, at the source's height)."""
    width, taps_c = cw.shape
    for j in range(cols.shape[0]):
        line = plane[top + j]
        for x in range(width):
            k = clo[x]
            acc = np.float32(0)
            for b in range(taps_c):
                acc += cw[x, b] * line[k + b]
            cols[j, x] = acc


@numba.njit(cache=True, nogil=True)
def _blend_rows(cols, top, rlo, rw, y, row):
    """``row`` (W,) = output row ``y`` from the column-blended rows ``cols`` (vectorised)."""
    row[:] = 0
    for a in range(rw.shape[1]):
        weight = rw[y, a]
        blended = cols[rlo[y] - top + a]
        for x in range(row.size):
            row[x] += weight * blended[x]


@numba.njit(cache=True, nogil=True)
def resample_values(src, rlo, rw, clo, cw, out):
    """``src`` (C, h, w) float32 -> ``out`` (C, H, W): every channel's resampled values, per
    channel columns first (on the source rows the output reads), then rows."""
    top = rlo.min()
    cols = np.empty((rlo.max() + rw.shape[1] - top, cw.shape[0]), np.float32)
    for c in range(src.shape[0]):
        _blend_columns(src[c], top, clo, cw, cols)
        for y in range(rw.shape[0]):
            _blend_rows(cols, top, rlo, rw, y, out[c, y])


@numba.njit(cache=True, nogil=True)
def resample_argmax_dense(src, rlo, rw, clo, cw, labels):
    """``src`` (C, h, w) float32 -> ``labels`` (H, W): ``argmax(resample_values(...))`` (the first
    class on ties) with every class's value at every pixel, one class at a time and a running
    maximum (H, W): for outputs smaller than the source, where pruning does not pay, and the
    reference of :func:`resample_argmax`."""
    height, width = labels.shape
    top = rlo.min()
    cols = np.empty((rlo.max() + rw.shape[1] - top, width), np.float32)
    best = np.empty((height, width), np.float32)
    row = np.empty(width, np.float32)
    for c in range(src.shape[0]):
        _blend_columns(src[c], top, clo, cw, cols)
        for y in range(height):
            _blend_rows(cols, top, rlo, rw, y, row)
            high, label = best[y], labels[y]
            if c == 0:
                high[:] = row
                label[:] = 0
                continue
            for x in range(width):  # branch-free: strictly greater, the first class on ties
                better = row[x] > high[x]
                high[x] = row[x] if better else high[x]
                label[x] = c if better else label[x]


@numba.njit(cache=True, nogil=True, fastmath=True)
def _window_bounds(src, taps_r, taps_c, upper):
    """Per class, the max of ``src`` over every ``taps_r x taps_c`` window (origin ``(j, k)``) ->
    ``upper`` (C, h - taps_r + 1, w - taps_c + 1); returns the max over classes of the window
    minimum (same shape) and the largest ``|src|``. Min and max are exact in any order, hence
    ``fastmath``; every loop runs element-wise along contiguous rows, 3 taps unrolled (they
    vectorise; a scalar reduction would not, so the largest ``|src|`` is kept per column)."""
    num, h, w = src.shape
    hh, ww = h - taps_r + 1, w - taps_c + 1
    lower = np.full((hh, ww), -np.inf, np.float32)
    row_min = np.empty((h, ww), np.float32)
    row_max = np.empty((h, ww), np.float32)
    win_min = np.empty(ww, np.float32)
    largest = np.zeros(ww, np.float32)
    for c in range(num):
        for j in range(h):  # along rows: the min / max of taps_c neighbours
            line, rmin, rmax = src[c, j], row_min[j], row_max[j]
            if taps_c == 3:
                for k in range(ww):
                    a, b, d = line[k], line[k + 1], line[k + 2]
                    rmin[k] = min(min(a, b), d)
                    rmax[k] = max(max(a, b), d)
            else:
                for k in range(ww):
                    rmin[k] = line[k]
                    rmax[k] = line[k]
                for t in range(1, taps_c):
                    for k in range(ww):
                        rmin[k] = min(rmin[k], line[k + t])
                        rmax[k] = max(rmax[k], line[k + t])
        for j in range(hh):  # then across taps_r rows
            up, low = upper[c, j], lower[j]
            if taps_r == 3:
                a0, a1, a2 = row_min[j], row_min[j + 1], row_min[j + 2]
                b0, b1, b2 = row_max[j], row_max[j + 1], row_max[j + 2]
                for k in range(ww):
                    least = min(min(a0[k], a1[k]), a2[k])
                    most = max(max(b0[k], b1[k]), b2[k])
                    up[k] = most
                    low[k] = max(low[k], least)
                    largest[k] = max(largest[k], max(most, -least))
            else:
                for k in range(ww):
                    up[k] = row_max[j, k]
                    win_min[k] = row_min[j, k]
                for t in range(1, taps_r):
                    a, b = row_min[j + t], row_max[j + t]
                    for k in range(ww):
                        win_min[k] = min(win_min[k], a[k])
                        up[k] = max(up[k], b[k])
                for k in range(ww):
                    low[k] = max(low[k], win_min[k])
                    largest[k] = max(largest[k], max(up[k], -win_min[k]))
    return lower, largest.max()


@numba.njit(cache=True, nogil=True, fastmath=True)
def _candidates(upper, floor, count, first, mask):
    """Per window: ``count`` of the classes whose ``upper`` reaches ``floor``, the ``first`` of
    them and all of them as bits (``mask`` (ceil(C / 64), hh, ww) int64, class ``c`` at bit
    ``c % 64`` of word ``c // 64``); vectorised over windows, classes from the last."""
    num, hh, ww = upper.shape
    count[:] = 0
    first[:] = 0
    mask[:] = 0
    for c in range(num - 1, -1, -1):
        bit = np.int64(1) << np.int64(c % 64)
        for j in range(hh):
            up, low, n, f, m = upper[c, j], floor[j], count[j], first[j], mask[c // 64, j]
            for k in range(ww):
                hit = up[k] >= low[k]
                n[k] += hit
                f[k] = c if hit else f[k]
                m[k] |= bit if hit else np.int64(0)


@numba.njit(cache=True, nogil=True)
def _run_end(lo, start):
    """End (exclusive) of the run of equal window starts ``lo[start] == lo[start + 1] == ...``:
    the output rows (columns) that read the same source window."""
    end = start + 1
    while end < lo.size and lo[end] == lo[start]:
        end += 1
    return end


@numba.njit(cache=True, nogil=True)
def resample_argmax(src, rlo, rw, clo, cw, labels):
    """``src`` (C, h, w) float32 -> ``labels`` (H, W): the first class of largest resampled value,
    as ``argmax(resample_values(...))``, without the (C, H, W) values.

    Pruning (exact): every value is a convex combination of its window's source values, so a class
    whose window maximum is below the largest window minimum over classes, less a margin (8
    times the rounding error of a blend, relative to the largest ``|src|``), cannot win there.
    Windows are ``T_r x T_c`` (each axis' widest: a valid, looser bound for narrower supports),
    their bounds computed for all classes at once (vectorised). Output pixels are visited in
    blocks of one window (runs of equal ``rlo`` and ``clo``): a block with one candidate is
    filled; in the others each column blends its candidates' columns, prunes them again on those
    blended values (the rows blend them convexly), fills the column if one is left, else
    computes the survivors' values in class order (the first wins a tie). The labels are those
    of :func:`resample_argmax_dense` (tested)."""
    num = src.shape[0]
    height, taps_r = rw.shape
    width, taps_c = cw.shape
    upper = np.empty((num, src.shape[1] - taps_r + 1, src.shape[2] - taps_c + 1), np.float32)
    lower, largest = _window_bounds(src, taps_r, taps_c, upper)
    eps = np.float32(np.finfo(np.float32).eps)
    margin = np.float32(8 * (taps_r + taps_c + 4)) * eps * largest
    floor = lower - margin
    count = np.empty(lower.shape, np.int32)
    first = np.empty(lower.shape, np.int32)
    mask = np.empty(((num + 63) // 64, ) + lower.shape, np.int64)
    _candidates(upper, floor, count, first, mask)
    candidates = np.empty(num, np.int64)
    alive = np.empty(num, np.int64)
    line = np.empty((num, taps_r), np.float32)
    y = 0
    while y < height:
        j = rlo[y]
        y_end = _run_end(rlo, y)
        x = 0
        while x < width:
            k = clo[x]
            x_end = _run_end(clo, x)
            if count[j, k] == 1:
                winner = first[j, k]
                for yy in range(y, y_end):
                    for xx in range(x, x_end):
                        labels[yy, xx] = winner
                x = x_end
                continue
            n = 0
            for c in range(first[j, k], num):
                if (mask[c // 64, j, k] >> np.int64(c % 64)) & 1:
                    candidates[n] = c
                    n += 1
            if n == 0:  # NaN in the window: every class, as no pruning
                for c in range(num):
                    candidates[c] = c
                n = num
            for xx in range(x, x_end):
                col_floor = np.float32(-np.inf)
                for i in range(n):  # the columns blended, per candidate
                    c = candidates[i]
                    low = np.float32(np.inf)
                    for a in range(taps_r):
                        acc = np.float32(0)
                        for b in range(taps_c):
                            acc += cw[xx, b] * src[c, j + a, k + b]
                        line[i, a] = acc
                        low = min(low, acc)
                    col_floor = max(col_floor, low)
                col_floor -= margin
                m = 0  # the same pruning on the blended columns (the rows blend them convexly)
                for i in range(n):
                    high = line[i, 0]
                    for a in range(1, taps_r):
                        high = max(high, line[i, a])
                    if high >= col_floor or col_floor != col_floor:
                        alive[m] = i
                        m += 1
                if m == 1:
                    for yy in range(y, y_end):
                        labels[yy, xx] = candidates[alive[0]]
                    continue
                for yy in range(y, y_end):
                    best = np.float32(-np.inf)
                    best_class = candidates[alive[0]]
                    for r in range(m):  # branch-free running argmax, the first on ties
                        i = alive[r]
                        acc = np.float32(0)
                        for a in range(taps_r):
                            acc += rw[yy, a] * line[i, a]
                        better = acc > best
                        best = acc if better else best
                        best_class = candidates[i] if better else best_class
                    labels[yy, xx] = best_class
            x = x_end
        y = y_end
