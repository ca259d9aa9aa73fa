"""From a scenario to the optimizer's answer, an allocation: simulate loss
scenarios by segment (`sim.optimizer.segments`), state the allocation
problem (`sim.optimizer.model`), solve it, verify it with the full engine on
a fresh seed (`sim.optimizer.verify`), back off the rows the engine finds
short, measure how much the answer depends on sampling, and label it (a
Dataset of kind "allocation" and the `allocation.json` record).

Back-off: a probability the engine finds above 1 - alpha (pool dry,
guarantor capital out, a cap reached) tightens that payer's CVaR row to the
level alpha' = 1 - (1 - alpha) / r, r = (upper bound) / (1 - alpha) (at
least 1.25), with more scenarios (the same first paths, then new ones)
where alpha' leaves fewer than 20 in the tail; a CVaR of pay-as-you-go
costs above the reserve scales that row's claims by r = (upper bound) /
reserve. At most optimize.max_rounds
rounds; the answer is the last round's allocation with its verification.
Stability: the final problem solved again on optimize.stability_sets
independent scenario sets (seeds seed + 1000 i).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from models.portfolio import Portfolio, segment_index
from models.scenario import Scenario, ScenarioError, Shares
from sim.engine.plan import BANK, GUARANTOR, POOL, build_portfolio
from sim.optimizer.model import (
    CAPPED_PAYERS,
    AllocationProblem,
    AllocationResult,
    OptimizationError,
    frontier,
    solve,
)
from sim.optimizer.segments import SegmentLosses, segment_losses
from sim.optimizer.verify import PARTY_INDEX, PlanScenario, Verification, plan_scenario, verify
from sim.risk.estimators import VERDICT_Z, binomial_bounds, paths_to_show_none
from sim.scale.executor import session

# What an unlimited payer's capital is set with.
CAPITAL_KEYS = {"guarantor": "contract.guarantor.capital", "reguarantor": "contract.reguarantor.cap_total",
                "insurer": "contract.insurer.cap_total", "appraiser": "contract.appraiser.cap_total"}
# Verification rows and the tail row each one tightens.
BACKOFF_ROWS = {"pool_dry": "pool", "guarantor_dry": "guarantor", **{f"{j}_cap": j for j in CAPPED_PAYERS},
                "public_costs_cvar": "public_costs"}
MIN_BACKOFF = 1.25
MIN_TAIL_SCENARIOS = 20
MAX_SCENARIOS = 1_000_000
STABILITY_SEED_STEP = 1000


@dataclass(frozen=True)
class Round:
    """One solve and its verification by the engine."""

    result: AllocationResult
    verification: Verification | None
    tightened: dict[str, float]


@dataclass(frozen=True)
class Stability:
    """The answer's spread over independent scenario sets: values per set (yuan), min, max, CV."""

    credit: np.ndarray
    pool: np.ndarray
    capital_injection: np.ndarray
    reserve: np.ndarray

    def spread(self) -> dict[str, tuple[float, float, float]]:
        """(min, max, coefficient of variation) per quantity."""
        out = {}
        for name in ("credit", "pool", "capital_injection", "reserve"):
            v = getattr(self, name)
            mean = float(v.mean()) if v.size else math.nan
            cv = float(v.std(ddof=1) / mean) if v.size > 1 and mean > 0 else 0.0
            out[name] = (float(v.min()), float(v.max()), cv) if v.size else (math.nan, math.nan, math.nan)
        return out


@dataclass(frozen=True)
class Outcome:
    """The allocation (last round), every round, its plan scenario, stability and the frontier."""

    result: AllocationResult
    rounds: tuple[Round, ...]
    plan: PlanScenario
    stability: Stability | None
    frontier: xr.Dataset | None
    frontier_verification: tuple[Verification | None, ...]
    problem: AllocationProblem

    @property
    def verification(self) -> Verification | None:
        return self.rounds[-1].verification


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


def payer_capital(scenario: Scenario, payer: str) -> float:
    """What a payer has without the budget, yuan (the guarantor's capital, a capped payer's total cap)."""
    c = scenario.contract
    return float(c.guarantor.capital if payer == "guarantor" else getattr(c, payer).cap_total)


