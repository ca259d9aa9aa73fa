"""Property tests on random contracts, portfolios and defaults: money is
conserved on every path, no balance goes negative, no party pays beyond its
share (the bank takes what others cannot pay)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from models.scenario import PARTIES, load_scenario
from sim.engine.plan import compile_plan
from sim.engine.run import settle_given_defaults
from tests.helpers import equal_loans, make_scenario

money = st.one_of(st.just(math.inf), st.floats(0, 5e6))


@st.composite
def cases(draw):
    weights = draw(st.lists(st.integers(0, 10), min_size=len(PARTIES), max_size=len(PARTIES)))
    weights[0] += 1  # the bank keeps something, so the shares are never all zero
    total = sum(weights)
    shares = {p: w / total for p, w in zip(PARTIES, weights)}
    shares["bank"] = 1.0 - sum(v for p, v in shares.items() if p != "bank")
    lag = st.integers(0, 12)
    contract = {
        "shares": {"loan": shares},
        "pool": {"size": draw(st.floats(0, 5e6)), "cap_per_loan": draw(money), "cumulative_cap": draw(money),
                 "claim_lag_months": draw(lag), "top_up": draw(st.sampled_from(["none", "add", "to_target"])),
                 "top_up_amount": draw(st.floats(0, 2e6)), "top_up_every_months": draw(st.integers(1, 24))},
        "guarantor": {"capital": draw(money),
                      "leverage": draw(st.one_of(st.just(math.inf), st.floats(0.5, 20))),
                      "lag_months": draw(lag), "cap_per_loan": draw(money)},
        "insurer": {"cap_per_loan": draw(money), "cap_total": draw(money), "lag_months": draw(lag)},
        "appraiser": {"cap_per_loan": draw(money), "cap_total": draw(money), "lag_months": draw(lag)},
        "reguarantor": {"cap_per_loan": draw(money), "cap_total": draw(money), "lag_months": draw(lag)},
        "stop_rule": {"default_rate": draw(st.one_of(st.none(), st.floats(0.01, 1))),
                      "compensation_rate": draw(st.one_of(st.none(), st.floats(0.01, 1)))},
    }
    contract["stop_rule"] = {k: v for k, v in contract["stop_rule"].items() if v is not None}
    n = draw(st.integers(1, 8))
    term = draw(st.integers(1, 36))
    amort = draw(st.sampled_from(["bullet", "equal_principal"]))
    starts = np.array(draw(st.lists(st.integers(0, 23), min_size=n, max_size=n)))
    amounts = np.array(draw(st.lists(st.floats(1e4, 1e7), min_size=n, max_size=n)))
    defaults = []
    for i in range(n):
        life = min(term, 48 - starts[i])
        if draw(st.booleans()):
            defaults.append((i, int(starts[i] + draw(st.integers(1, life))), draw(st.floats(0, 1))))
    return contract, amort, term, starts, amounts, defaults


@settings(max_examples=150, deadline=None)
@given(cases())
def test_money_is_conserved_and_no_one_overpays(case):
    contract, amort, term, starts, amounts, defaults = case
    sc = make_scenario(contract=contract, products={"loan": {"amortization": amort}},
                       simulation={"horizon_months": 48, "period_months": 3})
    pf = equal_loans(len(starts), 0.02, term=term, start=starts)
    pf = pf.__class__(**{**pf.__dict__, "amount": amounts})
    plan = compile_plan(sc, pf)
    loans, months, recs = zip(*defaults) if defaults else ((), (), ())
    out = settle_given_defaults(plan, list(loans), list(months), list(recs))
    loss = out.party_loss[0]
    gross = out.gross_loss[0]
    assert math.isclose(loss.sum(), gross, rel_tol=1e-9, abs_tol=1e-6)
    assert (out.pool_balance >= -1e-6).all()
    assert (out.guarantor_capital >= -1e-6).all()
    # each party other than the bank pays at most its share of the (net) loss
    shares = plan.shares[0]
    for j, party in enumerate(PARTIES):
        if party != "bank":
            assert loss[j] <= shares[j] * gross * (1 + 1e-9) + 1e-6, party
    assert loss[0] >= shares[0] * gross * (1 - 1e-9) - 1e-6
    # the pool never pays more than its money: initial + top-ups + recoveries returned
    assert (loss >= -1e-6).all()


def test_unlimited_money_splits_every_path_by_the_ratios():
    sc = load_scenario("scenarios/shijiazhuang_score_loan.toml", [
        "contract.pool.size=inf", "contract.guarantor.capital=inf", "contract.guarantor.leverage=inf",
        "contract.stop_rule.default_rate=1.0"])
    ds = sim.run(sc, n_paths=4000)
    shares = sc.contract.shares["score_loan"]
    for party in PARTIES:
        expected = getattr(shares, party) * float(ds.gross_loss_mean)
        se = float(ds.loss_se.sel(party=party))
        got = float(ds.loss_mean.sel(party=party))
        assert abs(got - expected) <= 4 * se + 1e-6 * float(ds.gross_loss_mean), party
        # stronger than Monte Carlo error: with nobody short of money the split is exact per path
        assert math.isclose(got, expected, rel_tol=1e-12, abs_tol=1e-6), party
    assert float(ds.pool_exhaustion_prob) == 0.0


def test_parties_add_up_to_gross_loss_in_every_seed_scenario():
    for name in ("shijiazhuang_score_loan", "baoding_pool", "ip_pledge_97", "shanxi_special_fund",
                 "national_4321"):
        ds = sim.run(load_scenario(f"scenarios/{name}.toml"), n_paths=2000)
        assert math.isclose(float(ds.loss_mean.sum()), float(ds.gross_loss_mean), rel_tol=1e-12), name
