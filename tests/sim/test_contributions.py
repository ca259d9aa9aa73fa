"""Euler risk contributions: they add up to each target's ES and VaR, match a
brute-force per-loan computation and the exact contributions of independent
loans, and do not depend on threads."""

from __future__ import annotations

import numpy as np
import pytest

import sim
import sim.scale.contributions
from models.scenario import PARTIES
from sim.engine.lanes import lanes_for
from sim.engine.plan import compile_plan
from sim.engine.run import RunSpec
from sim.risk import estimators
from sim.scale.runs import segment_losses_by_path, simulate_runs
from tests.helpers import equal_loans, make_scenario

QUANTILES = [0.9, 0.99]


def _totals(ds, name):
    """(ES, VaR) of target `name` ("gross" or a party), dims (quantile,)."""
    if name == "gross":
        return ds["gross_loss_es"].values, ds["gross_loss_quantile"].values
    return ds["loss_es"].sel(party=name).values, ds["loss_quantile"].sel(party=name).values


def test_contributions_add_up_to_every_targets_es_and_var_with_a_finite_pool_and_stop_rule():
    sc = sim.load_scenario("scenarios/baoding_pool.toml",
                           ["simulation.quantiles=[0.5,0.9,0.99]", "contract.stop_rule.default_rate=0.03",
                            "contract.pool.size=10e6"])
    ds = sim.run(sc, n_paths=3000, seed=5, contributions=("sector", "segment"))
    assert ds["stop_rule_prob"] > 0 and ds["pool_exhaustion_prob"] > 0  # the hard cases are exercised
    for by in ("sector", "segment"):
        for name in ("gross", *PARTIES):
            es, var = _totals(ds, name)
            total = ds[f"contribution_es_{by}"].sel(loss_of=name).sum(by).values
            np.testing.assert_allclose(total, es, rtol=1e-12, atol=1e-6)
            window = ds[f"contribution_var_{by}"].sel(loss_of=name).sum(by).values
            np.testing.assert_allclose(window, var, rtol=1e-12, atol=1e-6)
            assert (ds[f"contribution_es_{by}_se"].sel(loss_of=name).values >= 0).all()


def test_per_loan_contributions_equal_a_brute_force_loans_by_paths_computation():
    sc = make_scenario(default={"rho_systematic": 0.2, "rho_sector": 0.1},
                       products={"loan": {"amortization": "equal_principal", "recovery_mean": 0.4,
                                          "recovery_sd": 0.2, "recovery_downturn": 0.5,
                                          "recovery_lag_months": 3}},
                       contract={"shares": {"loan": {"bank": 0.3, "government": 0.7}}},
                       simulation={"quantiles": [0.95, 0.99], "horizon_months": 24})
    pf = equal_loans(60, np.linspace(0.02, 0.2, 60), term=18, start=np.arange(60) % 6, n_sectors=3)
    ds = sim.run(sc, n_paths=4000, seed=11, portfolio=pf, contributions=("loan",))
    spec = RunSpec.resolve(sc, n_paths=4000, seed=11, portfolio=pf)
    [out] = simulate_runs([spec])
    # every loan its own segment: a loans x paths array, from the loss-only kernel (no waterfall)
    by_loan = segment_losses_by_path(spec, spec.plan.loan_order, len(pf))
    np.testing.assert_allclose(by_loan.sum(axis=1), out.gross_loss, rtol=1e-12)
    for name, x, share in [("gross", out.gross_loss, 1.0), ("bank", out.party_loss[:, 0], 0.3),
                           ("government", out.party_loss[:, PARTIES.index("government")], 0.7)]:
        for q in (0.95, 0.99):
            a = estimators.es_selection(x, q).coefficients(x)
            parts = share * by_loan
            expected = a @ parts
            expected_se = np.sqrt((a[:, None] ** 2 * (parts - expected) ** 2).sum(axis=0))
            got = ds["contribution_es_loan"].sel(loss_of=name, quantile=q)
            np.testing.assert_allclose(got.values, expected, rtol=1e-9, atol=1e-3)
            np.testing.assert_allclose(ds["contribution_es_loan_se"].sel(loss_of=name, quantile=q).values,
                                       expected_se, rtol=1e-6, atol=1e-3)
            window, scale = estimators.var_selection(x, q)
            np.testing.assert_allclose(ds["contribution_var_loan"].sel(loss_of=name, quantile=q).values,
                                       scale * (window.coefficients(x) @ parts), rtol=1e-9, atol=1e-3)


