"""Allocation MILP: hand-worked optima (each lever winning, groups taking different options,
every limit binding with its shadow price), CVaR identities, methods agreeing, the free-lunch
refusal, diagnostics, validation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import norm

from sim.optimizer.model import (
    AllocationProblem,
    OptimizationError,
    empirical_cvar,
    frontier,
    solve,
)

RTOL = 1e-6


def per_yuan(values, n_scenarios: int, n_segments: int, n_options: int) -> np.ndarray:
    """Broadcast per-yuan data given per scenario and segment (or less) to the model's cube."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.broadcast_to(arr, (n_scenarios, n_segments, n_options)).copy()


def hand_problem(pool, *, options=("only",), guarantor=0.0, bank_loss=0.0, public=0.0, share=0.0,
                 demand=(100.0, 100.0), margin=(0.03, 0.03), budget=10.0, alpha=0.5,
                 **kw) -> AllocationProblem:
    """Two segments A and B; per-yuan data as (scenario, segment[, option]) arrays or scalars."""
    pool = np.asarray(pool, dtype=float)
    shape = (pool.shape[0], 2, len(options))
    return AllocationProblem(
        segments=("A", "B"), options=tuple(options),
        pool_claims=per_yuan(pool, *shape), guarantor_claims=per_yuan(guarantor, *shape),
        bank_loss=per_yuan(bank_loss, *shape), public_costs=per_yuan(public, *shape),
        guarantee_share=np.broadcast_to(np.asarray(share, float), shape[1:]).copy(),
        demand=np.asarray(demand, float), bank_margin=np.asarray(margin, float), budget=budget, alpha=alpha,
        **kw)


# Two scenarios at alpha = 0.5: a CVaR is the worse scenario's loss.
@pytest.mark.parametrize(("kw", "credit", "lever", "price"), [
    # the guarantor binds: 0.15 x <= C0 + dC = 5 + 10 -> 100 yuan, all of the budget injected
    ({"guarantor": [[0.05, 0.05], [0.15, 0.15]], "guarantor_capital": 5.0},
     100.0, "capital_injection", 1 / 0.15),
    # the pool binds: 0.3 x <= P = 10 -> 33.3 yuan
    ({}, 10.0 / 0.3, "pool", 1 / 0.3),
    # the pay-as-you-go public costs bind: 0.04 x <= R = 10 -> 250 yuan (demand 2 x 200)
    ({"public": [[0.02, 0.02], [0.04, 0.04]], "demand": (200.0, 200.0)}, 250.0, "reserve", 1 / 0.04),
])
def test_the_budget_goes_to_the_lever_that_binds(kw, credit, lever, price):
    pool = [[0.0, 0.0], [0.0, 0.0]] if lever != "pool" else [[0.1, 0.1], [0.3, 0.3]]
    r = solve(hand_problem(pool, **kw))
    assert_allclose(r.objective, credit, rtol=RTOL)
    levers = {"pool": r.pool_size, "capital_injection": r.capital_injection, "reserve": r.reserve}
    assert_allclose(levers[lever], 10.0, rtol=RTOL)
    assert sum(levers.values()) == pytest.approx(10.0, rel=RTOL)
    assert r.binding["budget"]
    assert_allclose(r.shadow_prices["budget"], price, rtol=1e-5)


def test_guarantor_capital_today_has_the_price_of_an_injected_yuan():
    r = solve(hand_problem([[0.0, 0.0]] * 2, guarantor=[[0.05, 0.05], [0.15, 0.15]], guarantor_capital=5.0))
    # d credit / d C0 = d credit / d budget = 1 / 0.15 while the injection is interior
    assert_allclose(r.capital_price, 1 / 0.15, rtol=1e-5)
    # with no budget line for capital (injection switched off) only C0 counts: 5 / 0.15
    off = solve(hand_problem([[0.0, 0.0]] * 2, guarantor=[[0.05, 0.05], [0.15, 0.15]], guarantor_capital=5.0,
                             max_capital_injection=0.0))
    assert_allclose([off.objective, off.capital_injection], [5 / 0.15, 0.0], atol=1e-6)
    assert_allclose(off.capital_price, 1 / 0.15, rtol=1e-5) and not off.binding["budget"]


