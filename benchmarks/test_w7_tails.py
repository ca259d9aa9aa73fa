"""W7: a far-tail probability to 10 % relative error, plain Monte Carlo
against importance sampling (sim.engine.importance), one thread, same run.

Cases: P(pool runs dry) of the default scenario at the pool size where it is
about 1e-4 (the (1 - 1e-4) quantile of the required pool, found by an
untimed importance-sampled sizing run); the same with the Student-t copula;
national_4321.toml, which has no pool, with the event "the guarantor loses
at least x", x its loss's 1e-4 quantile found the same way.

Both methods run the paths they need for 10 % relative error (1.96 is not
applied: "10 %" is one standard error): plain n = (1 - p) / (0.01 p), IS
n = v / (0.01 p^2) with v the per-path variance of the weighted indicator
from the calibration run. The IS time includes its cross-entropy pilot.
Reported: both times, their ratio (goal >= 100x), the per-path variance
ratio, and each run's realised relative error.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest

from benchmarks._report import Measurement, note, record
from benchmarks.workloads import DEFAULT_SCENARIO, ROOT

pytestmark = [pytest.mark.benchmark(group="W7 far tails"), pytest.mark.usefixtures("warm_numba")]

TARGET = 1e-4
REL_ERROR = 0.10
CALIBRATION_PATHS = int(os.environ.get("RISKPOOL_BENCH_W7_CALIBRATION_PATHS", "40000"))
NATIONAL = ROOT / "scenarios" / "national_4321.toml"
CASES = {
    "default pool_dry": (DEFAULT_SCENARIO, [], "pool_dry"),
    "student_t pool_dry": (DEFAULT_SCENARIO, ['default.copula="student_t"'], "pool_dry"),
    "national_4321 guarantor loss": (NATIONAL, [], "guarantor"),
}


def _party_loss(out, party: str) -> np.ndarray:
    from models.scenario import PARTIES
    return out.party_loss[:, PARTIES.index(party)]


def _flags(out, event: str, level: float) -> np.ndarray:
    return out.exhausted if event == "pool_dry" else _party_loss(out, event) >= level


def _calibrate(path, overrides, event):
    """(scenario overrides that put the event at about TARGET, IS tail text, level): untimed."""
    from models.scenario import load_scenario
    from sim.engine.run import RunSpec
    from sim.risk import estimators
    from sim.scale.runs import simulate_runs

    probe = "pool_dry" if event == "pool_dry" else f"{event}>=1"
    sc = load_scenario(path, [*overrides, f'simulation.tail="{probe}"'])
    spec = RunSpec.resolve(sc, n_paths=CALIBRATION_PATHS, seed=101, tail_target=TARGET)
    [out] = simulate_runs([spec], threads=1)
    score = out.required_pool if event == "pool_dry" else _party_loss(out, event)
    level = float(estimators.tail_table(score, [1.0 - TARGET], out.weight)[0, 0])
    if event == "pool_dry":
        return [*overrides, f"contract.pool.size={level!r}"], "pool_dry", level
    return overrides, f"{event}>={level!r}", level


def _timed_estimate(scenario, n_paths: int, seed: int, event: str, level: float):
    """(seconds including the sampling measure's choice, estimate, spec)."""
    from sim.engine.run import RunSpec
    from sim.risk import estimators
    from sim.scale.runs import simulate_runs

    t = time.perf_counter()
    spec = RunSpec.resolve(scenario, n_paths=n_paths, seed=seed)
    [out] = simulate_runs([spec], threads=1)
    est = estimators.probability(_flags(out, event, level), out.weight)
    return time.perf_counter() - t, est, spec


@pytest.mark.parametrize("case", CASES)
def test_w7_far_tail(case, benchmark):
    from models.scenario import load_scenario

    path, overrides, event = CASES[case]
    overrides, tail, level = _calibrate(path, overrides, event)
    plain_sc = load_scenario(path, overrides)
    is_sc = load_scenario(path, [*overrides, f'simulation.tail="{tail}"'])
    # the per-path variance of the IS estimator, from an untimed run on another seed
    _, pilot_est, _ = _timed_estimate(is_sc, CALIBRATION_PATHS, 202, event, level)
    p = pilot_est.value
    v_is = pilot_est.se ** 2 * CALIBRATION_PATHS
    n_plain = math.ceil((1.0 - p) / (REL_ERROR ** 2 * p))
    n_is = max(1000, math.ceil(v_is / (REL_ERROR ** 2 * p * p)))

    t_plain, plain, _ = _timed_estimate(plain_sc, n_plain, 303, event, level)
    t_is, tilted, spec = benchmark.pedantic(_timed_estimate, args=(is_sc, n_is, 404, event, level),
                                            rounds=1, iterations=1)
    ratio = t_plain / t_is
    variance_ratio = p * (1.0 - p) / v_is
    size = f"P = {p:.3g} at {'pool' if event == 'pool_dry' else 'loss'} {level / 1e4:,.0f} 万元"
    record(Measurement("W7", f"{case}: plain MC", "peer", t_plain, 1, 1.0, unit="estimates/s",
                       size=f"{size}, {n_plain:,} paths, rel. error {plain.se / plain.value:.1%}"))
    record(Measurement("W7", f"{case}: importance sampling", "engine", t_is, 1, 1.0, unit="estimates/s",
                       size=f"{size}, {n_is:,} paths, rel. error {tilted.se / tilted.value:.1%}",
                       extra={"time_ratio": ratio, "variance_ratio": variance_ratio}))
    note(f"W7 {case}: plain {plain.value:.3g} ± {plain.se:.2g} in {t_plain:.2f} s ({n_plain:,} paths); "
         f"IS {tilted.value:.3g} ± {tilted.se:.2g} in {t_is:.2f} s ({n_is:,} paths, pilot "
         f"{spec.sampling.rounds} rounds, shift {spec.sampling.shift[0]:.2f}, chi2 scale "
         f"{spec.sampling.mixing:.3g}): {ratio:,.0f}x less time, {variance_ratio:,.0f}x less variance a path")
    assert abs(plain.value - tilted.value) < 4 * math.hypot(plain.se, tilted.se)
    benchmark.extra_info.update(time_ratio=ratio, variance_ratio=variance_ratio)
