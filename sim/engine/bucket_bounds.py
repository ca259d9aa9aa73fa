"""Bounds a sampling bucket needs on a path, and their table over a grid of the
common factor (Gaussian copula).

A bucket's loans have lifetime thresholds t_lo <= t_i <= t_hi (plan order).
On a path with common factor `common` (a Z + b S_k) and Student-t scale
sqrt_w (1 for the Gaussian copula) loan i defaults with conditional PD
p_i = Phi(b_i), b_i = (sqrt_w t_i - common) / c. The sparse sampler needs:

- p_bar >= every p_i of the bucket: candidates are Bernoulli(p_bar), each kept
  with probability p_i / p_bar (exact for any such p_bar);
- rate = -1 / log(1 - p_bar): the failures before the next candidate are
  floor(E rate), E ~ Exp(1);
- squeezes, in the loan's position s_i = (t_i - t_lo) / (t_hi - t_lo): as
  log Phi is concave, p_i lies above the chord p_lo (p_top / p_lo)^s_i and
  below the tangent p_bar exp(-(1 - s_i) span), span = (b_hi - b_lo)
  phi(b_hi) / p_bar; with exp(y) >= 1 + y + y^2/2 (y >= 0) and
  exp(-x) <= 1 - x + x^2/2 (x >= 0) a candidate below the one polynomial is
  kept and one above the other dropped without Phi^-1. Margins of 1e-9 keep
  a squeeze from ever deciding differently from the exact test (ndtr and
  ndtri round at ~1e-15 relative).

As p_i falls as `common` rises, bounds that hold over a whole cell
[common_lo, common_hi) are p_bar and the tangent at common_lo and the chord
at common_hi. For the Gaussian copula the plan tabulates them on a grid of
cells of width GRID_STEP over +-5 standard deviations of the common factor,
so a path reads one row per bucket instead of evaluating Phi, exp and log;
the cost is a few more candidates than the path's own highest PD would
give, all thinned exactly (0.4 % more on the W1 benchmark book: 97.6
instead of 97.2 a path).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from sim.engine.rng import ndtr

# Fields of a row of the table: p_bar, rate, lower squeeze (scale, chord),
# upper squeeze (scale, span).
ROW = 6
GRID_STEP = 1.0 / 256.0  # a power of two: cell edges are exact
# The grid spans +-GRID_SIGMAS standard deviations of the common factor; a
# path beyond (probability 6e-7) computes its bounds itself.
GRID_SIGMAS = 5.0
_MARGIN = 1e-9
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def grid_cells(common_sd: float) -> int:
    """Cells of a grid centred on 0 that spans GRID_SIGMAS standard deviations
    of a common factor with standard deviation `common_sd` (an even count)."""
    return 2 * (math.ceil(GRID_SIGMAS * common_sd / GRID_STEP) + 1)


@njit(cache=True)
def cell_low_edge(cell: int, n_cells: int) -> float:
    """Lowest common value of a cell of the grid of n_cells cells."""
    return (cell - (n_cells >> 1)) * GRID_STEP


@njit(cache=True)
def grid_cell(common: float, n_cells: int) -> int:
    """Index of the cell of the grid of n_cells cells holding `common`, or -1
    outside the grid."""
    x = common * (1.0 / GRID_STEP) + (n_cells >> 1)
    if not (0.0 <= x < n_cells):
        return -1
    cell = int(x)
    # the sum can round across an edge (the edges themselves are exact): put
    # common where the cell's bounds hold
    if cell_low_edge(cell, n_cells) > common:
        cell -= 1
    elif cell + 1 < n_cells and cell_low_edge(cell + 1, n_cells) <= common:
        cell += 1
    return cell if cell >= 0 else -1


@njit(cache=True)
def candidate_rate(t_hi: float, common_lo: float, c: float, sqrt_w: float):
    """(p_bar, rate): p_bar = Phi((sqrt_w t_hi - common_lo) / c), the highest
    conditional PD of the bucket for any common >= common_lo, and
    rate = -1 / log(1 - p_bar) (0 when p_bar = 1: every loan is a candidate;
    also 0 when p_bar underflows to 0, a bucket with no candidate)."""
    p_bar = ndtr((sqrt_w * t_hi - common_lo) / c)
    if not p_bar > 0.0:  # Phi underflowed: no candidate, and no rate to divide by
        return 0.0, 0.0
    return p_bar, -1.0 / math.log1p(-p_bar)


@njit(cache=True)
def squeezes(t_lo: float, t_hi: float, common_lo: float, common_hi: float, c: float, sqrt_w: float,
             p_bar: float):
    """(lower, chord, upper, span), valid for every common in [common_lo,
    common_hi], given p_bar from `candidate_rate` at common_lo. Not usable
    (the lower squeeze never keeps, the upper never drops) when the bucket
    has one threshold, its lowest PD underflows, or c < 1e-3, where rounding
    in b_i (~1e-16 / c) would approach the margins."""
    p_lo = ndtr((sqrt_w * t_lo - common_hi) / c)
    if not (p_lo > 1e-290 and t_hi > t_lo and c >= 1e-3):
        return 0.0, 0.0, np.inf, 0.0
    p_top = ndtr((sqrt_w * t_hi - common_hi) / c)
    b_hi = (sqrt_w * t_hi - common_lo) / c
    span = sqrt_w * (t_hi - t_lo) / c * math.exp(-0.5 * b_hi * b_hi) / (_SQRT_2PI * p_bar)
    return p_lo * (1.0 - _MARGIN), math.log(p_top / p_lo), p_bar * (1.0 + _MARGIN), span


@njit(cache=True, inline="always")
def squeeze_decision(v: float, s: float, lower: float, chord: float, upper: float, span: float):
    """(keep, undecided) for a candidate with acceptance value v = u p_bar at
    bucket position s: keep when the lower squeeze keeps it, undecided when
    neither squeeze decides (the exact test must); neither means drop.
    Without branches, so `squeeze_block` vectorises; a NaN bound decides
    nothing and leaves the candidate to the exact test."""
    y = s * chord
    low = lower * (1.0 + y + 0.5 * y * y)
    x = (1.0 - s) * span
    high = upper * (1.0 - x + 0.5 * x * x)
    keep = v < low
    return keep, not (keep | (v > high))


@njit(cache=True, inline="always")
def squeeze_block(pos: np.ndarray, accept: np.ndarray, lower: float, chord: float, upper: float, span: float,
                  keep: np.ndarray, undecided: np.ndarray) -> None:
    """`squeeze_decision` for every candidate k of a batch of one bucket (at
    position pos[k], acceptance value accept[k]) into keep[k], undecided[k]:
    a pass without branches, so it vectorises."""
    for k in range(pos.size):
        keep[k], undecided[k] = squeeze_decision(accept[k], pos[k], lower, chord, upper, span)


@njit(cache=True)
def _tabulate(bucket_ptr, threshold, bucket_threshold, c, table):
    n_cells = table.shape[0]
    for cell in range(n_cells):
        lo = cell_low_edge(cell, n_cells)
        for k in range(table.shape[1]):
            p_bar, rate = candidate_rate(bucket_threshold[k], lo, c, 1.0)
            lower, chord, upper, span = squeezes(threshold[bucket_ptr[k]], bucket_threshold[k], lo,
                                                 lo + GRID_STEP, c, 1.0, p_bar)
            table[cell, k, :] = (p_bar, rate, lower, chord, upper, span)


def bounds_table(bucket_ptr: np.ndarray, threshold: np.ndarray, bucket_threshold: np.ndarray,
                 c: float, common_sd: float | None) -> np.ndarray:
    """(cells x buckets x ROW) bounds of a Gaussian-copula plan (thresholds in
    plan order) whose common factors have standard deviation `common_sd`;
    empty (0 cells) when `common_sd` is None, for the Student-t copula, whose
    bounds also depend on the path's sqrt_w and are computed on the path."""
    n_cells = grid_cells(common_sd) if common_sd is not None and bucket_threshold.size else 0
    table = np.empty((n_cells, bucket_threshold.size, ROW))
    if n_cells:
        _tabulate(bucket_ptr, threshold, bucket_threshold, float(c), table)
    return table


def bucket_positions(bucket_ptr: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Position s_i in [0, 1] of each plan loan within its bucket's threshold
    range (0 for a bucket of one threshold and for loans outside buckets)."""
    s = np.zeros(threshold.size)
    for k in range(bucket_ptr.size - 1):
        lo, hi = bucket_ptr[k], bucket_ptr[k + 1]
        width = threshold[hi - 1] - threshold[lo]
        if width > 0.0:
            s[lo:hi] = (threshold[lo:hi] - threshold[lo]) / width
    return s