def test_pool_and_guarantor_split_the_budget_by_their_tails():
    # pool CVaR 0.3 x, guarantor CVaR 0.15 x, C0 = 0, budget 9: 0.45 x <= 9 -> x = 20, P = 6, dC = 3
    r = solve(hand_problem([[0.1, 0.1], [0.3, 0.3]], guarantor=[[0.05, 0.05], [0.15, 0.15]], budget=9.0))
    assert_allclose([r.objective, r.pool_size, r.capital_injection, r.reserve], [20.0, 6.0, 3.0, 0.0],
                    atol=1e-6)
    assert_allclose(r.tail_cvar["pool"], 6.0, rtol=RTOL)


def test_groups_take_different_options_when_that_pays():
    # pool80 costs A 0.1 and B 0.3 per yuan of pool; guar80 costs A 0.2 and B 0.1 of capital.
    # One option for all: pool80 gives 100 + 10/0.3 = 133.3, guar80 gives 100 + 10/0.2 = 150.
    # A on pool80 and B on guar80: 0.1 * 100 + 0.1 * 100 = 20 = budget -> 200.
    pool = np.zeros((2, 2, 2))
    pool[:, 0, 0], pool[:, 1, 0] = 0.1, 0.3
    guarantor = np.zeros((2, 2, 2))
    guarantor[:, 0, 1], guarantor[:, 1, 1] = 0.2, 0.1
    base = dict(options=("pool80", "guar80"), guarantor=guarantor, budget=20.0)
    one = solve(hand_problem(pool, **base))
    assert_allclose(one.objective, 150.0, rtol=RTOL) and one.chosen == {"scheme": "guar80"}
    by_segment = solve(hand_problem(pool, **base, groups=("gA", "gB"), group_of=np.array([0, 1])))
    assert by_segment.chosen == {"gA": "pool80", "gB": "guar80"}
    assert by_segment.chosen_option == "by group"
    assert_allclose([by_segment.objective, by_segment.pool_size, by_segment.capital_injection],
                    [200.0, 10.0, 10.0], rtol=RTOL)
    assert_allclose(by_segment.shadow_prices["budget"], 0.0, atol=1e-9)  # demand binds everywhere


def test_an_unlimited_payer_is_a_free_lunch_and_is_refused():
    problem = hand_problem([[0.0, 0.0]] * 2, guarantor=[[0.05, 0.05], [0.15, 0.15]],
                           guarantor_capital=math.inf)
    with pytest.raises(OptimizationError, match="option 'only' to the guarantor") as err:
        solve(problem)
    assert err.value.status == "unfunded"
    capped = hand_problem([[0.0, 0.0]] * 2, capped_claims={"reguarantor": per_yuan(0.1, 2, 2, 1)},
                          capped_capital={"reguarantor": math.inf})
    with pytest.raises(OptimizationError, match="to the reguarantor"):
        solve(capped)


def test_a_capped_payer_binds_with_its_capital():
    # re-guarantor pays 0.1 per yuan with capital 5: x <= 50 whatever the budget
    r = solve(hand_problem([[0.0, 0.0]] * 2, capped_claims={"reguarantor": per_yuan(0.1, 2, 2, 1)},
                           capped_capital={"reguarantor": 5.0}))
    assert_allclose(r.objective, 50.0, rtol=RTOL)
    assert r.binding["reguarantor_cvar"] and not r.binding["budget"]
    assert_allclose(r.shadow_prices["reguarantor_cvar"], 10.0, rtol=1e-5)


@pytest.mark.parametrize(("kw", "credit", "row", "price"), [
    ({"max_credit": 12.0}, 12.0, "max_credit", 1.0),
    # expected public loss 0.2 per yuan (mean of 0.1 and 0.3): 0.2 x <= 4 -> 20
    ({"loss_budget": 4.0}, 20.0, "loss_budget", 5.0),
])
def test_credit_cap_and_loss_budget_bind(kw, credit, row, price):
    r = solve(hand_problem([[0.1, 0.1], [0.3, 0.3]], **kw))
    assert_allclose(r.objective, credit, rtol=RTOL)
    assert r.binding[row]
    assert_allclose(r.shadow_prices[row], price, rtol=1e-5)
    assert_allclose(r.expected_public_loss, 0.2 * credit, rtol=RTOL)


