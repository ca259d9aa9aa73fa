"""W5: `sim.optimizer.model.solve` build + solve time on a random AllocationProblem
(12 segments x 4 sharing options, Vasicek-style scenario losses) at 1 k and
10 k scenarios ("full" LP, HiGHS). Collected only when sim.optimizer.model imports.
"""

from __future__ import annotations

import math

import pytest

optimize = pytest.importorskip("sim.optimizer.model", reason="sim.optimizer.model not available")

from benchmarks._report import Measurement, record, timed  # noqa: E402

pytestmark = pytest.mark.benchmark(group="W5 optimizer")


def random_problem(n_scenarios: int):
    """The optimizer tests' random instance at 12 segments x 4 options, CVaR 99 %,
    guarantor capital at 80 % of its CVaR at full demand."""
    from tests.sim.test_optimize_model import random_problem as instance

    return instance(n_scenarios, n_segments=12, n_options=4, alpha=0.99, capital_share=0.8)


@pytest.mark.parametrize("n_scenarios", [1_000, 10_000])
def test_w5_solve(benchmark, n_scenarios):
    problem = random_problem(n_scenarios)
    result, sec = timed(benchmark, optimize.solve, 1, problem)
    assert result.status in ("optimal", "feasible")
    assert math.isfinite(result.objective) and result.objective > 0
    record(Measurement(
        "W5", f"solve {n_scenarios:,} scenarios", "engine", sec, 1, float(n_scenarios), unit="scenarios/s",
        size=f"{n_scenarios:,} scenarios x 12 segments x 4 options, method {result.method}, {result.solver}",
        memory=f"build {result.build_seconds:.2f} s + solve {result.solve_seconds:.2f} s",
        extra={"build_s": result.build_seconds, "solve_s": result.solve_seconds, "n_cuts": result.n_cuts}))
    benchmark.extra_info.update(build_s=result.build_seconds, solve_s=result.solve_seconds,
                                method=result.method, solver=result.solver)
