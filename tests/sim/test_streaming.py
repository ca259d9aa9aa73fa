"""Bounded memory: a run's statistics reduced chunk by chunk (sim.risk.summary,
sim.results.reduction) against the sorted-sample estimators of
sim.risk.estimators, and a run streamed past its memory budget against the
same run held in memory -- bit for bit -- with its peak memory measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sim
from sim.engine.outputs import output_bytes
from sim.engine.run import RunSpec
from sim.risk import estimators
from sim.risk.summary import CHUNK, Moments, Ranked, RankedVariable
from tests.helpers import streamed_pair

ROOT = Path(__file__).resolve().parents[2]
TAILS = np.array([0.5, 0.9, 0.95, 0.99, 0.999])
LEVELS = np.array([0.0, 0.02, 0.1, 0.5, 0.77, 0.9, 0.99, 0.9999, 1.0])


def _sample(n: int, seed: int) -> np.ndarray:
    """Three columns with what losses have: an atom at 0, a long tail, ties (values rounded)."""
    rng = np.random.default_rng(seed)
    x = np.where(rng.random((n, 3)) < 0.3, 0.0, rng.lognormal(0.0, 1.2, (n, 3)))
    x[:, 2] = np.round(x[:, 2], 1)
    return x


def _reduce(x: np.ndarray, w: np.ndarray, weighted: bool) -> RankedVariable:
    """Pass 1 over chunks, then collecting passes until no value the estimates need is missing."""
    n = x.shape[0]
    ranked = Ranked(x[:CHUNK])
    for lo in range(0, n, CHUNK):
        ranked.add(x[lo:lo + CHUNK], w[lo:lo + CHUNK])
    variable = RankedVariable(ranked, n, weighted, TAILS, LEVELS)
    for _ in range(5):
        for j, bins in enumerate(variable.bins_needed()):
            ranked.want(j, bins)
        if ranked.missing() == 0:
            return variable
        for lo in range(0, n, CHUNK):
            ranked.collect(x[lo:lo + CHUNK], w[lo:lo + CHUNK], lo)
        ranked.close_pass()
    raise AssertionError("values still missing after five passes")


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n, seed", [(1, 0), (2, 1), (37, 2), (CHUNK, 3), (70_001, 4), (70_001, 5)])
def test_order_statistics_and_tails_equal_the_sorted_sample(weighted, n, seed):
    """Quantiles and VaRs (and the VaR's SE band) exactly; ES and its SE to rounding."""
    x = _sample(n, seed)
    w = np.random.default_rng(seed + 100).lognormal(0.0, 0.4, n) if weighted else np.ones(n)
    variable = _reduce(x, w, weighted)
    for j in range(3):
        got = variable.tail_table(j)
        want = estimators.tail_table(x[:, j], TAILS, w if weighted else None)
        np.testing.assert_array_equal(got[:2], want[:2])
        np.testing.assert_allclose(got[2:], want[2:], rtol=1e-12, atol=0.0)
    want = estimators.quantiles(x, LEVELS, w if weighted else None)
    np.testing.assert_array_equal(variable.quantiles(), want)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the sorted sample's inf - inf
@pytest.mark.parametrize("weighted", [False, True])
def test_infinite_values_sit_in_a_bin_of_their_own(weighted):
    """Unlimited capital or pool (inf) in a ranked column: nothing of it is kept, the estimates are
    the sorted sample's (an infinite VaR or ES where the tail reaches it)."""
    n = 3 * CHUNK + 7
    x = _sample(n, 9)
    x[::2, 0] = np.inf  # half infinite
    x[:, 1] = np.inf  # all infinite
    w = np.random.default_rng(9).lognormal(0.0, 0.4, n) if weighted else np.ones(n)
    variable = _reduce(x, w, weighted)
    assert variable.r.kept_values() < n // 10
    for j in range(3):
        got = variable.tail_table(j)
        want = estimators.tail_table(x[:, j], TAILS, w if weighted else None)
        np.testing.assert_array_equal(got[0], want[0])
        infinite = np.isinf(want[0])  # an infinite VaR: ES inf (the sorted sample's inf - inf is NaN)
        assert (got[2][infinite] == np.inf).all()
        np.testing.assert_allclose(got[2][~infinite], want[2][~infinite], rtol=1e-12)


def test_an_infinite_mean_stays_infinite_over_chunks():
    x = np.ones((3 * CHUNK, 2))
    x[5, 0] = np.inf
    moments = Moments(2)
    for lo in range(0, x.shape[0], CHUNK):
        moments.add(x[lo:lo + CHUNK])
    mean, se = moments.estimate()
    assert mean[0] == np.inf and np.isnan(se[0]) and mean[1] == 1.0 and se[1] == 0.0


def test_a_ratio_se_keeps_its_digits_when_x_is_nearly_r_y():
    """x = 0.37 y (1 + 1e-9 e): the SE is of the 1e-9 part, which a plain x - r y would cancel away."""
    rng = np.random.default_rng(5)
    y = rng.lognormal(0.0, 1.0, 60_000)
    x = 0.37 * y * (1.0 + 1e-9 * rng.normal(size=y.size))
    moments = Moments(3, [(2, 1)])
    xy = np.column_stack([x, y])
    r0 = float(x[:CHUNK].sum() / y[:CHUNK].sum())
    for lo in range(0, y.size, CHUNK):
        part = xy[lo:lo + CHUNK]
        moments.add(np.column_stack([part, part[:, 0] - r0 * part[:, 1]]))
    np.testing.assert_allclose(moments.ratio(0, 0, r0), estimators.ratio(x, y), rtol=1e-6)


def test_the_plain_quantile_rank_is_numpys():
    rng = np.random.default_rng(7)
    for n in (1, 2, 3, 10, 999, 1000, 4097):
        x = rng.random(n)
        levels = np.concatenate([LEVELS, rng.random(20), np.arange(n + 1) / n])
        ranks = [estimators.quantile_rank(n, p) for p in levels]
        np.testing.assert_array_equal(np.sort(x)[ranks], np.quantile(x, levels, method="inverted_cdf"))


def test_merged_moments_equal_the_whole_sample():
    rng = np.random.default_rng(3)
    x = rng.normal(5.0, 2.0, (50_000, 3))
    moments = Moments(3)
    for lo in range(0, x.shape[0], CHUNK):
        moments.add(x[lo:lo + CHUNK])
    mean, se = moments.estimate()
    want_mean, want_se = estimators.mean(x)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-13)
    np.testing.assert_allclose(se, want_se, rtol=1e-12)