def test_firms_objective_prefers_the_segment_with_more_firms():
    # A and B cost the same pool per yuan; B's loans are smaller (more firms per yuan)
    r = solve(hand_problem([[0.1, 0.1], [0.1, 0.1]], budget=5.0, objective="firms",
                           firms_weight=np.array([1e-2, 1e-1])))
    assert_allclose([r.credit["A"], r.credit["B"]], [0.0, 50.0], atol=1e-6)
    assert_allclose(r.firms, 5.0, rtol=RTOL)


def test_back_off_tightens_a_row():
    base = hand_problem([[0.1, 0.1], [0.3, 0.3]])
    assert_allclose(solve(dataclasses.replace(base, tail_scale={"pool": 2.0})).objective, 10.0 / 0.6,
                    rtol=RTOL)
    # four scenarios 0.1, 0.2, 0.3, 0.4: at alpha 0.5 the CVaR is 0.35, at 0.75 it is 0.4
    four = hand_problem([[0.1, 0.1], [0.2, 0.2], [0.3, 0.3], [0.4, 0.4]])
    assert_allclose(solve(four).objective, 10.0 / 0.35, rtol=RTOL)
    assert_allclose(solve(dataclasses.replace(four, tail_alpha={"pool": 0.75})).objective, 10.0 / 0.4,
                    rtol=RTOL)


# Pool claims per yuan; rows are four scenarios, columns segments A and B.
# alpha = 0.5 with four scenarios: CVaR is the mean of the two largest losses.
# L = (0, 0.1 xB, 0.1 xA, 0.2 (xA + xB)), so for xA + xB = T the CVaR is
# (0.2 T + 0.1 max(xA, xB)) / 2, smallest at xA = xB = T/2: 0.125 T <= P <= 10
# gives T = 80, xA = xB = 40, P = 10, and d credit / d budget = 8.
CVAR_BINDS = [[0.0, 0.0], [0.0, 0.1], [0.1, 0.0], [0.2, 0.2]]


def test_pool_cvar_binds():
    r = solve(hand_problem(CVAR_BINDS))
    assert r.status == "optimal"
    assert_allclose(r.objective, 80.0, rtol=RTOL)
    assert_allclose([r.credit["A"], r.credit["B"]], [40.0, 40.0], rtol=RTOL)
    assert_allclose([r.pool_size, r.tail_cvar["pool"]], [10.0, 10.0], rtol=RTOL)
    assert r.binding["pool_cvar"] and r.binding["budget"]
    assert not r.binding["demand[A]"] and not r.binding["demand[B]"]
    assert_allclose([r.shadow_prices["budget"], r.shadow_prices["pool_cvar"]], [8.0, 8.0], rtol=RTOL)


def test_demand_and_budget_prices_by_hand():
    # Two scenarios, alpha = 0.5: CVaR is the larger loss. Pool claims only on A:
    # CVaR = 0.08 xA. B needs no pool but 0.15 per yuan of pay-as-you-go costs in its worse scenario.
    # A is cheaper (0.08 < 0.15): xA = 100 (pool 8), then xB = (10 - 8) / 0.15 = 13.3.
    # One more budget yuan buys 1/0.15 yuan of B; one more yuan of A demand costs 0.08 of B's budget,
    # i.e. 0.08/0.15 yuan of B: net 1 - 0.533 = 0.467.
    r = solve(hand_problem([[0.02, 0.0], [0.08, 0.0]], public=[[0.0, 0.05], [0.0, 0.15]]))
    assert_allclose(r.objective, 100 + 2 / 0.15, rtol=RTOL)
    assert_allclose([r.credit["A"], r.credit["B"], r.pool_size, r.reserve], [100.0, 2 / 0.15, 8.0, 2.0],
                    rtol=RTOL)
    assert r.binding["budget"] and r.binding["demand[A]"] and not r.binding["demand[B]"]
    assert_allclose(r.shadow_prices["budget"], 1 / 0.15, rtol=1e-5)
    assert_allclose(r.shadow_prices["demand[A]"], 1 - 0.08 / 0.15, rtol=1e-5)
    assert_allclose(r.shadow_prices["demand[B]"], 0.0, atol=1e-9)