def check_verifiable(scenario: Scenario, alpha: float, verify_paths: int) -> None:
    """Refuse a verification too small to show any tail probability <= 1 - alpha: with no event in
    n paths the exact 95 % upper bound is 1 - 0.05^(1/n), so n must reach log(0.05) / log(alpha)."""
    need = paths_to_show_none(1.0 - alpha)
    if 0 < verify_paths < need:
        raise ScenarioError(
            f"{scenario.source}: optimize.verify_paths (--verify-paths) {verify_paths:,}: too few paths to "
            f"show a probability <= {1.0 - alpha:g} at 95 % even with no event (the bound is "
            f"{binomial_bounds(0, verify_paths)[1]:.3g}); use at least {need:,}, or 0 for no verification")


def check_funded(scenario: Scenario, options: dict[str, Shares]) -> None:
    """Refuse an option that sends losses to a payer with unlimited capital and no budget line."""
    where = "optimize.options" if scenario.optimize.options else "contract.shares"
    for name, shares in options.items():
        for payer, key in CAPITAL_KEYS.items():
            share = getattr(shares, payer)
            if share > 0 and math.isinf(payer_capital(scenario, payer)):
                raise ScenarioError(
                    f"{scenario.source}: {where}.{name}: sends {share:.0%} of each default to the {payer}, "
                    f"which has unlimited capital and no budget line (a free lunch for the optimizer): set "
                    f"{key} to its capital in yuan, or drop the option")


def option_groups(labels: tuple[str, ...], option_by: str) -> tuple[tuple[str, ...], np.ndarray]:
    """Groups that share one option ("scheme", or by stage, score band or segment) and each
    segment's group."""
    part = {"stage": 0, "score_band": 1}
    keys = ["scheme" if option_by == "scheme" else label if option_by == "segment"
            else label.split("|")[part[option_by]] for label in labels]
    groups = tuple(dict.fromkeys(keys))
    return groups, np.array([groups.index(k) for k in keys], np.int64)


def allocation_problem(scenario: Scenario, losses: SegmentLosses, budget: float, alpha: float,
                       loss_budget: float | None = None) -> AllocationProblem:
    """The LP's data: per-yuan claims by scenario, segment and option, the payers' capital and the limits."""
    opt = scenario.optimize
    g = scenario.contract.guarantor
    used = losses.shares.max(axis=0)
    capped = [j for j in CAPPED_PAYERS if used[PARTY_INDEX[j]] > 0]
    groups, group_of = option_groups(losses.segments, opt.option_by)
    return AllocationProblem(
        segments=losses.segments,
        options=losses.options,
        pool_claims=losses.party_loss[..., POOL],
        guarantor_claims=losses.party_loss[..., GUARANTOR],
        bank_loss=losses.party_loss[..., BANK],
        public_costs=losses.public_costs,
        guarantee_share=np.broadcast_to(losses.shares[:, GUARANTOR],
                                        (len(losses.segments), len(losses.options))).copy(),
        demand=opt.demand_multiplier * losses.amount,
        bank_margin=losses.bank_margin,
        budget=float(budget),
        alpha=float(alpha),
        guarantor_capital=float(g.capital) if used[GUARANTOR] > 0 else 0.0,
        guarantor_leverage=float(g.leverage),
        pool_leverage=float(opt.pool_leverage),
        capped_claims={j: losses.party_loss[..., PARTY_INDEX[j]] for j in capped},
        capped_capital={j: payer_capital(scenario, j) for j in capped},
        max_pool=float(opt.max_pool),
        max_capital_injection=float(opt.max_capital_injection) if used[GUARANTOR] > 0 else 0.0,
        max_reserve=float(opt.max_reserve),
        loss_budget=float(opt.loss_budget if loss_budget is None else loss_budget),
        max_credit=float(opt.max_credit),
        groups=groups,
        group_of=group_of,
        objective=opt.objective,
        firms_weight=losses.loans / losses.amount,  # firms served per yuan, at today's mean loan
        min_credit=opt.min_credit_share * losses.amount,
    )


