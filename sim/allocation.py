"""From a scenario to the optimizer's answer: simulate loss scenarios by
segment (sim.segments), state the allocation problem (models.optimize), solve
it, and re-check the plan on scenarios drawn with a fresh seed."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import xarray as xr

from models.optimize import AllocationProblem, AllocationResult, ConstraintCheck, evaluate_plan, frontier, solve
from models.portfolio import Portfolio
from models.scenario import Scenario, ScenarioError, Shares
from sim.plan import BANK, GUARANTOR, POOL
from sim.segments import SegmentLosses, segment_losses


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
        guarantee_share=np.broadcast_to(losses.shares[:, GUARANTOR], (len(losses.segments), len(losses.options))).copy(),
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


def _cluster(scheduler):
    if scheduler is None:
        return contextlib.nullcontext(None)
    from sim.distributed import client_for

    return client_for(scheduler)


def optimize(scenario: Scenario, portfolio: Portfolio, budget: float, alpha: float | None = None,
             n_scenarios: int | None = None, seed: int | None = None, method: str = "auto",
             with_frontier: bool = True, scheduler: str | None = None) -> Outcome:
    """Solve for `budget` (yuan) and re-check the plan out of sample (seed + 1);
    with a Dask `scheduler` the loss scenarios are simulated there."""
    opt = scenario.optimize
    alpha = opt.alpha if alpha is None else alpha
    n = opt.n_scenarios if n_scenarios is None else n_scenarios
    seed = scenario.simulation.seed if seed is None else seed
    options = sharing_options(scenario)
    with _cluster(scheduler) as client:  # one client for both scenario sets
        losses = segment_losses(scenario, portfolio, options, opt.score_bands, n, seed, client)
        fresh = segment_losses(scenario, portfolio, options, opt.score_bands, n, seed + 1, client)
    problem = allocation_problem(scenario, losses, budget, alpha)
    result = solve(problem, method=method)
    checks = evaluate_plan(result, allocation_problem(scenario, fresh, budget, alpha))
    fr = None
    if with_frontier and opt.frontier_points > 0:
        budgets = np.linspace(0.25, 2.0, opt.frontier_points) * budget
        fr = frontier(problem, budgets, method=method)
    return Outcome(result, checks, fr, losses, problem)
