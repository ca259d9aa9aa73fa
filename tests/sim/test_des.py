"""The SimPy twin (sim.twin) against the numba engine (sim.engine), and its
operational behaviour (claim queues, reviewers, approval lag).

Cross-checks compare means from independent random numbers: |des - engine| <
4 sqrt(se_des^2 + se_engine^2). A path-by-path check feeds the twin's own
draws to the engine's waterfall (`settle_given_defaults`) and expects the
same settlement to the yuan.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from models.scenario import PARTIES, load_scenario
from sim import run
from sim.engine.plan import build_portfolio, compile_plan
from sim.engine.run import settle_given_defaults
from sim.twin.draws import draw_path, life_pd
from sim.twin.processes import Operations, plan_terms, simulate_path, start_cohorts
from sim.twin.run import run_twin

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
DES_SEED = 17
# The engine runs at each scenario's own seed. (At other seeds sim.engine can crash on
# ip_pledge_97: kernels.recovery_fraction divides 0 by 0 when both gamma draws of a
# downturn Beta underflow, e.g. run(ip_pledge_97, n_paths=20_000, seed=29); reported.)
ENGINE_SEED = None
ENGINE_PATHS = 20_000
K = 4.0  # standard errors


def scenario(name: str, *overrides: str):
    return load_scenario(SCENARIOS / f"{name}.toml", list(overrides))


def assert_agree(des, eng, name: str, label: str = "") -> None:
    """Estimates `name` (and `name`_se, or `name` with _mean -> _se) within K combined SEs."""
    se_name = name.replace("_mean", "_se") if name.endswith("_mean") else f"{name}_se"
    d, e = np.atleast_1d(des[name].values), np.atleast_1d(eng[name].values)
    sd, se = np.atleast_1d(des[se_name].values), np.atleast_1d(eng[se_name].values)
    for j in range(d.size):
        if d[j] == e[j]:  # e.g. both exactly 0 (a party with no share, a never-seen event)
            continue
        tol = K * math.hypot(sd[j], se[j])
        assert abs(d[j] - e[j]) < tol, (
            f"{label}{name}[{j}]: des {d[j]:.6g} (se {sd[j]:.3g}) vs engine {e[j]:.6g} (se {se[j]:.3g}), "
            f"{abs(d[j] - e[j]) / tol * K:.2f} SE apart")


# DES paths per scenario: enough for ~3 % relative SE on party losses, all four in ~10 s.
CROSS_CHECK = [
    ("shijiazhuang_score_loan", 1500),  # pool 2:2:6 with guarantor, leverage, default-rate stop rule
    ("baoding_pool", 1500),             # bank 60 / pool 40, per-loan cap, compensation stop rule
    ("national_4321", 600),             # 4321: guarantor, re-guarantor, government; stress years
    ("ip_pledge_97", 2000),             # four parties, insurer and appraiser caps, downturn recovery
]


@pytest.mark.parametrize(("name", "n_des"), CROSS_CHECK)
def test_twin_agrees_with_engine(name, n_des):
    sc = scenario(name)
    des = run_twin(sc, n_paths=n_des, seed=DES_SEED)
    eng = run(sc, n_paths=ENGINE_PATHS, seed=ENGINE_SEED)
    assert des.attrs["engine"] == "des" and des.attrs["n_paths"] == n_des
    assert list(des.party.values) == list(PARTIES)
    np.testing.assert_array_equal(des.period.values, eng.period.values)
    for var in ("loss_mean", "gross_loss_mean", "default_rate_mean", "pool_exhaustion_prob",
                "stop_rule_prob"):
        assert_agree(des, eng, var, f"{name}: ")
    # the parties' losses add up to the gross loss on every path, hence in the mean
    assert float(des.loss_mean.sum()) == pytest.approx(float(des.gross_loss_mean), rel=1e-9)


# Scenario variants exercising every rule of the waterfall.
VARIANTS = [
    ("shijiazhuang_score_loan", ("contract.pool.size=5e6", "contract.pool.top_up='add'",
                                 "contract.pool.top_up_amount=2e6")),
    ("shijiazhuang_score_loan", ("contract.pool.size=5e6", "contract.pool.top_up='to_target'",
                                 "contract.pool.top_up_every_months=6", "simulation.period_months=6")),
    ("shijiazhuang_score_loan", ("contract.guarantor.capital=15e6", "contract.pool.cap_per_loan=3e5",
                                 "contract.pool.cumulative_cap=8e6", "default.copula='student_t'",
                                 "default.stress=[1.0, 3.0]")),
    ("baoding_pool", ("contract.stop_rule.default_rate=0.02", "contract.pool.size=1e7")),
    ("ip_pledge_97", ("contract.insurer.cap_total=1e7", "contract.appraiser.cap_total=3e6")),
    ("shanxi_special_fund", ("contract.guarantor.capital=3e7",
                             "policy.guarantee_compensation_cap_annual=1e6")),
]


@pytest.mark.parametrize(("name", "overrides"), VARIANTS)
def test_twin_settles_each_path_like_the_engine_waterfall(name, overrides):
    """Same defaults in, same money out: the SimPy processes and the numba
    waterfall agree to the yuan on every path (defaults of one month are given
    to the engine in the twin's tie order: start month, then loan)."""
    sc = scenario(name, *overrides)
    plan = compile_plan(sc, build_portfolio(sc))
    terms, cohorts, pd_life = plan_terms(plan), start_cohorts(plan), life_pd(plan)
    ops = Operations(reviewers=None, review_months=0.0, approval_months=0.0)
    rng = np.random.Generator(np.random.PCG64(DES_SEED))
    for _ in range(80):
        draws = draw_path(plan, rng, pd_life)
        got = simulate_path(plan, terms, ops, draws, cohorts)
        loans = np.flatnonzero(draws.month >= 0)
        loans = loans[np.argsort(plan.start[loans], kind="stable")]
        want = settle_given_defaults(plan, plan.loan_order[loans], draws.month[loans], draws.recovery[loans])
        np.testing.assert_allclose(got.party_loss, want.party_loss[0], rtol=1e-9, atol=1e-3)
        np.testing.assert_allclose(got.pool_balance, want.pool_balance[0], rtol=1e-9, atol=1e-3)
        assert got.gross_loss == pytest.approx(want.gross_loss[0], abs=1e-3)
        assert got.exhausted == want.exhausted[0]
        assert got.stop_month == want.stop_month[0]
        assert got.credit == pytest.approx(want.credit[0], abs=1e-3)
        assert got.default_rate == pytest.approx(want.n_defaults[0] / max(want.n_originated[0], 1.0),
                                                 abs=1e-12)
        assert got.compensation == pytest.approx(want.compensation[0], abs=1e-3)


def test_a_small_pool_runs_dry_as_often_as_in_the_engine():
    """Fails if the twin ignores the pool's finite balance (it would never be
    exhausted and would pay every claim in full)."""
    sc = scenario("shijiazhuang_score_loan", "contract.pool.size=2e6")
    des = run_twin(sc, n_paths=600, seed=DES_SEED)
    eng = run(sc, n_paths=ENGINE_PATHS, seed=ENGINE_SEED)
    assert float(eng.pool_exhaustion_prob) > 0.2  # the check has teeth
    assert_agree(des, eng, "pool_exhaustion_prob")
    assert_agree(des, eng, "loss_mean")
    assert_agree(des, eng, "pool_balance_mean")
    assert float(des.pool_balance_quantile.min()) >= 0.0


def low_and_high_pd(*overrides: str):
    low = "default.pd_annual={startup=0.02,growth=0.01,mature=0.005}"
    high = "default.pd_annual={startup=0.18,growth=0.09,mature=0.045}"
    return (scenario("shijiazhuang_score_loan", low, *overrides),
            scenario("shijiazhuang_score_loan", high, *overrides))


def test_reimbursement_waits_longer_under_a_heavier_claim_load():
    low, high = low_and_high_pd()
    one_low = run_twin(low, n_paths=200, seed=DES_SEED, reviewers=1, review_days=20.0)
    one_high = run_twin(high, n_paths=200, seed=DES_SEED, reviewers=1, review_days=20.0)
    three_high = run_twin(high, n_paths=200, seed=DES_SEED, reviewers=3, review_days=20.0)

    def gap(slow, fast):
        d = float(slow.reimbursement_delay_mean - fast.reimbursement_delay_mean)
        return d, K * math.hypot(float(slow.reimbursement_delay_se), float(fast.reimbursement_delay_se))

    delay, tol = gap(one_high, one_low)  # more claims, one reviewer: longer queue
    assert delay > tol, (delay, tol)
    delay, tol = gap(one_high, three_high)  # same claims, fewer reviewers: longer queue
    assert delay > tol, (delay, tol)
    assert float(one_high.claim_queue_length_mean.max()) > float(one_low.claim_queue_length_mean.max())
    # nobody is reimbursed before the claim lag plus one review
    lag = high.contract.pool.claim_lag_months
    assert float(one_high.reimbursement_delay.min()) >= lag + 20.0 / 30.0 - 1e-9


def test_unlimited_reviewers_reimburse_after_exactly_the_claim_lag():
    sc = scenario("baoding_pool")
    ds = run_twin(sc, n_paths=50, seed=DES_SEED)
    lag = sc.contract.pool.claim_lag_months
    np.testing.assert_allclose(ds.reimbursement_delay.values, lag)
    assert float(ds.reimbursement_delay_mean) == pytest.approx(lag)
    assert float(ds.reimbursement_delay_se) == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_array_equal(ds.claim_queue_length_mean.values, 0.0)


def test_an_approval_lag_can_only_halt_lending_earlier():
    """Draws do not depend on the operational arguments, so with one seed both
    runs see the same defaults; approving a week late means the stop rule is
    tested against less credit, so it fires no later on any path."""
    sc = scenario("shijiazhuang_score_loan")
    now = run_twin(sc, n_paths=200, seed=DES_SEED)
    late = run_twin(sc, n_paths=200, seed=DES_SEED, approval_days=7.0)
    assert float(late.credit_supplied_mean) <= float(now.credit_supplied_mean)
    assert float(late.stop_rule_prob) >= float(now.stop_rule_prob)


def test_runs_are_reproducible_and_report_progress():
    sc = scenario("ip_pledge_97")
    calls = []
    a = run_twin(sc, n_paths=30, seed=5, reviewers=1, review_days=10.0, progress=calls.append)
    b = run_twin(sc, n_paths=30, seed=5, reviewers=1, review_days=10.0)
    c = run_twin(sc, n_paths=30, seed=6, reviewers=1, review_days=10.0)
    assert calls == [1] * 30
    for var in a.data_vars:
        np.testing.assert_array_equal(a[var].values, b[var].values, err_msg=var)
    assert not np.array_equal(a.loss_mean.values, c.loss_mean.values)
    assert a.attrs["seed"] == 5 and a.attrs["riskpool_version"]
    assert a.attrs["paths_per_second"] > 0
    assert a.reimbursement_delay.dims == ("quantile",)
    assert a.pool_balance_quantile.dims == ("period", "quantile")


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [({"reviewers": 0}, "reviewers"), ({"reviewers": 1.5}, "reviewers"),
     ({"review_days": -1.0}, "review_days"), ({"approval_days": 30.0}, "approval_days"),
     ({"n_paths": 0}, "n_paths")],
)
def test_bad_operational_arguments_name_the_parameter(kwargs, word):
    with pytest.raises(ValueError, match=word):
        run_twin(scenario("ip_pledge_97"), **{"n_paths": 1, **kwargs})