def _tightened(problem: AllocationProblem, verification: Verification) -> dict[str, float] | None:
    """The back-off of every failing row (see the module docstring), or None if nothing can be tightened."""
    alpha, scale, changed = dict(problem.tail_alpha), dict(problem.tail_scale), {}
    for check in verification.failing():
        row = BACKOFF_ROWS.get(check.name)
        if row is None:
            continue
        probability = check.units == "probability"
        n = verification.n_paths  # the bound its verdict used (a probability: k of n plain paths)
        upper = binomial_bounds(round(check.estimate * n), n)[1] if probability else \
            check.estimate + VERDICT_Z * check.se
        ratio = max(upper / check.limit, MIN_BACKOFF) if check.limit > 0 else MIN_BACKOFF
        if probability:
            level = alpha.get(row, problem.alpha)
            alpha[row] = 1.0 - (1.0 - level) / ratio
            changed[f"{row}_alpha"] = alpha[row]
            # a CVaR needs scenarios in its tail: add them where the new level leaves too few
            changed["scenarios"] = max(changed.get("scenarios", problem.n_scenarios),
                                       min(MAX_SCENARIOS, math.ceil(MIN_TAIL_SCENARIOS / (1.0 - alpha[row]))))
        else:
            scale[row] = scale.get(row, 1.0) * ratio
            changed[f"{row}_scale"] = scale[row]
    if not changed:
        return None
    return {"tail_alpha": alpha, "tail_scale": scale, **changed}


def optimize(
    scenario: Scenario,
    *,
    budget: float,
    alpha: float | None = None,
    loss_budget: float | None = None,
    n_scenarios: int | None = None,
    seed: int | None = None,
    method: str = "auto",
    verify_paths: int | None = None,
    max_rounds: int | None = None,
    stability_sets: int | None = None,
    frontier_points: int | None = None,
    portfolio: Portfolio | None = None,
    scheduler: Any = None,
    progress: Callable[[str], None] | None = None,
) -> Outcome:
    """Choose the pool, capital injection, reserve, sharing option(s) and credit per segment that
    maximise credit supplied (or firms served) within a budget, every public payer funded at the tail;
    verify the allocation with the engine and back off until every verdict holds.

    Parameters
    ----------
    scenario : Scenario
        A validated scenario; its [optimize] table gives the defaults.
    budget : float
        Budget B, yuan: pool + capital injection + reserve <= B.
    alpha : float, optional
        Tail level of every CVaR row (default optimize.alpha).
    loss_budget : float, optional
        Limit on the expected public net loss, yuan (default optimize.loss_budget, unlimited).
    n_scenarios, seed : optional
        Loss scenarios of the LP and their seed (default optimize.n_scenarios, simulation.seed).
    method : str
        "auto", "full" (every scenario row) or "cutting_plane".
    verify_paths : int, optional
        Paths of the engine's verification (seed + 1; default optimize.verify_paths; 0: none).
    max_rounds, stability_sets, frontier_points : int, optional
        Back-off rounds, independent scenario sets for the stability check, budgets of the
        frontier (0.25 B .. 2 B, each verified); defaults from [optimize].
    portfolio : Portfolio, optional
        The book (default the scenario's own).
    scheduler : optional
        Simulate on Dask (as `sim.run`); the LP is solved here.
    progress : callable, optional
        Called with a line of text as each stage starts.

    Returns
    -------
    Outcome
        The allocation, its rounds, plan scenario, stability and frontier;
        `allocation_dataset(outcome, scenario)` labels it.
    """
    opt = scenario.optimize
    alpha = opt.alpha if alpha is None else alpha
    n = opt.n_scenarios if n_scenarios is None else int(n_scenarios)
    seed = scenario.simulation.seed if seed is None else int(seed)
    verify_paths = opt.verify_paths if verify_paths is None else int(verify_paths)
    rounds = opt.max_rounds if max_rounds is None else int(max_rounds)
    sets = opt.stability_sets if stability_sets is None else int(stability_sets)
    points = opt.frontier_points if frontier_points is None else int(frontier_points)
    say = progress or (lambda text: None)
    portfolio = build_portfolio(scenario) if portfolio is None else portfolio
    options = sharing_options(scenario)
    check_funded(scenario, options)
    check_verifiable(scenario, alpha, verify_paths)
    with session(scheduler) as client:
        say(f"simulating {n:,} loss scenarios")
        loop = _Loop(scenario, portfolio, options, alpha, method, verify_paths, seed, client, say)
        first = loop.problem(budget, opt.loss_budget if loss_budget is None else loss_budget, n)
        problem, history = loop.solve_and_verify(first, rounds)
        stability = _stability(loop, problem, sets)
        fr, fr_checks = None, ()
        if points > 0:
            say(f"frontier: {points} budgets")
            fr, results = frontier(problem, np.linspace(0.25, 2.0, points) * budget, method=method)
            fr_checks = tuple(None if res is None else loop.verify(problem, res) for res in results)
            fr["verified"] = ("budget", np.array([c is not None and c.holds for c in fr_checks]))
    plan = loop.plan(problem, history[-1].result)
    return Outcome(history[-1].result, tuple(history), plan, stability, fr, fr_checks, problem)


