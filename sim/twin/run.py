"""`run_twin`: the SimPy twin over many paths, and its labelled Dataset
(kind "twin"; estimators from `sim.risk.estimators`, units from
`sim.results.units`)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import xarray as xr

from models.portfolio import Portfolio
from models.scenario import PARTIES, Scenario, scenario_sha256
from sim.engine.plan import Plan, build_portfolio, compile_plan
from sim.results.dataset import add_mean, add_probability, riskpool_version
from sim.results.units import label
from sim.risk import estimators
from sim.twin.draws import draw_path, life_pd
from sim.twin.processes import Operations, PathResult, plan_terms, simulate_path, start_cohorts

DAYS_PER_MONTH = 30.0


def _validate(n_paths: int, reviewers: int | None, review_days: float, approval_days: float) -> None:
    if int(n_paths) < 1:
        raise ValueError(f"n_paths must be >= 1 (got {n_paths})")
    if reviewers is not None and (int(reviewers) != reviewers or reviewers < 1):
        raise ValueError(f"reviewers must be None (unlimited) or an integer >= 1 (got {reviewers!r})")
    if not (math.isfinite(review_days) and review_days >= 0.0):
        raise ValueError(f"review_days must be a finite number >= 0 (got {review_days!r})")
    if not (0.0 <= approval_days < DAYS_PER_MONTH):
        raise ValueError(
            f"approval_days must be in [0, {DAYS_PER_MONTH:g}): a loan is disbursed in its start month "
            f"(got {approval_days!r})"
        )


def run_twin(
    scenario: Scenario,
    *,
    n_paths: int = 200,
    seed: int | None = None,
    reviewers: int | None = None,
    review_days: float = 0.0,
    approval_days: float = 0.0,
    portfolio: Portfolio | None = None,
    progress: Callable[[int], None] | None = None,
) -> xr.Dataset:
    """Simulate the scheme's operations path by path with SimPy (kind "twin").

    Parameters
    ----------
    scenario : Scenario
        A validated scenario.
    n_paths : int
        Paths (the twin runs ~100-1000 paths a second: use a few thousand).
    seed : int, optional
        Seed of its own NumPy PCG64 stream (default the scenario's).
    reviewers : int, optional
        Claim reviewers of the pool (None: no queue).
    review_days, approval_days : float
        Review time per pool claim and approval time per loan, days (a month
        is 30 days; approval under 30). With the defaults the twin follows
        the engine's rules exactly.
    portfolio : Portfolio, optional
        The book (default the scenario's own).
    progress : callable, optional
        Called with 1 after each path.

    Returns
    -------
    xarray.Dataset
        Party losses, pool exhaustion, reimbursement delays and claim queues
        with standard errors; money in yuan, times in months.
    """
    _validate(n_paths, reviewers, review_days, approval_days)
    n_paths = int(n_paths)
    seed = scenario.simulation.seed if seed is None else int(seed)
    portfolio = build_portfolio(scenario) if portfolio is None else portfolio
    plan = compile_plan(scenario, portfolio)
    terms = plan_terms(plan)
    ops = Operations(
        reviewers=None if reviewers is None else int(reviewers),
        review_months=float(review_days) / DAYS_PER_MONTH,
        approval_months=float(approval_days) / DAYS_PER_MONTH,
    )
    rng = np.random.Generator(np.random.PCG64(seed))
    pd_life = life_pd(plan)
    cohorts = start_cohorts(plan)

    results: list[PathResult] = []
    began = time.perf_counter()
    for _ in range(n_paths):
        draws = draw_path(plan, rng, pd_life)
        results.append(simulate_path(plan, terms, ops, draws, cohorts))
        if progress is not None:
            progress(1)
    elapsed = time.perf_counter() - began
    return _dataset(results, plan, scenario, seed, ops, n_paths / max(elapsed, 1e-12))


def _dataset(results: list[PathResult], plan: Plan, scenario: Scenario, seed: int, ops: Operations,
             paths_per_second: float) -> xr.Dataset:
    n = len(results)
    quantiles = np.asarray(scenario.simulation.quantiles, dtype=float)
    periods = (np.arange(plan.horizon // plan.period_months) + 1) * plan.period_months
    data: dict[str, tuple] = {}

    add_mean(data, "loss", np.stack([r.party_loss for r in results]), ("party",))
    add_mean(data, "gross_loss", np.array([r.gross_loss for r in results]))
    add_mean(data, "default_rate", np.array([r.default_rate for r in results]))
    add_mean(data, "credit_supplied", np.array([r.credit for r in results]))
    add_mean(data, "guarantee_compensation", np.array([r.compensation for r in results]))
    add_probability(data, "pool_exhaustion_prob", np.array([r.exhausted for r in results]))
    stop = np.array([r.stop_month for r in results])
    add_probability(data, "stop_rule_prob", stop >= 0)
    stopped = stop[stop >= 0].astype(float)
    m, se = estimators.mean(stopped) if stopped.size else (np.nan, np.nan)
    data["stop_month_mean"], data["stop_month_se"] = ((), m), ((), se)

    # Reimbursement delay: a ratio over all claims; its SE treats paths as clusters
    # (linearisation u_p = (D_p - r N_p) / mean(N), then the SE of mean(u)).
    per_path = [np.asarray(r.delays) for r in results]
    counts = np.array([d.size for d in per_path], float)
    sums = np.array([d.sum() for d in per_path])
    delays = np.concatenate(per_path) if per_path else np.zeros(0)
    if delays.size:
        ratio = sums.sum() / counts.sum()
        _, se = estimators.mean((sums - ratio * counts) / counts.mean())
        data["reimbursement_delay_mean"], data["reimbursement_delay_se"] = ((), ratio), ((), se)
        data["reimbursement_delay"] = (("quantile",), estimators.quantiles(delays, quantiles))
    else:
        data["reimbursement_delay_mean"], data["reimbursement_delay_se"] = ((), np.nan), ((), np.nan)
        data["reimbursement_delay"] = (("quantile",), np.full(quantiles.size, np.nan))
    add_mean(data, "n_claims", counts)

    add_mean(data, "claim_queue_length", np.stack([r.queue_length for r in results]), ("period",))
    balance = np.stack([r.pool_balance for r in results])
    add_mean(data, "pool_balance", balance, ("period",))
    data["pool_balance_quantile"] = (
        ("period", "quantile"), estimators.quantiles(balance, quantiles).T)

    ds = xr.Dataset(
        data,
        coords={"party": list(PARTIES), "quantile": quantiles, "period": periods},
        attrs={
            "kind": "twin",
            "engine": "des",
            "seed": int(seed),
            "n_paths": int(n),
            "n_loans": int(plan.amount.size),
            "reviewers": "unlimited" if ops.reviewers is None else int(ops.reviewers),
            "review_days": ops.review_months * DAYS_PER_MONTH,
            "approval_days": ops.approval_months * DAYS_PER_MONTH,
            "paths_per_second": float(paths_per_second),
            "scenario_name": scenario.name,
            "scenario_sha256": scenario_sha256(scenario),
            "riskpool_version": riskpool_version(),
            "money_unit": "yuan",
            "time_unit": "month (review and approval times: days / 30)",
            "period_unit": "calendar month at the end of the period",
        },
    )
    return label(ds)
