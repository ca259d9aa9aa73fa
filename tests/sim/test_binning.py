"""The reduction's binning kernels against their NumPy definitions: bins from `np.searchsorted`
(ties with cuts, atoms, infinities, NaN, every batch boundary), per-bin sums from `np.bincount`
bit for bit, and the rows a pass keeps from a boolean mask."""

from __future__ import annotations

import numpy as np
import pytest

from sim.risk.binning import BATCH, add_to_bins, bins_of, rows_in_bins
from sim.risk.summary import cut_points, references


def numpy_bins(cuts: np.ndarray, x: np.ndarray) -> np.ndarray:
    """2 i + 1 where x equals cut i, else 2 i with cut i the first at or above x (NaN last)."""
    i = np.searchsorted(cuts, x, side="left")
    return 2 * i + ((cuts[np.minimum(i, cuts.size - 1)] == x) & (i < cuts.size))


def sample(n: int, seed: int) -> np.ndarray:
    """Losses with an atom at 0, ties, infinite values and a NaN."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.lognormal(size=n), 2)
    x[rng.random(n) < 0.3] = 0.0
    x[rng.random(n) < 0.01] = np.inf
    if n > 3:
        x[3] = np.nan
    return x


@pytest.mark.parametrize("n", [0, 1, BATCH - 1, BATCH, BATCH + 1, 5 * BATCH + 7, 40_000])
def test_bins_are_numpys_searchsorted(n):
    x = sample(n, n)
    for cuts in (cut_points(sample(20_000, 1)), np.array([-np.inf, 0.0, np.inf]), cut_points(x[:500])):
        np.testing.assert_array_equal(bins_of(cuts, x), numpy_bins(cuts, x))


@pytest.mark.parametrize("fields", [1, 5])
def test_bin_sums_are_bincounts_to_the_bit(fields):
    x = sample(30_000, 2)
    w = np.random.default_rng(3).exponential(size=x.size)
    cuts = cut_points(x[:16_384])
    refs = references(cuts)
    count, sums = np.zeros(2 * cuts.size + 1, np.int64), np.zeros((fields, 2 * cuts.size + 1))
    add_to_bins(cuts, refs, x, w, count, sums)
    b = numpy_bins(cuts, x)
    np.testing.assert_array_equal(count, np.bincount(b, minlength=count.size))
    with np.errstate(invalid="ignore"):
        d = np.where(b % 2 == 1, 0.0, x - refs[b])
    w2 = w * w
    for f, v in enumerate((w, w2, w * d, w2 * d, w2 * d * d)[:fields]):
        np.testing.assert_array_equal(sums[f], np.bincount(b, weights=v, minlength=count.size))


def test_the_rows_kept_are_those_of_the_wanted_bins_in_order():
    x = sample(10_000, 4)
    cuts = cut_points(x)
    wanted = np.zeros(2 * cuts.size + 1, np.bool_)
    wanted[[0, 2, 40, 41, 2 * cuts.size]] = True
    rows, bins = rows_in_bins(cuts, wanted, x)
    expected = np.flatnonzero(wanted[numpy_bins(cuts, x)])
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_array_equal(bins, numpy_bins(cuts, x)[expected])
    assert 3 in rows  # the NaN, in the bin past the last cut
