"""Hand-worked waterfalls: given defaults, months and recoveries, the exact
payment of every party, to the yuan. Three 1 M yuan bullet loans unless said."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.policy import bank_reward, guarantee_compensation, interest_subsidy
from models.scenario import PARTIES, load_scenario
from sim.engine.plan import compile_plan
from sim.engine.run import settle_given_defaults
from tests.helpers import equal_loans, make_scenario

M = 1_000_000.0
SHARES_226 = {"bank": 0.2, "pool": 0.2, "guarantor": 0.6}


def settle(contract=None, defaults=(), start=0, term=24, horizon=24, n=3, policy=None, pricing=None,
           rate=np.nan, firms=None):
    sections = {"contract": contract or {}, "simulation": {"horizon_months": horizon, "period_months": 1}}
    if policy:
        sections["policy"] = policy
    if pricing:
        sections["pricing"] = pricing
    sc = make_scenario(**sections)
    pf = equal_loans(n, 0.01, amount=M, term=term, start=start, firms=firms)
    if not np.isnan(rate):
        pf = pf.__class__(**{**pf.__dict__, "rate": np.full(n, rate)})
    plan = compile_plan(sc, pf)
    loans, months, recs = zip(*defaults) if defaults else ((), (), ())
    return plan, settle_given_defaults(plan, list(loans), list(months), list(recs))


def losses(out):
    return dict(zip(PARTIES, out.party_loss[0]))


def test_simple_split_with_recovery():
    _, out = settle({"shares": {"loan": SHARES_226}, "pool": {"size": 10 * M}}, [(0, 5, 0.25)])
    got = losses(out)
    assert got["bank"] == pytest.approx(150_000, abs=1e-6)
    assert got["pool"] == pytest.approx(150_000, abs=1e-6)
    assert got["guarantor"] == pytest.approx(450_000, abs=1e-6)
    assert out.gross_loss[0] == pytest.approx(750_000, abs=1e-6)
    assert not out.exhausted[0]


def test_pool_runs_dry_mid_way_and_the_bank_carries_the_rest():
    contract = {"shares": {"loan": SHARES_226}, "pool": {"size": 300_000, "claim_lag_months": 1}}
    _, out = settle(contract, [(0, 2, 0.0), (1, 4, 0.0), (2, 6, 0.0)])
    got = losses(out)
    # claims at months 3, 5, 7: the pool pays 200k, then the 100k left, then nothing
    # (balances below are at the end of months 1, 2, 3, 4, 5, 24)
    assert got["pool"] == pytest.approx(300_000, abs=1e-6)
    assert got["bank"] == pytest.approx(3 * 200_000 + 100_000 + 200_000, abs=1e-6)
    assert got["guarantor"] == pytest.approx(1_800_000, abs=1e-6)
    assert out.exhausted[0]
    assert out.short[0, PARTIES.index("pool")] and out.short[0].sum() == 1
    np.testing.assert_allclose(out.pool_balance[0, [0, 1, 2, 3, 4, 23]],
                               [300_000, 300_000, 100_000, 100_000, 0, 0])


def test_recoveries_return_pro_rata_and_refill_the_pool():
    # recovery arrives 3 months after default (the guarantor's lag is the longest)
    contract = {"shares": {"loan": SHARES_226}, "pool": {"size": 300_000, "claim_lag_months": 1}}
    _, out = settle(contract, [(0, 2, 0.5), (1, 4, 0.5), (2, 6, 0.5)])
    got = losses(out)
    # month 3: pool pays 200k (100k left); month 5: claim 2 takes the 100k, then loan 0's
    # recovery returns 100k; month 7: claim 3 gets 100k, then loan 1 returns 50k; month 9: +50k
    assert got["pool"] == pytest.approx((200_000 + 100_000 + 100_000) * 0.5, abs=1e-6)
    assert got["bank"] == pytest.approx((600_000 + 100_000 + 100_000) * 0.5, abs=1e-6)
    assert got["guarantor"] == pytest.approx(1_800_000 * 0.5, abs=1e-6)
    assert out.gross_loss[0] == pytest.approx(1_500_000, abs=1e-6)
    np.testing.assert_allclose(out.pool_balance[0, [2, 4, 6, 8]], [100_000, 100_000, 50_000, 100_000])


def test_guarantor_capital_exhausted():
    contract = {"shares": {"loan": SHARES_226}, "pool": {"size": 10 * M}, "guarantor": {"capital": M}}
    _, out = settle(contract, [(0, 2, 0.0), (1, 4, 0.0), (2, 6, 0.0)])
    got = losses(out)
    assert got["guarantor"] == pytest.approx(M, abs=1e-6)
    assert got["bank"] == pytest.approx(600_000 + 200_000 + 600_000, abs=1e-6)
    assert out.guarantor_capital[0, -1] == pytest.approx(0.0, abs=1e-6)
    assert out.short[0, PARTIES.index("guarantor")] and not out.short[0, PARTIES.index("pool")]


def test_guarantor_leverage_limits_which_loans_are_guaranteed():
    contract = {"shares": {"loan": SHARES_226}, "pool": {"size": 10 * M},
                "guarantor": {"capital": M, "leverage": 1.5}}
    plan, out = settle(contract, [(2, 3, 0.0)])
    in_portfolio_order = plan.guaranteed[np.argsort(plan.loan_order)]
    np.testing.assert_array_equal(in_portfolio_order, [True, True, False])  # 0.6 M each, limit 1.5 M
    assert losses(out)["bank"] == pytest.approx(800_000, abs=1e-6)
    assert losses(out)["guarantor"] == 0.0


@pytest.mark.parametrize("caps, pool_paid", [({"cap_per_loan": 150_000}, 450_000),
                                             ({"cumulative_cap": 250_000}, 250_000)])
def test_pool_caps(caps, pool_paid):
    contract = {"shares": {"loan": SHARES_226}, "pool": {"size": 10 * M, **caps}}
    _, out = settle(contract, [(0, 2, 0.0), (1, 4, 0.0), (2, 6, 0.0)])
    got = losses(out)
    assert got["pool"] == pytest.approx(pool_paid, abs=1e-6)
    assert got["bank"] == pytest.approx(600_000 + 600_000 - pool_paid, abs=1e-6)
    assert not out.exhausted[0]
    # a per-loan cap is the contract, not money running out; a cumulative cap reached is
    assert out.short[0, PARTIES.index("pool")] == ("cumulative_cap" in caps)


def test_insurer_total_cap_falls_back_to_bank():
    contract = {"shares": {"loan": {"bank": 0.03, "pool": 0.4, "insurer": 0.45, "appraiser": 0.12}},
                "pool": {"size": 10 * M}, "insurer": {"cap_total": 700_000},
                "appraiser": {"cap_per_loan": 100_000}}
    _, out = settle(contract, [(0, 2, 0.0), (1, 4, 0.0)])
    got = losses(out)
    assert got["insurer"] == pytest.approx(700_000, abs=1e-6)
    assert got["appraiser"] == pytest.approx(200_000, abs=1e-6)
    assert got["bank"] == pytest.approx(60_000 + 200_000 + 40_000, abs=1e-6)
    assert out.short[0, PARTIES.index("insurer")] and not out.short[0, PARTIES.index("appraiser")]


def test_stop_rule_stops_later_loans():
    contract = {"shares": {"loan": {"bank": 1.0}}, "stop_rule": {"default_rate": 0.4}}
    _, out = settle(contract, [(0, 3, 0.0), (2, 12, 0.0)], start=np.array([0, 0, 10]))
    # month 3: 1 M defaulted of 2 M originated = 50 % > 40 %: loan 2 (month 10) is never made
    assert out.stop_month[0] == 3
    assert out.n_defaults[0] == 1
    assert out.credit[0] == pytest.approx(2 * M)
    assert out.gross_loss[0] == pytest.approx(M)


def test_compensation_rate_stop_rule():
    contract = {"shares": {"loan": SHARES_226}, "pool": {"size": 10 * M},
                "stop_rule": {"compensation_rate": 0.25}}
    _, out = settle(contract, [(0, 3, 0.0)], start=np.array([0, 0, 10]))
    # guarantor pays 600k at month 6 -> 30 % of the 2 M originated: stop at month 6
    assert out.stop_month[0] == 6
    assert out.credit[0] == pytest.approx(2 * M)


@pytest.mark.parametrize("mode, second_paid, exhausted", [("none", 0.0, True), ("add", 200_000, False),
                                                          ("to_target", 200_000, False)])
def test_top_up_arrives_between_two_claims(mode, second_paid, exhausted):
    contract = {"shares": {"loan": {"bank": 0.8, "pool": 0.2}},
                "pool": {"size": 200_000, "claim_lag_months": 1, "top_up": mode,
                         "top_up_amount": 500_000, "top_up_every_months": 6}}
    _, out = settle(contract, [(0, 3, 0.0), (1, 7, 0.0)])
    assert losses(out)["pool"] == pytest.approx(200_000 + second_paid, abs=1e-6)
    assert out.exhausted[0] == exhausted
    if mode == "add":
        np.testing.assert_allclose(out.pool_balance[0, [3, 5, 7, 11]], [0, 500_000, 300_000, 800_000])


def test_shanxi_subsidy_formula():
    # 50 % of interest, at most 3 % of principal (seed 004)
    assert interest_subsidy(50_000, M, 0.5, 0.03) == pytest.approx(25_000)
    assert interest_subsidy(80_000, M, 0.5, 0.03) == pytest.approx(30_000)


def test_shanxi_guarantee_compensation_reproduces_seed_figure():
    sc = load_scenario("scenarios/shanxi_special_fund.toml")
    pol = sc.policy
    paid = guarantee_compensation(2_792_600, pol.guarantee_compensation_rate, math.inf)
    assert round(paid / 1e4) * 1e4 == 360_000  # 0.36 M on a 2.7926 M payout (seed 004)
    assert bank_reward(250e6, pol.bank_reward_step, pol.bank_reward_amount) == 400_000


def test_fiscal_flows_on_a_path():
    # two loans of one firm (cap 40k per firm), 5 % rate, 12 months bullet; loan 1 defaults in month 7
    policy = {"interest_subsidy_share": 0.5, "interest_subsidy_cap_principal": 0.03,
              "interest_subsidy_cap_firm": 40_000, "guarantee_compensation_rate": 0.129,
              "bank_reward_step": 1e6, "bank_reward_amount": 1_000}
    contract = {"shares": {"loan": {"bank": 0.2, "guarantor": 0.8}}, "guarantor": {"lag_months": 2}}
    _, out = settle(contract, [(1, 7, 0.0)], term=12, horizon=12, n=2, policy=policy, rate=0.05,
                    firms=np.array([0, 0]))
    # loan 0: 50k interest -> 25k; loan 1: 6 months paid = 25k interest -> 12.5k; firm cap 40k
    assert out.subsidy[0] == pytest.approx(37_500 if 37_500 < 40_000 else 40_000)
    assert out.compensation[0] == pytest.approx(0.129 * 800_000)
    assert out.reward[0] == pytest.approx(2 * 1_000)  # 2 M originated in year 1
    assert out.fiscal_cost[0] == pytest.approx(37_500 + 0.129 * 800_000 + 2_000)


def test_firm_cap_binds_across_loans():
    policy = {"interest_subsidy_share": 0.5, "interest_subsidy_cap_principal": 0.03,
              "interest_subsidy_cap_firm": 40_000}
    _, out = settle({"shares": {"loan": {"bank": 1.0}}}, [], term=12, horizon=12, n=2, policy=policy,
                    rate=0.05, firms=np.array([0, 0]))
    assert out.subsidy[0] == pytest.approx(40_000)  # 2 x 25k capped at 40k per firm


def test_recovery_waits_only_for_parties_that_pay():
    # the insurer has no share, so its 12-month lag must not hold back the pool's refill
    contract = {"shares": {"loan": {"bank": 0.8, "pool": 0.2}}, "insurer": {"lag_months": 12},
                "pool": {"size": 200_000, "claim_lag_months": 1}}
    sc = make_scenario(contract=contract, products={"loan": {"recovery_lag_months": 1}},
                       simulation={"horizon_months": 24, "period_months": 1})
    plan = compile_plan(sc, equal_loans(2, 0.01, amount=M, term=24))
    out = settle_given_defaults(plan, [0, 1], [1, 6], [0.5, 0.5])
    # month 2: pool pays 200k, then loan 0's recovery returns 100k; month 7: pays 100k... of 200k
    got = losses(out)
    assert got["pool"] == pytest.approx(150_000, abs=1e-6)
    assert got["bank"] == pytest.approx(850_000, abs=1e-6)


def test_claims_of_one_month_are_paid_in_the_books_order_when_the_pool_runs_short():
    # rows 0 and 1 default in month 4; a 1.5 M pool pays in full whichever claim comes first. Row 0 is
    # in sector 1, so the engine's own loan order (by sector) puts row 1 first: the book's order
    # must win. Row 0 recovers nothing, row 1 half, so the order shows in the pool's loss.
    sc = make_scenario(contract={"shares": {"loan": {"bank": 0.0, "pool": 1.0}},
                                 "pool": {"size": 1.5 * M, "claim_lag_months": 1}},
                       products={"loan": {"recovery_mean": 0.0, "recovery_lag_months": 6}},
                       simulation={"horizon_months": 24, "period_months": 1})
    pf = equal_loans(2, 0.01, amount=M, term=24, n_sectors=2)
    pf = pf.__class__(**{**pf.__dict__, "sector": np.array([1, 0], np.int32), "amount": np.array([M, 3 * M])})
    plan = compile_plan(sc, pf)
    assert list(plan.loan_order) == [1, 0]  # the engine's order is not the book's
    out = settle_given_defaults(plan, [0, 1], [4, 4], [0.0, 0.5])
    got = losses(out)
    # row 0 first: the pool pays its 1 M and 0.5 M of row 1's 3 M, then gets back half of the 0.5 M
    assert got["pool"] == pytest.approx(1 * M + 0.5 * M * 0.5, abs=1e-6)
    assert got["bank"] == pytest.approx(2.5 * M * 0.5, abs=1e-6)
    assert out.gross_loss[0] == pytest.approx(M + 1.5 * M, abs=1e-6)
    with pytest.raises(ValueError, match="defaults at most once"):
        settle_given_defaults(plan, [0, 0], [4, 5], [0.0, 0.0])
