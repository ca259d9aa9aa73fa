"""W6: the SimPy operational twin, `sim.twin.run.run_twin(scenario, n_paths=...)`,
on the default scenario: paths per second. Collected only when sim.twin.run imports.
"""

from __future__ import annotations

import os

import pytest

des = pytest.importorskip("sim.twin.run", reason="sim.twin.run (SimPy twin) not available")

from benchmarks._report import Measurement, record, timed  # noqa: E402
from benchmarks.workloads import DEFAULT_SCENARIO  # noqa: E402

pytestmark = pytest.mark.benchmark(group="W6 SimPy twin")

N_PATHS = int(os.environ.get("RISKPOOL_BENCH_DES_PATHS", "200"))


def test_w6_des(benchmark):
    from models.scenario import load_scenario
    from sim.engine.plan import build_portfolio

    scenario = load_scenario(DEFAULT_SCENARIO)
    portfolio = build_portfolio(scenario)
    des.run_twin(scenario, n_paths=2, portfolio=portfolio)  # imports, numba helpers
    ds, sec = timed(benchmark, des.run_twin, 2, scenario, n_paths=N_PATHS, portfolio=portfolio)
    m = record(Measurement("W6", "run_twin default scenario", "engine", sec, 2, float(N_PATHS),
                           unit="paths/s", size=f"{len(portfolio):,} loans x {N_PATHS} paths"))
    own = ds.attrs.get("paths_per_second")
    if own is not None:
        m.extra["twin_reported_paths_per_s"] = float(own)
    benchmark.extra_info.update(paths_per_s=m.rate)