def test_bank_participation_zeroes_a_segment():
    # A is cheap for the pool (0.01 per yuan) but the bank keeps 0.03 on average,
    # above its 0.02 margin, so A gets nothing although 100 of A would cost only
    # 1 of budget. B: pool 0.05 per yuan, budget 3 -> 60 (demand 100).
    problem = hand_problem([[0.01, 0.05], [0.01, 0.05]], bank_loss=[[0.02, 0.01], [0.04, 0.01]],
                           margin=(0.02, 0.02), budget=3.0)
    r = solve(problem)
    assert_allclose(r.objective, 60.0, rtol=RTOL)
    assert r.credit["A"] == 0.0
    # Same data with a margin the bank accepts: 100 of A (pool 1), then 40 of B.
    r = solve(dataclasses.replace(problem, bank_margin=np.array([0.03, 0.02])))
    assert_allclose([r.credit["A"], r.credit["B"]], [100.0, 40.0], rtol=RTOL)


def test_option_choice_matters():
    # pool_heavy: pool pays 0.1 per yuan on both segments -> 10 / 0.1 = 100.
    # pool_light: pool pays 0.04, but the bank keeps 0.05 > 0.03 on B, so B is
    # out; A takes its whole demand 150 for a pool of 6 -> 150, the optimum.
    # Mixing options (light on A, heavy on B) would give 150 + 4 / 0.1 = 190:
    # the one-option rule is what keeps it at 150.
    pool = np.array([[[0.1, 0.04], [0.1, 0.04]]] * 2)
    bank = np.array([[[0.01, 0.01], [0.01, 0.05]]] * 2)
    problem = hand_problem(pool, options=("pool_heavy", "pool_light"), bank_loss=bank, demand=(150.0, 100.0))
    r = solve(problem)
    assert r.chosen_option == "pool_light"
    assert_allclose(r.objective, 150.0, rtol=RTOL)
    assert_allclose(r.credit_by_option, [[0.0, 150.0], [0.0, 0.0]], atol=1e-9)
    assert_allclose(r.pool_size, 6.0, rtol=RTOL)
    cbc = solve(problem, solver="cbc")
    assert cbc.solver == "CBC" and cbc.chosen_option == "pool_light"
    assert_allclose(cbc.objective, 150.0, rtol=RTOL)


def test_firms_break_ties_without_costing_credit():
    # Both segments cost the pool 0.1 per yuan, so any split of 100 is optimal
    # (left to itself HiGHS fills B first); A's loans are half the size (twice
    # the firms per yuan), so the tie-break puts all 100 in A.
    problem = hand_problem([[0.1, 0.1], [0.1, 0.1]], demand=(100.0, 60.0),
                           firms_weight=np.array([2e-6, 1e-6]))
    r = solve(problem)
    assert_allclose(r.objective, 100.0, rtol=RTOL)
    assert_allclose([r.credit["A"], r.credit["B"]], [100.0, 0.0], atol=1e-9)