def _poisson_binomial(p: np.ndarray) -> np.ndarray:
    """P(N = k), k = 0..n, of a sum of independent Bernoulli(p_i)."""
    dist = np.array([1.0])
    for pi in p:
        dist = np.concatenate([dist * (1 - pi), [0.0]]) + np.concatenate([[0.0], dist * pi])
    return dist


def test_independent_loans_match_their_exact_es_contributions():
    sc = make_scenario(simulation={"quantiles": [0.95]})
    pf = equal_loans(40, np.array([0.02, 0.05, 0.1, 0.2])[np.arange(40) % 4], n_sectors=4)  # PD by sector
    plan = compile_plan(sc, pf)
    back = np.empty_like(plan.loan_order)
    back[plan.loan_order] = np.arange(40)
    hazard, start, life = plan.hazard[back], plan.start[back], plan.life[back]
    p = -np.expm1(-hazard * (plan.clock[start + life] - plan.clock[start]))  # lifetime PD, portfolio order
    q = 0.95
    dist = _poisson_binomial(p)
    cdf = np.cumsum(dist)
    k = int(np.searchsorted(cdf, q))  # VaR in defaults
    beta = (1 - q) - (1 - cdf[k])
    exact = np.empty(40)
    for i in range(40):
        rest = _poisson_binomial(np.delete(p, i))
        exact[i] = 1e6 * p[i] * (rest[k:].sum() + beta * rest[k - 1] / dist[k]) / (1 - q)
    n = 40_000
    assert min(abs(cdf[k] - q), abs(cdf[k - 1] - q)) > 5 * np.sqrt(q * (1 - q) / n)  # the VaR is unambiguous
    ds = sim.run(sc, n_paths=n, seed=3, portfolio=pf, contributions=("sector",))
    assert ds["gross_loss_quantile"].item() == k * 1e6
    got = ds["contribution_es_sector"].sel(loss_of="gross", quantile=q).values
    se = ds["contribution_es_sector_se"].sel(loss_of="gross", quantile=q).values
    truth = np.array([exact[pf.sector == s].sum() for s in range(4)])
    assert (np.abs(got - truth) < 4 * se).all(), (got, truth, se)
    assert (se < 0.1 * truth).all()  # and the test has power


def test_a_homogeneous_book_gives_equal_contributions_within_their_standard_errors():
    sc = make_scenario(default={"rho_systematic": 0.25}, simulation={"quantiles": [0.99]})
    pf = equal_loans(30, 0.05)
    ds = sim.run(sc, n_paths=20_000, seed=8, portfolio=pf, contributions=("loan",))
    c = ds["contribution_es_loan"].sel(loss_of="gross", quantile=0.99).values
    se = ds["contribution_es_loan_se"].sel(loss_of="gross", quantile=0.99).values
    assert np.all(np.abs(c - c.mean()) < 4.5 * se)
    assert np.all(se < 0.2 * c.mean())


def test_contributions_do_not_depend_on_threads_batches_and_add_up_under_importance_sampling(monkeypatch):
    sc = sim.load_scenario("scenarios/shijiazhuang_score_loan.toml", ["simulation.tail=pool_dry"])
    one = sim.run(sc, n_paths=2000, seed=4, threads=1, block_size=300, contributions=("stage",))
    assert lanes_for(2) == 2  # the second run draws on two lanes, in batches of about 50 defaults
    monkeypatch.setattr(sim.scale.contributions, "DEFAULTS_PER_BATCH", 50)
    two = sim.run(sc, n_paths=2000, seed=4, threads=2, contributions=("stage",))
    for name in ("contribution_es_stage", "contribution_es_stage_se", "contribution_var_stage"):
        np.testing.assert_array_equal(one[name].values, two[name].values)
    assert one.attrs["effective_paths"] < 2000  # the paths are weighted
    for name in ("gross", "pool", "bank"):
        es, _ = _totals(one, name)
        np.testing.assert_allclose(one["contribution_es_stage"].sel(loss_of=name).sum("stage"), es,
                                   rtol=1e-12, atol=1e-6)


def test_an_unknown_grouping_is_refused_before_anything_runs():
    sc = make_scenario()
    with pytest.raises(ValueError, match="unknown; allowed: segment, sector, stage, product, loan"):
        sim.run(sc, n_paths=10, contributions=("branch",))