SCENARIO = ROOT / "scenarios/ip_pledge_97.toml"


@pytest.mark.parametrize("overrides", [[], ['simulation.tail="pool_dry"']], ids=["plain", "importance"])
def test_a_streamed_run_gives_the_in_memory_runs_numbers_bit_for_bit(overrides):
    small, large, n = streamed_pair(overrides)
    assert RunSpec.resolve(small, n_paths=n).streamed and not RunSpec.resolve(large, n_paths=n).streamed
    told: list[int] = []
    streamed = sim.run(small, n_paths=n, seed=11, threads=1, block_size=1000,
                       redraw_progress=lambda total: told.append(total) or (lambda k: None))
    held = sim.run(large, n_paths=n, seed=11, threads=2)
    assert told and all(t == n for t in told)  # the second pass, reported as one
    assert "path_gross_loss" not in streamed and "path_gross_loss" in held
    for name in streamed.data_vars:
        np.testing.assert_array_equal(streamed[name].values, held[name].values, err_msg=name)
    assert np.isinf(held["guarantor_capital_mean"]).all()  # unlimited capital: inf, not NaN
    assert streamed.attrs["n_paths"] == n
    assert streamed.attrs["effective_paths"] == held.attrs["effective_paths"]


PEAK = """
import json, sys
import sim
def rss(field):  # kB -> bytes, from the kernel's own account of this process
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
sc = sim.load_scenario(sys.argv[1], ["simulation.memory_gib=" + sys.argv[2]])
sim.run(sc, n_paths=3000)  # compiled and warm: what every run of this process holds anyway
base = rss("VmRSS")
ds = sim.run(sc, n_paths=int(sys.argv[3]))
print(json.dumps({"base": base, "peak": rss("VmHWM"), "es": float(ds["gross_loss_es"][-1])}))
"""


def test_a_streamed_run_stays_within_its_budget():
    """128 MiB for 400 000 paths whose per-path arrays alone take ~217 MiB: the peak resident memory
    exceeds what the warm process held before the run by less than the budget (the stated constant
    is that process: the interpreter, NumPy, numba's compiled kernels and the plan)."""
    budget_gib = 128 / 1024
    n = 400_000
    assert output_bytes(16, n) > 1.5 * budget_gib * 2**30
    done = subprocess.run([sys.executable, "-c", PEAK, str(SCENARIO), repr(budget_gib), str(n)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    m = json.loads(done.stdout.strip().splitlines()[-1])
    assert m["peak"] - m["base"] < budget_gib * 2**30, m
    assert np.isfinite(m["es"]) and m["es"] > 0


def test_a_sweep_streams_its_points_past_the_budget():
    small, large, n = streamed_pair([])
    grid = {"contract.pool.size": [5e6, 20e6]}
    streamed = sim.sweep(small, grid, n_paths=n, seed=2)
    held = sim.sweep(large, grid, n_paths=n, seed=2)
    for name in held.data_vars:  # the points' scenario hashes too: a budget is not part of them
        np.testing.assert_array_equal(streamed[name].values, held[name].values, err_msg=name)