@pytest.mark.parametrize(
    ("kw", "credit", "row", "price"),
    [
        # sum x <= 5 P and P <= budget 10: 50 (pool claims 0.01 need only 0.5).
        # Loosening the row by one yuan of credit gives one yuan.
        ({"pool_leverage": 5.0}, 50.0, "pool_leverage", 1.0),
        # Guarantor pays 0.05 or 0.15 per yuan; CVaR_0.5 of two scenarios is the
        # larger, 0.15 sum x <= capital 15: 100 of the 200 demanded; 1 / 0.15 per yuan of capital.
        ({"guarantor": [[0.05, 0.05], [0.15, 0.15]], "guarantor_capital": 15.0, "budget": 1e3,
          "max_capital_injection": 0.0}, 100.0, "guarantor_cvar", 1.0 / 0.15),
        # Half of each loan guaranteed, guarantees <= 6 x capital 10: 0.5 sum x <= 60 -> 120;
        # one more yuan of guarantees allowed is two of credit.
        ({"share": 0.5, "guarantor_capital": 10.0, "guarantor_leverage": 6.0, "budget": 1e3,
          "max_capital_injection": 0.0}, 120.0, "guarantor_leverage", 2.0),
    ],
)
def test_leverage_and_guarantor_limits(kw, credit, row, price):
    r = solve(hand_problem([[0.01, 0.01], [0.01, 0.01]], **kw))
    assert_allclose(r.objective, credit, rtol=RTOL)
    assert r.binding[row]
    assert_allclose(r.shadow_prices[row], price, rtol=RTOL)


def random_problem(n_scenarios: int, n_segments: int = 5, n_options: int = 2, seed: int = 0,
                   alpha: float = 0.95, budget_share: float = 0.5,
                   capital_share: float = 10.0) -> AllocationProblem:
    """Vasicek one-factor default rates with noise, shared between pool, guarantor and bank.

    The budget is budget_share of the pool CVaR at full demand under the first
    option; the guarantor's capital is capital_share of its CVaR at full demand
    (ample by default), and the budget can buy no more of it.
    """
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
    capital = capital_share * empirical_cvar(guarantor_claims[:, :, 0] @ demand, alpha)
    return AllocationProblem(
        segments=tuple(f"seg{i}" for i in range(n_segments)),
        options=tuple(f"opt{k}" for k in range(n_options)),
        pool_claims=pool_claims,
        guarantor_claims=guarantor_claims,
        bank_loss=loss[:, :, None] * (1.0 - pool_share - guarantee),
        public_costs=rng.uniform(0.0, 0.001, (n_scenarios, n_segments, n_options)),
        guarantee_share=guarantee,
        demand=demand,
        bank_margin=rng.uniform(0.01, 0.04, n_segments),
        budget=budget_share * empirical_cvar(pool_claims[:, :, 0] @ demand, alpha),
        alpha=alpha,
        guarantor_capital=capital,
        guarantor_leverage=15.0,
        max_capital_injection=0.0,
    )


def test_lp_cvar_equals_empirical_cvar_at_the_optimum():
    # The pool is the LP's bound on zeta + sum u / ((1 - alpha) S); at the optimum
    # it is as small as the plan allows, so it must equal the sorted-sample CVaR.
    problem = random_problem(500, seed=1, alpha=0.99)
    r = solve(problem, method="full")
    assert r.binding["pool_cvar"] and r.binding["budget"] and r.shadow_prices["pool_cvar"] > 1
    losses = problem.pool_claims.reshape(500, -1) @ r.credit_by_option.ravel()
    assert_allclose(r.pool_size, empirical_cvar(losses, 0.99), rtol=RTOL)
    assert_allclose(r.tail_cvar["pool"], empirical_cvar(losses, 0.99), rtol=RTOL)


def test_pool_cvar_reports_the_plan_when_leverage_sets_the_pool():
    # sum x <= 5 P with budget 10: P = 10 and credit 50, spread so that the CVaR
    # (0.2 * 50 + 0.1 * max(xA, xB)) / 2 is at most 10 -- it is below 10 for
    # any split, so the pool_cvar limit does not bind even though P is spent.
    r = solve(hand_problem(CVAR_BINDS, pool_leverage=5.0))
    assert_allclose([r.objective, r.pool_size], [50.0, 10.0], rtol=RTOL)
    expected = (0.2 * 50 + 0.1 * max(r.credit["A"], r.credit["B"])) / 2
    assert_allclose(r.tail_cvar["pool"], expected, rtol=RTOL)
    assert r.binding["pool_leverage"] and not r.binding["pool_cvar"]


