"""The sparse sampler's building blocks against truth: the ziggurat's Exp(1)
draws (layer geometry, then the law of 4 million draws), and the per-bucket
bounds (p_bar above every conditional PD of its cell, squeezes below and
above each loan's PD) checked against scipy's Phi on random buckets."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numba import njit
from scipy import special, stats

from sim.engine import rng
from sim.engine.bucket_bounds import (
    GRID_STEP,
    bounds_table,
    bucket_positions,
    candidate_rate,
    cell_low_edge,
    grid_cell,
    grid_cells,
    squeeze_decision,
    squeezes,
)
from sim.engine.plan import compile_plan
from sim.engine.run import simulate_losses, simulate_paths
from tests.helpers import equal_loans, make_scenario


def test_ziggurat_layers_have_equal_area():
    ke, we, fe = rng._ZIG_KE, rng._ZIG_WE, rng._ZIG_FE
    m = 2.0 ** 53
    x = we * m  # right edge of each layer's rectangle
    area = 3.949659822581572e-3
    # base layer: the strip under exp(-edge) plus the tail beyond the edge
    assert (x[-1] + 1.0) * math.exp(-x[-1]) == pytest.approx(area, rel=1e-12)
    # layer i+1 spans densities fe[i+1] .. fe[i] at width x[i+1]; the top one closes at density 1
    widths = x[2:] * (fe[1:-1] - fe[2:])
    np.testing.assert_allclose(widths, area, rtol=1e-9)
    assert x[1] * (1.0 - fe[1]) == pytest.approx(area, rel=1e-6)
    # a point of layer i is inside its rectangle when below the next layer's edge
    np.testing.assert_allclose(ke[2:].astype(float) / m, x[1:-1] / x[2:], rtol=1e-12)


@njit(cache=True)
def _draws(base, tail, n):
    out = np.empty(n)
    rare = 0
    for i in range(n):
        x, layer, final = rng.exponential_fast(base, i)
        rare += not final
        out[i] = rng.exponential_at(base, tail, i)
    return out, rare


def test_exponential_draws_follow_exp1():
    n = 4_000_000
    key = np.uint64(123456789)
    # stream bases come back to Python as ints: typed int64 below 2**63, so pass them as uint64
    e, rare = _draws(np.uint64(rng.stream_base(key, 3, rng.STREAM_SKIP)),
                     np.uint64(rng.stream_base(key, 3, rng.STREAM_SKIP_TAIL)), n)
    assert e.min() > 0.0
    # probability integral transform: exp(-E) is uniform; chi-square over 2000 cells
    u = np.exp(-e)
    observed = np.bincount(np.minimum((u * 2000).astype(int), 1999), minlength=2000)
    chi2 = float(((observed - n / 2000) ** 2 / (n / 2000)).sum())
    assert stats.chi2.sf(chi2, 1999) > 1e-4, chi2
    # the tail beyond the ziggurat's edge and a deep quantile, 4 binomial SE each
    for cut in (rng.ZIGGURAT_EDGE, 10.0, 3.0):
        p = math.exp(-cut)
        assert abs((e > cut).sum() - n * p) < 4 * math.sqrt(n * p * (1 - p)) + 1
    assert abs(e.mean() - 1.0) < 4 / math.sqrt(n)
    # the share of draws the first try leaves to `exponential_rare` (~2.2 %) is
    # what the tables' rectangles predict
    p_rare = 1.0 - float(np.mean(rng._ZIG_KE.astype(float) / 2.0 ** 53))
    assert abs(rare - n * p_rare) < 4 * math.sqrt(n * p_rare * (1 - p_rare))


@njit(cache=True)
def _tail_excess(base, tail, n, edge):
    out = []
    for i in range(n):
        x = rng.exponential_at(base, tail, i)
        if x > edge:
            out.append(x - edge)
    return np.array(out)


def test_exponential_tail_beyond_the_edge_is_memoryless():
    # every draw beyond the ziggurat's edge comes from its tail branch: the excess is Exp(1)
    key = np.uint64(55555)
    excess = _tail_excess(np.uint64(rng.stream_base(key, 1, rng.STREAM_SKIP)),
                          np.uint64(rng.stream_base(key, 1, rng.STREAM_SKIP_TAIL)), 20_000_000,
                          rng.ZIGGURAT_EDGE)
    n = excess.size
    assert abs(n - 20_000_000 * math.exp(-rng.ZIGGURAT_EDGE)) < 4 * math.sqrt(n)
    assert abs(excess.mean() - 1.0) < 4 / math.sqrt(n)
    assert stats.kstest(excess, "expon").pvalue > 1e-4


def _random_bucket(gen):
    t_lo = gen.uniform(-4.0, 1.0)
    t_hi = t_lo + gen.uniform(0.0, 0.15)
    c = math.sqrt(1.0 - gen.uniform(0.0, 0.95))
    sqrt_w = 1.0 if gen.random() < 0.5 else gen.uniform(0.3, 2.5)
    return t_lo, t_hi, c, sqrt_w


def test_bounds_hold_for_every_loan_and_common_of_a_cell():
    gen = np.random.default_rng(5)
    checked = 0
    for _ in range(3000):
        t_lo, t_hi, c, sqrt_w = _random_bucket(gen)
        common_lo = gen.uniform(-5.0, 5.0)
        common_hi = common_lo + (GRID_STEP if gen.random() < 0.7 else 0.0)
        p_bar, rate = candidate_rate(t_hi, common_lo, c, sqrt_w)
        lower, chord, upper, span = squeezes(t_lo, t_hi, common_lo, common_hi, c, sqrt_w, p_bar)
        if p_bar < 1.0:
            assert rate == pytest.approx(-1.0 / math.log1p(-p_bar), rel=1e-14)
        s = np.linspace(0.0, 1.0, 11)
        t = t_lo + s * (t_hi - t_lo)
        for common in np.linspace(common_lo, common_hi, 5):
            p = special.ndtr((sqrt_w * t - common) / c)  # independent Phi
            assert np.all(p <= p_bar * (1 + 1e-13))
            for s_i, p_i in zip(s, p):
                v_low, v_high = p_i * (1 - 1e-12), p_i * (1 + 1e-12)
                # a squeeze that keeps must keep only values below p_i, one that drops only above
                keep, undecided = squeeze_decision(v_high, s_i, lower, chord, upper, span)
                assert not keep or p_i == 0.0
                assert not (keep and undecided)
                keep, undecided = squeeze_decision(v_low, s_i, lower, chord, upper, span)
                assert keep or undecided
                checked += 1
    assert checked > 100_000


def test_squeezes_settle_most_candidates_of_a_typical_bucket():
    # W1-like bucket: thresholds 0.15 apart, rho 0.15; candidates v uniform on (0, p_bar)
    gen = np.random.default_rng(8)
    c, t_lo = math.sqrt(0.85), -2.2
    t_hi = t_lo + 0.15
    undecided = total = 0
    n_cells = grid_cells(math.sqrt(0.15))
    for z in gen.standard_normal(400):
        common = math.sqrt(0.15) * z
        lo = cell_low_edge(grid_cell(common, n_cells), n_cells)
        p_bar, _ = candidate_rate(t_hi, lo, c, 1.0)
        bounds = squeezes(t_lo, t_hi, lo, lo + GRID_STEP, c, 1.0, p_bar)
        for s_i, v in zip(gen.random(200), gen.random(200) * p_bar):
            undecided += squeeze_decision(v, s_i, *bounds)[1]
            total += 1
    assert undecided / total < 0.03


@pytest.mark.parametrize("v", [0.0, 5e-324, 1e-300, 0.3, 1.0])
@pytest.mark.parametrize("s_i", [0.0, 0.5, 1.0])
def test_unusable_squeezes_leave_every_candidate_to_the_exact_test(v, s_i):
    # a bucket of one threshold, or an underflowing lowest PD: (0, 0, inf, 0);
    # v = 0 (u p_bar underflowing) must not make the verdict NaN and drop it
    bounds = squeezes(-40.0, -40.0, 0.0, 0.0, 0.9, 1.0, 1e-300)
    assert bounds == (0.0, 0.0, np.inf, 0.0)
    assert squeeze_decision(v, s_i, *bounds) == (False, True)


@pytest.mark.parametrize("bounds", [(np.nan, 0.1, 0.2, 0.3), (0.1, np.nan, 0.2, 0.3),
                                    (0.1, 0.2, np.nan, 0.3)])
def test_a_nan_squeeze_decides_nothing(bounds):
    assert squeeze_decision(0.15, 0.5, *bounds) == (False, True)


@pytest.mark.parametrize("common_sd", [0.0, 0.1, math.sqrt(0.2)])
def test_grid_cells_hold_their_common_values(common_sd):
    n_cells = grid_cells(common_sd)
    lo, hi = cell_low_edge(0, n_cells), cell_low_edge(n_cells, n_cells)
    assert lo == -hi and hi >= 5 * common_sd and n_cells % 2 == 0
    for common in np.random.default_rng(2).uniform(lo, hi, 10_000):
        k = grid_cell(common, n_cells)
        assert cell_low_edge(k, n_cells) <= common < cell_low_edge(k + 1, n_cells)
    # at and one ulp below every edge (the index arithmetic can round across one)
    for k in range(1, n_cells):
        edge = cell_low_edge(k, n_cells)
        assert grid_cell(edge, n_cells) == k
        assert grid_cell(np.nextafter(edge, -np.inf), n_cells) == k - 1
    assert grid_cell(0.0, n_cells) == n_cells // 2
    assert grid_cell(lo, n_cells) == 0
    assert grid_cell(np.nextafter(lo, -np.inf), n_cells) == -1
    assert grid_cell(hi, n_cells) == -1
    assert grid_cell(float("nan"), n_cells) == -1


def test_table_rows_are_the_bounds_of_their_cells():
    ptr = np.array([0, 3, 5])
    threshold = np.array([-2.0, -1.95, -1.9, -1.0, -1.0])
    c = 0.9
    table = bounds_table(ptr, threshold, np.array([-1.9, -1.0]), c, common_sd=0.4)
    assert table.shape == (grid_cells(0.4), 2, 6)
    cell = 700
    lo = cell_low_edge(cell, table.shape[0])
    p_bar, rate = candidate_rate(-1.9, lo, c, 1.0)
    assert tuple(table[cell, 0]) == (p_bar, rate) + squeezes(-2.0, -1.9, lo, lo + GRID_STEP, c, 1.0, p_bar)
    assert bounds_table(ptr, threshold, np.array([-1.9, -1.0]), c, common_sd=None).shape[0] == 0
    np.testing.assert_allclose(bucket_positions(ptr, threshold), [0.0, 0.5, 1.0, 0.0, 0.0])


@pytest.mark.parametrize("default, pd", [
    ({"rho_systematic": 0.95}, 1e-3),  # Phi underflows in the table's top cells
    ({"rho_systematic": 0.3, "copula": "student_t", "t_dof": 4.0}, 1e-6),  # ... on a path, large sqrt_w
])
def test_buckets_whose_pd_underflows_have_no_candidate(default, pd):
    sc = make_scenario(default=default)
    n_loans, n = 200, 20_000
    plan = compile_plan(sc, equal_loans(n_loans, pd), "sparse")
    k = simulate_paths(plan, n, 4, 4096).n_defaults
    # the mean count against n_loans pd, 4 SE (the SE from the sample, at least
    # that of one default in n paths)
    se = max(k.std(ddof=1), 1.0) / math.sqrt(n)
    assert abs(k.mean() - n_loans * pd) < 4 * se


def _untabulated(plan):
    return plan._replace(bucket_bounds=np.empty((0,) + plan.bucket_bounds.shape[1:]))


@pytest.mark.parametrize("rho", [0.05, 0.3])
def test_bounds_computed_on_the_path_give_the_same_law(rho):
    # the path-by-path bounds (Student-t copula, |common| beyond the grid) against
    # the tabulated ones: same default-count law, different draws
    sc = make_scenario(default={"rho_systematic": rho})
    pf = equal_loans(400, np.linspace(0.005, 0.08, 400))
    plan = compile_plan(sc, pf, "sparse")
    assert plan.bucket_bounds.shape[0] == grid_cells(math.sqrt(rho))
    n = 20_000
    a = simulate_paths(plan, n, 3, 4096).n_defaults
    b = simulate_paths(_untabulated(plan), n, 3, 4096).n_defaults
    assert not np.array_equal(a, b)
    se = math.hypot(a.std(), b.std()) / math.sqrt(n)
    assert abs(a.mean() - b.mean()) < 4 * se
    assert (abs(a.mean() - plan.amount.size * np.linspace(0.005, 0.08, 400).mean())
            < 4 * a.std() / math.sqrt(n))
    # loss-only and full runs keep the same defaults either way (squeezes vs exact test)
    for p in (plan, _untabulated(plan)):
        full = simulate_paths(p, 2000, 5, 512).gross_loss
        np.testing.assert_allclose(simulate_losses(p, 2000, 5), full, rtol=1e-12)