@dataclass(frozen=True)
class _Loop:
    """What solving and verifying needs besides the problem: the source scenario and book,
    the options, the tail level, the engine's paths and seed, the Dask client."""

    scenario: Scenario
    portfolio: Portfolio
    options: dict[str, Shares]
    alpha: float
    method: str
    verify_paths: int
    seed: int
    client: Any
    say: Callable[[str], None]

    def problem(self, budget: float, loss_budget: float, n: int, seed_offset: int = 0) -> AllocationProblem:
        """The allocation problem on `n` loss scenarios drawn from the LP's seed (+ an offset)."""
        losses = segment_losses(self.scenario, self.portfolio, self.options,
                                self.scenario.optimize.score_bands, n, self.seed + seed_offset, self.client)
        return allocation_problem(self.scenario, losses, budget, self.alpha, loss_budget)

    def plan(self, problem: AllocationProblem, result: AllocationResult) -> PlanScenario:
        segment, _ = segment_index(self.portfolio, self.scenario.optimize.score_bands)
        return plan_scenario(self.scenario, self.portfolio, segment, result, self.options, problem.group_of,
                             problem.guarantor_capital)

    def verify(self, problem: AllocationProblem, result: AllocationResult) -> Verification | None:
        if self.verify_paths == 0:
            return None
        return verify(self.plan(problem, result), result, self.alpha, n_paths=self.verify_paths,
                      seed=self.seed + 1, loss_budget=problem.loss_budget, scheduler=self.client)

    def solve_and_verify(self, problem: AllocationProblem,
                         max_rounds: int) -> tuple[AllocationProblem, list[Round]]:
        """Solve, verify, and back off failing rows until every verdict holds (or the rounds run out)."""
        history: list[Round] = []
        tightened: dict[str, float] = {}
        for r in range(max_rounds):
            self.say(f"round {r + 1}: solving")
            result = solve(problem, method=self.method)
            if self.verify_paths:
                self.say(f"round {r + 1}: verifying with the engine ({self.verify_paths:,} paths)")
            checked = self.verify(problem, result)
            history.append(Round(result, checked, tightened))
            change = (None if checked is None or checked.holds or r == max_rounds - 1
                      else _tightened(problem, checked))
            if change is None:
                break
            tail = {"tail_alpha": change.pop("tail_alpha"), "tail_scale": change.pop("tail_scale")}
            scenarios = change.get("scenarios", problem.n_scenarios)
            if scenarios > problem.n_scenarios:
                self.say(f"round {r + 2}: simulating {scenarios:,} loss scenarios")
                problem = self.problem(problem.budget, problem.loss_budget, scenarios)
            else:
                change.pop("scenarios", None)
            problem = dataclasses.replace(problem, **tail)
            tightened = change
        return problem, history


def _stability(loop: _Loop, problem: AllocationProblem, sets: int) -> Stability | None:
    """The final problem (back-off included) solved on `sets` independent scenario sets."""
    if sets < 2:
        return None
    loop.say(f"stability: {sets} independent scenario sets")
    values = []
    for i in range(sets):
        fresh = loop.problem(problem.budget, problem.loss_budget, problem.n_scenarios,
                             STABILITY_SEED_STEP * (i + 1))
        fresh = dataclasses.replace(fresh, tail_alpha=problem.tail_alpha, tail_scale=problem.tail_scale)
        try:
            r = solve(fresh, method=loop.method)
        except OptimizationError:  # no allocation on this set: it counts as none
            values.append((0.0, 0.0, 0.0, 0.0))
            continue
        values.append((r.objective, r.pool_size, r.capital_injection, r.reserve))
    v = np.array(values)
    return Stability(v[:, 0], v[:, 1], v[:, 2], v[:, 3])