def test_empirical_cvar_by_hand():
    losses = np.array([4.0, 1.0, 10.0, 3.0, 2.0])
    # alpha n = 3.5: VaR is the 4th smallest (4); half of it is an atom in the
    # tail: (0.5 * 4 + 10) / (0.3 * 5) = 8.
    assert_allclose(empirical_cvar(losses, 0.7), 8.0, rtol=1e-12)
    # alpha n = 3 exactly (0.6 * 5 rounds above 3 in floating point): mean of the top two, 7.
    assert_allclose(empirical_cvar(losses, 0.6), 7.0, rtol=1e-12)
    # alpha n = 4.5: half of the 5th-smallest loss: 10.
    assert_allclose(empirical_cvar(losses, 0.9), 10.0, rtol=1e-12)
    # alpha n = 0.5: (0.5 * 1 + 2 + 3 + 4 + 10) / 4.5 = 4.333...
    assert_allclose(empirical_cvar(losses, 0.1), 19.5 / 4.5, rtol=1e-12)


def test_empirical_cvar_is_the_minimum_over_zeta():
    rng = np.random.default_rng(3)
    losses = rng.gamma(2.0, size=997)
    zetas = np.linspace(0.0, losses.max(), 20001)
    objective = zetas + np.maximum(losses[None, :] - zetas[:, None], 0.0).sum(axis=1) / (0.03 * losses.size)
    assert_allclose(empirical_cvar(losses, 0.97), objective.min(), rtol=1e-4)
    assert empirical_cvar(losses, 0.97) <= objective.min()


def test_cutting_plane_equals_full_lp():
    problem = random_problem(2000, seed=2, alpha=0.95, capital_share=0.3)
    full = solve(problem, method="full")
    cut = solve(problem, method="cutting_plane")
    assert full.method == "full" and cut.method == "cutting_plane"
    # Both tails bind with a price, so both sets of cuts shape the optimum.
    assert full.shadow_prices["pool_cvar"] > 1 and full.shadow_prices["guarantor_cvar"] > 1
    assert_allclose(cut.objective, full.objective, rtol=RTOL)
    assert_allclose(cut.pool_size, full.pool_size, rtol=RTOL)
    assert cut.chosen_option == full.chosen_option
    assert cut.n_cuts < full.n_cuts == 3 * 2000  # pool, guarantor and public-cost tails
    assert_allclose(cut.shadow_prices["budget"], full.shadow_prices["budget"], rtol=1e-5)


def test_budget_shadow_price_is_the_derivative():
    problem = random_problem(300, n_options=1, seed=4)
    r = solve(problem)
    step = 1e-4 * problem.budget
    more = solve(dataclasses.replace(problem, budget=problem.budget + step))
    assert r.shadow_prices["budget"] > 0
    assert_allclose((more.objective - r.objective) / step, r.shadow_prices["budget"], rtol=1e-4)


def test_frontier_credit_rises_with_budget():
    problem = random_problem(300, seed=5)
    budgets = np.linspace(0.0, 2.0, 6) * problem.budget
    ds, results = frontier(problem, budgets)
    assert all(r is not None for r in results)
    assert ds.sizes == {"budget": 6, "segment": 5}
    assert_array_equal(ds["status"].values, ["optimal"] * 6)
    supplied = ds["credit_supplied"].values
    assert np.all(np.diff(supplied) >= -RTOL * supplied.max())
    assert supplied[-1] > supplied[0]
    assert_allclose(ds["credit"].sum("segment").values, supplied, rtol=RTOL)
    assert ds["credit"].attrs["units"] == "yuan" and ds["budget"].attrs["units"] == "yuan"


def test_frontier_reports_infeasible_budgets():
    problem = hand_problem(CVAR_BINDS, min_credit=np.array([60.0, 60.0]))
    ds, results = frontier(problem, [10.0, 20.0])
    assert results[0] is None
    assert_array_equal(ds["status"].values, ["infeasible", "optimal"])
    assert np.isnan(ds["credit_supplied"].values[0])
    # The 60/60 floor needs CVaR (0.2 * 120 + 0.1 * 60) / 2 = 15; budget 20 allows
    # T with 0.125 T <= 20 -> 160 at 80/80.
    assert_allclose(ds["credit_supplied"].values[1], 160.0, rtol=RTOL)


