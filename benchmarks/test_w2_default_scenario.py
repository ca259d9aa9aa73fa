"""W2: the default scenario as shipped (scenarios/shijiazhuang_score_loan.toml),
100 000 paths, the whole `sim.run` to the Dataset, warm (numba cache filled),
one thread. Goal < 2 s.
"""

from __future__ import annotations

import os
import time

import pytest

from benchmarks._report import Measurement, note, record, timed
from benchmarks.workloads import DEFAULT_SCENARIO

pytestmark = [pytest.mark.benchmark(group="W2 default scenario"), pytest.mark.usefixtures("warm_numba")]

N_PATHS = int(os.environ.get("RISKPOOL_BENCH_W2_PATHS", "100000"))


def test_w2_default_scenario(benchmark):
    import sim
    from models.scenario import load_scenario
    from sim.engine.plan import build_portfolio, compile_plan
    from sim.engine.run import simulate_paths
    from sim.results.dataset import build_dataset

    scenario = load_scenario(DEFAULT_SCENARIO)
    ds, sec = timed(benchmark, sim.run, 2, scenario, n_paths=N_PATHS, threads=1)
    assert ds.attrs.get("n_paths", N_PATHS) == N_PATHS

    # where the time goes (one extra untimed-by-benchmark pass)
    t = time.perf_counter()
    portfolio = build_portfolio(scenario)
    plan = compile_plan(scenario, portfolio)
    t1 = time.perf_counter()
    out = simulate_paths(plan, N_PATHS, scenario.simulation.seed, scenario.simulation.block_size, 1)
    t2 = time.perf_counter()
    build_dataset(out, plan, scenario, seed=scenario.simulation.seed, method=scenario.simulation.method)
    t3 = time.perf_counter()
    n_loans = len(portfolio)
    m = record(Measurement(
        "W2", "sim.run default scenario", "engine", sec, 2, float(N_PATHS), unit="paths/s",
        size=f"{n_loans:,} loans x {N_PATHS:,} paths, {plan.horizon} months",
        extra={"portfolio_plan_s": t1 - t, "simulate_s": t2 - t1, "dataset_s": t3 - t2}))
    note(f"W2 breakdown: portfolio+plan {t1 - t:.2f} s, simulate_paths {t2 - t1:.2f} s "
         f"({(t2 - t1) / N_PATHS * 1e6:.1f} us/path, {out.n_defaults.mean():.1f} defaults/path, "
         f"{plan.bucket_threshold.size} sampling buckets for {n_loans} loans), build_dataset {t3 - t2:.2f} s")
    benchmark.extra_info.update(seconds=sec, **m.extra)
