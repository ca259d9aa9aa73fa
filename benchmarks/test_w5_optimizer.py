"""W5: `models.optimize.solve` build + solve time on a random AllocationProblem
(12 segments x 4 sharing options, Vasicek-style scenario losses) at 1 k and
10 k scenarios ("full" LP, HiGHS). Collected only when models.optimize imports.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

optimize = pytest.importorskip("models.optimize", reason="models.optimize not available")

from benchmarks._report import Measurement, record, timed  # noqa: E402

pytestmark = pytest.mark.benchmark(group="W5 optimizer")


def random_problem(n_scenarios: int, n_segments: int = 12, n_options: int = 4, seed: int = 0):
    from scipy.stats import norm

    rng = np.random.default_rng(seed)
    pd = rng.uniform(0.01, 0.06, n_segments)
    rho = rng.uniform(0.05, 0.3, n_segments)
    z = rng.standard_normal(n_scenarios)[:, None]
    rate = norm.cdf((norm.ppf(pd) - np.sqrt(rho) * z) / np.sqrt(1 - rho))
    loss = rate * rng.lognormal(0.0, 0.3, rate.shape) * rng.uniform(0.4, 0.8, n_segments)
    pool_share = rng.uniform(0.1, 0.4, (n_segments, n_options))
    guarantee = rng.uniform(0.1, 0.5, (n_segments, n_options))
    demand = rng.uniform(50e6, 150e6, n_segments)
    pool_claims = loss[:, :, None] * pool_share
    guarantor_claims = loss[:, :, None] * guarantee
    alpha = 0.99
    capital = 0.8 * optimize.empirical_cvar(guarantor_claims[:, :, 0] @ demand, alpha)
    return optimize.AllocationProblem(
        segments=tuple(f"seg{i}" for i in range(n_segments)),
        options=tuple(f"opt{k}" for k in range(n_options)),
        pool_claims=pool_claims,
        guarantor_claims=guarantor_claims,
        bank_loss=loss[:, :, None] * (1.0 - pool_share - guarantee),
        other_fiscal_cost=rng.uniform(0.0, 0.01, (n_scenarios, n_segments, n_options)),
        guarantee_share=guarantee,
        demand=demand,
        bank_margin=rng.uniform(0.01, 0.04, n_segments),
        budget=0.5 * optimize.empirical_cvar(pool_claims[:, :, 0] @ demand, alpha),
        alpha=alpha,
        guarantor_capital=capital,
        guarantor_leverage=15.0,
    )


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