def allocation_dataset(outcome: Outcome, scenario: Scenario) -> xr.Dataset:
    """The allocation as a labelled Dataset (kind "allocation"): credit by segment and option, yuan."""
    r = outcome.result
    groups = outcome.problem.groups
    ds = xr.Dataset(
        {
            "credit": (("segment", "option"), r.credit_by_option, {"units": "yuan"}),
            "demand": (("segment",), outcome.problem.demand, {"units": "yuan"}),
            "segment_group": (("segment",),
                              np.array([groups[i] for i in outcome.problem.group_of], dtype=str)),
            "chosen_option": (("group",), np.array([r.chosen[g] for g in groups], dtype=str)),
        },
        coords={"segment": list(r.segments), "option": list(r.options), "group": list(groups)},
        attrs={"kind": "allocation", "status": r.status, "credit_supplied": r.objective,
               "pool_size": r.pool_size, "capital_injection": r.capital_injection, "reserve": r.reserve,
               "budget": outcome.problem.budget, "alpha": outcome.problem.alpha,
               "n_scenarios": int(outcome.problem.n_scenarios), "rounds": len(outcome.rounds),
               "expected_public_loss": r.expected_public_loss, "scenario_name": scenario.name,
               "guarantor_capital": outcome.problem.guarantor_capital + r.capital_injection,
               "guarantees": float((r.credit_by_option * outcome.problem.guarantee_share).sum()),
               "money_unit": "yuan"},
    )
    check = outcome.verification
    if check is not None:
        ds.attrs["verified"] = int(check.holds)
        ds.attrs["verify_paths"] = check.n_paths
        for c in check.checks:
            for suffix, value in (("", c.estimate), ("_se", c.se), ("_limit", c.limit)):
                ds.attrs[f"verify_{c.name}{suffix}"] = value
            ds.attrs[f"verify_{c.name}_verdict"] = c.verdict
    return ds


def allocation_record(outcome: Outcome) -> dict:
    """What `allocation.json` holds: the allocation, binding rows, shadow prices, rounds,
    verification and stability (yuan)."""
    def verification(v: Verification | None) -> dict | None:
        if v is None:
            return None
        return {"n_paths": v.n_paths, "seed": v.seed, "holds": v.holds,
                "credit_supplied": {"planned": v.planned_credit, "estimate": v.credit.value,
                                    "se": v.credit.se},
                "checks": {c.name: {"description": c.description, "estimate": c.estimate,
                                    "standard_error": c.se, "limit": c.limit, "verdict": c.verdict,
                                    "units": c.units} for c in v.checks}}

    r = outcome.result
    stability = outcome.stability.spread() if outcome.stability is not None else None
    return {
        "status": r.status, "budget": outcome.problem.budget, "alpha": outcome.problem.alpha,
        "credit_supplied": r.objective, "firms_served": r.firms,
        "levers": {"pool": r.pool_size, "capital_injection": r.capital_injection, "reserve": r.reserve},
        "chosen_option": r.chosen, "credit": r.credit, "tail_cvar": r.tail_cvar,
        "expected_public_loss": r.expected_public_loss, "binding": r.binding,
        "shadow_prices": r.shadow_prices,
        "guarantor_capital_price": r.capital_price, "method": r.method, "solver": r.solver,
        "n_scenarios": outcome.problem.n_scenarios, "build_seconds": r.build_seconds,
        "solve_seconds": r.solve_seconds,
        "rounds": [{"credit_supplied": rd.result.objective, "tightened": rd.tightened,
                    "verification": verification(rd.verification)} for rd in outcome.rounds],
        "verification": verification(outcome.verification),
        "stability": None if stability is None else {k: {"min": a, "max": b, "cv": c}
                                                     for k, (a, b, c) in stability.items()},
    }