def test_infeasible_budget_is_named():
    # The 60/60 floor needs a pool of 15 (see test_frontier_reports_infeasible_budgets).
    problem = hand_problem(CVAR_BINDS, min_credit=np.array([60.0, 60.0]))
    for method in ("full", "cutting_plane"):
        with pytest.raises(OptimizationError,
                           match=r"budget 10 yuan is below the smallest funding that lends the minimum "
                                 r"credit of 120 yuan: 15 yuan, i.e. a pool of 15,") as err:
            solve(problem, method=method)
        assert err.value.status == "infeasible"
        assert isinstance(err.value, ValueError)


def test_infeasible_guarantor_capital_is_named():
    # Guarantor payouts 0.15 per yuan in the worse scenario: a 60/60 floor needs 18 > 15 of capital,
    # and no injection is allowed; with injections, 3 more yuan of budget would do.
    problem = hand_problem([[0.01, 0.01], [0.01, 0.01]], guarantor=[[0.05, 0.05], [0.15, 0.15]],
                           guarantor_capital=15.0, budget=1e3, min_credit=np.array([60.0, 60.0]),
                           max_capital_injection=0.0)
    with pytest.raises(OptimizationError, match=r"minimum credit of 120 yuan whatever the budget"):
        solve(problem)
    r = solve(dataclasses.replace(problem, max_capital_injection=math.inf, budget=4.2))
    assert_allclose([r.capital_injection, r.pool_size], [3.0, 1.2], rtol=RTOL)


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"min_credit": np.array([120.0, 0.0])},
         r"min_credit for segment 'A' is 120 yuan, above its demand cap"),
        ({"min_credit": np.array([1.0, 0.0]), "bank_loss": [[0.05, 0.0]] * 4},
         r"bank participation rule .* segment 'A'"),
    ],
)
def test_unreachable_floor_is_named(kw, words):
    with pytest.raises(OptimizationError, match=words):
        solve(hand_problem(CVAR_BINDS, **kw))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alpha", 1.0),
        ("alpha", 0.0),
        ("budget", -1.0),
        ("budget", math.inf),
        ("demand", [-1.0, 100.0]),
        ("demand", [100.0]),
        ("pool_claims", np.full((4, 2, 1), np.nan)),
        ("pool_claims", np.zeros((4, 3, 1))),
        ("guarantor_claims", np.zeros((3, 2, 1))),
        ("bank_loss", np.full((4, 2, 1), -0.1)),
        ("public_costs", np.full((4, 2, 1), np.inf)),
        ("max_capital_injection", -1.0),
        ("loss_budget", math.nan),
        ("objective", "profit"),
        ("group_of", np.array([0, 1])),
        ("guarantee_share", [[1.5], [0.0]]),
        ("bank_margin", [0.0, np.nan]),
        ("guarantor_capital", -5.0),
        ("guarantor_leverage", 0.0),
        ("pool_leverage", -1.0),
        ("firms_weight", [1.0]),
        ("min_credit", [-1.0, 0.0]),
        ("segments", ("A", "A")),
        ("options", ()),
    ],
)
def test_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(hand_problem(CVAR_BINDS), **{field: value})


@pytest.mark.parametrize(("kw", "words"), [({"method": "simplex"}, "method"),
                                           ({"solver": "gurobi"}, "solver"),
                                           ({"time_limit": 0.0}, "time_limit")])
def test_solve_arguments_are_validated(kw, words):
    with pytest.raises(ValueError, match=words):
        solve(hand_problem(CVAR_BINDS), **kw)


def test_time_limit_without_a_plan_raises():
    with pytest.raises(OptimizationError, match="time_limit") as err:
        solve(random_problem(300, seed=6), time_limit=1e-9)
    assert err.value.status == "not_solved"


def test_empirical_cvar_validates():
    with pytest.raises(ValueError, match="alpha"):
        empirical_cvar(np.ones(3), 1.5)
    with pytest.raises(ValueError, match="losses"):
        empirical_cvar(np.ones((2, 2)), 0.5)
