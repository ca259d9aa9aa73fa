"""Kernels of the per-bin reduction (`sim.risk.summary`): the bin of each value
of a column (binary searches in batches), the first pass's per-bin sums and
the rows a further pass keeps.

Bins of a column with cut points c_0 < ... < c_{m-1} (c_0 = -inf, c_{m-1} =
inf): a value equal to c_i is in bin 2 i + 1, any other in bin 2 i with c_i
the first cut above it (NumPy's `searchsorted(c, x, side="left")`; NaN,
which sorts last, in bin 2 m). Sums are added in row order, as `np.bincount`
adds its weights: a chunk's sums into zeroed arrays are those of the array
form to the bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Values searched together: the binary searches take the same steps (the halves depend only on the
# number of cuts), so a batch's loads are independent and overlap; the search is bound by the
# latency of those loads, and batches of 32 ran ~3x faster than one search at a time (39 against
# 110 ns a value over 8 194 cuts).
BATCH = 32


@njit(cache=True)
def bins_of(cuts: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The bin of each value of `x` (module doc), by branch-free binary searches in batches."""
    out = np.empty(x.size, np.int64)
    size = cuts.size
    base = np.empty(BATCH, np.int64)
    for start in range(0, x.size, BATCH):
        m = min(BATCH, x.size - start)
        base[:m] = 0
        n = size
        while n > 1:  # base: the last cut below each value, or 0
            half = n >> 1
            for j in range(m):
                b = base[j]
                base[j] = b + half * np.int64(cuts[b + half] < x[start + j])
            n -= half
        for j in range(m):
            v = x[start + j]
            first = base[j] + np.int64(cuts[base[j]] < v)  # the first cut >= v
            if v != v:
                first = size
            out[start + j] = 2 * first + (1 if first < size and cuts[first] == v else 0)
    return out


@njit(cache=True)
def add_to_bins(cuts: np.ndarray, refs: np.ndarray, x: np.ndarray, w: np.ndarray, count: np.ndarray,
                sums: np.ndarray) -> None:
    """Add a column's values `x` with weights `w` to their bins: `count[b]` and the sums of w, w^2,
    w d, w^2 d, w^2 d^2 in the rows of `sums` (only w where it has one row), d = x - refs[b] (0 in a
    cut's bin)."""
    tails = sums.shape[0] > 1
    bins = bins_of(cuts, x)
    for i in range(x.size):
        v, wi, b = x[i], w[i], bins[i]
        count[b] += 1
        sums[0, b] += wi
        if tails:
            w2 = wi * wi
            d = 0.0 if b % 2 == 1 else v - refs[b]
            sums[1, b] += w2
            sums[2, b] += wi * d
            sums[3, b] += w2 * d
            sums[4, b] += w2 * d * d


@njit(cache=True)
def rows_in_bins(cuts: np.ndarray, wanted: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of `x` whose bin is flagged in `wanted`, in row order, and their bins."""
    bins = bins_of(cuts, x)
    rows = np.empty(x.size, np.int64)
    k = 0
    for i in range(x.size):
        if wanted[bins[i]]:
            rows[k] = i
            k += 1
    return rows[:k], bins[rows[:k]]
