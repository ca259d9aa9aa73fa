"""From a scenario to the optimizer's answer, an allocation: simulate loss
scenarios by segment (`sim.optimizer.segments`), state the allocation problem
(`sim.optimizer.model`), solve it, re-check the allocation on scenarios drawn
with a fresh seed, and label it (a Dataset of kind "allocation" and the
`allocation.json` record)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from models.portfolio import Portfolio
from models.scenario import Scenario, ScenarioError, Shares
from sim.engine.plan import BANK, GUARANTOR, POOL, build_portfolio
from sim.optimizer.model import (
    AllocationProblem,
    AllocationResult,
    ConstraintCheck,
    evaluate_plan,
    frontier,
    solve,
)
from sim.optimizer.segments import SegmentLosses, segment_losses
from sim.scale.executor import session


@dataclass(frozen=True)
class Outcome:
    result: AllocationResult
    checks: dict[str, ConstraintCheck]
    frontier: xr.Dataset | None
    losses: SegmentLosses
    problem: AllocationProblem


def sharing_options(scenario: Scenario) -> dict[str, Shares]:
    """The [optimize.options] menu, or the scenario's own sharing when it has one for all products."""
    if scenario.optimize.options:
        return dict(scenario.optimize.options)
    own = {s.as_tuple(): s for s in scenario.contract.shares.values()}
    if len(own) != 1:
        raise ScenarioError(
            f"{scenario.source}: optimize.options: products share losses differently; "
            "list the sharing options to choose from in [optimize.options.<name>]"
        )
    return {"as_contracted": next(iter(own.values()))}


def allocation_problem(scenario: Scenario, losses: SegmentLosses, budget: float,
                       alpha: float) -> AllocationProblem:
    """The LP's data: per-yuan claims by scenario, segment and option, and the limits."""
    opt = scenario.optimize
    g = scenario.contract.guarantor
    return AllocationProblem(
        segments=losses.segments,
        options=losses.options,
        pool_claims=losses.party_loss[..., POOL],
        guarantor_claims=losses.party_loss[..., GUARANTOR],
        bank_loss=losses.party_loss[..., BANK],
        other_fiscal_cost=losses.other_fiscal_cost,
        guarantee_share=np.broadcast_to(losses.shares[:, GUARANTOR],
                                        (len(losses.segments), len(losses.options))).copy(),
        demand=opt.demand_multiplier * losses.amount,
        bank_margin=losses.bank_margin,
        budget=float(budget),
        alpha=float(alpha),
        guarantor_capital=float(g.capital),
        guarantor_leverage=float(g.leverage),
        pool_leverage=float(opt.pool_leverage),
        firms_weight=losses.loans / losses.amount,  # firms served per yuan, at today's mean loan
        min_credit=opt.min_credit_share * losses.amount,
    )


def optimize(
    scenario: Scenario,
    *,
    budget: float,
    alpha: float | None = None,
    n_scenarios: int | None = None,
    seed: int | None = None,
    method: str = "auto",
    frontier_points: int | None = None,
    portfolio: Portfolio | None = None,
    scheduler: Any = None,
) -> Outcome:
    """Choose the pool, the sharing option and credit per segment that maximise
    credit supplied within a fiscal budget and CVaR limits.

    Parameters
    ----------
    scenario : Scenario
        A validated scenario; its [optimize] table gives the defaults.
    budget : float
        Fiscal budget B, yuan: pool + expected other fiscal cost <= B.
    alpha, n_scenarios : optional
        CVaR level and Monte Carlo loss scenarios (default optimize.alpha,
        optimize.n_scenarios).
    seed : int, optional
        Seed of the scenarios (default simulation.seed); the out-of-sample
        check uses seed + 1.
    method : str
        "auto", "full" (every scenario row) or "cutting_plane".
    frontier_points : int, optional
        Budgets of the frontier, 0.25 B .. 2 B (default optimize.frontier_points; 0: none).
    portfolio : Portfolio, optional
        The book (default the scenario's own).
    scheduler : optional
        Simulate the loss scenarios on Dask (as `sim.run`); the LP is solved here.

    Returns
    -------
    Outcome
        The solved allocation, its out-of-sample checks, the frontier (or
        None) and the problem's data; `allocation_dataset(outcome, scenario)`
        labels it.
    """
    opt = scenario.optimize
    alpha = opt.alpha if alpha is None else alpha
    n = opt.n_scenarios if n_scenarios is None else n_scenarios
    seed = scenario.simulation.seed if seed is None else seed
    points = opt.frontier_points if frontier_points is None else int(frontier_points)
    portfolio = build_portfolio(scenario) if portfolio is None else portfolio
    options = sharing_options(scenario)
    with session(scheduler) as client:  # one client for both scenario sets
        losses = segment_losses(scenario, portfolio, options, opt.score_bands, n, seed, client)
        fresh = segment_losses(scenario, portfolio, options, opt.score_bands, n, seed + 1, client)
    problem = allocation_problem(scenario, losses, budget, alpha)
    result = solve(problem, method=method)
    checks = evaluate_plan(result, allocation_problem(scenario, fresh, budget, alpha))
    fr = None
    if points > 0:
        fr = frontier(problem, np.linspace(0.25, 2.0, points) * budget, method=method)
    return Outcome(result, checks, fr, losses, problem)


def allocation_dataset(outcome: Outcome, scenario: Scenario) -> xr.Dataset:
    """The allocation as a labelled Dataset (kind "allocation"): credit by segment and option, yuan."""
    r = outcome.result
    ds = xr.Dataset(
        {
            "credit": (("segment", "option"), r.credit_by_option, {"units": "yuan"}),
            "demand": (("segment",), outcome.problem.demand, {"units": "yuan"}),
            "amount_today": (("segment",), outcome.losses.amount, {"units": "yuan"}),
        },
        coords={"segment": list(r.segments), "option": list(r.options)},
        attrs={"kind": "allocation", "status": r.status, "credit_supplied": r.objective,
               "pool_size": r.pool_size, "chosen_option": r.chosen_option, "pool_cvar": r.pool_cvar,
               "budget": outcome.problem.budget, "alpha": outcome.problem.alpha,
               "n_scenarios": int(outcome.losses.party_loss.shape[0]),
               "scenario_name": scenario.name, "money_unit": "yuan"},
    )
    for name, check in outcome.checks.items():
        ds.attrs[f"out_of_sample_{name}"] = check.estimate
        ds.attrs[f"out_of_sample_{name}_se"] = check.standard_error
        ds.attrs[f"out_of_sample_{name}_holds"] = int(check.holds)
    return ds


def allocation_record(outcome: Outcome) -> dict:
    """What `allocation.json` holds: the allocation, binding rows, shadow prices and checks (yuan)."""
    r = outcome.result
    return {
        "status": r.status, "budget": outcome.problem.budget, "credit_supplied": r.objective,
        "pool_size": r.pool_size, "chosen_option": r.chosen_option, "pool_cvar": r.pool_cvar,
        "credit": r.credit, "binding": r.binding, "shadow_prices": r.shadow_prices, "method": r.method,
        "solver": r.solver, "build_seconds": r.build_seconds, "solve_seconds": r.solve_seconds,
        "out_of_sample": {k: {"estimate": c.estimate, "standard_error": c.standard_error,
                              "limit": c.limit, "holds": c.holds} for k, c in outcome.checks.items()},
    }
