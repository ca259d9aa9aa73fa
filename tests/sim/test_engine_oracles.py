"""The default engine against closed-form truth: binomial (independent
defaults), Vasicek (large homogeneous portfolio), PD-curve marginals, stress.
Tolerances are 4 standard errors of the estimator (plus, for Vasicek, a
stated granularity allowance)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sim.engine.lanes import loss_block
from sim.engine.plan import compile_plan
from sim.engine.run import run_key, simulate_paths
from sim.engine.sampling import BATCH, needs_months
from tests.helpers import equal_loans, make_scenario

METHODS = ["sparse", "dense"]


def counts(scenario, portfolio, n_paths, seed=11, method="sparse"):
    plan = compile_plan(scenario, portfolio, method)
    return simulate_paths(plan, n_paths, seed, block_size=4096)


@pytest.mark.parametrize("method", METHODS)
def test_independent_defaults_are_binomial(method):
    n_loans, pd, n_paths = 200, 0.05, 20_000
    sc = make_scenario()
    out = counts(sc, equal_loans(n_loans, pd), n_paths, method=method)
    k = out.n_defaults.astype(float)
    binom = stats.binom(n_loans, pd)
    # mean
    assert abs(k.mean() - binom.mean()) < 4 * k.std(ddof=1) / math.sqrt(n_paths)
    # variance: SE of the sample variance from the fourth central moment
    mu4 = (binom.moment(4) - 4 * binom.mean() * binom.moment(3) + 6 * binom.mean() ** 2 * binom.moment(2)
           - 3 * binom.mean() ** 4)
    var_se = math.sqrt((mu4 - binom.var() ** 2) / n_paths)
    assert abs(k.var(ddof=1) - binom.var()) < 4 * var_se
    # a tail probability
    threshold = 17
    p_true = binom.sf(threshold - 1)
    p_hat = (k >= threshold).mean()
    assert abs(p_hat - p_true) < 4 * math.sqrt(p_true * (1 - p_true) / n_paths)


@pytest.mark.parametrize("method", METHODS)
def test_two_year_lifetime_pd_follows_the_curve(method):
    # F(24) = 1 - (1 - pd)^2 for a constant hazard with no stress
    n_loans, pd, n_paths = 100, 0.04, 10_000
    sc = make_scenario(simulation={"horizon_months": 24})
    out = counts(sc, equal_loans(n_loans, pd, term=24), n_paths, method=method)
    p_life = 1 - (1 - pd) ** 2
    k = out.n_defaults
    assert abs(k.mean() - n_loans * p_life) < 4 * math.sqrt(n_loans * p_life * (1 - p_life) / n_paths)


def vasicek_quantile(pd, rho, q):
    return stats.norm.cdf((stats.norm.ppf(pd) + math.sqrt(rho) * stats.norm.ppf(q)) / math.sqrt(1 - rho))


def test_large_homogeneous_portfolio_matches_vasicek():
    n_loans, pd, rho, n_paths = 10_000, 0.02, 0.1, 20_000
    sc = make_scenario(default={"rho_systematic": rho})
    out = counts(sc, equal_loans(n_loans, pd), n_paths)
    loss = np.sort(out.gross_loss / (n_loans * 1e6))  # LGD 1: loss fraction = default fraction
    for q in (0.5, 0.9, 0.99):
        truth = vasicek_quantile(pd, rho, q)
        est = loss[math.ceil(n_paths * q) - 1]
        # MC error of the empirical quantile: SE = sqrt(q(1-q)/n) / density at the quantile
        density = stats.norm.pdf((math.sqrt(1 - rho) * stats.norm.ppf(truth) - stats.norm.ppf(pd))
                                 / math.sqrt(rho)) \
            * math.sqrt(1 - rho) / math.sqrt(rho) / stats.norm.pdf(stats.norm.ppf(truth))
        mc_se = math.sqrt(q * (1 - q) / n_paths) / density
        # granularity: finite N adds binomial noise of sd sqrt(p(1-p)/N) around the conditional PD
        granularity = 2 * math.sqrt(truth * (1 - truth) / n_loans)
        assert abs(est - truth) < 4 * mc_se + granularity, (q, est, truth, mc_se, granularity)


def test_student_t_copula_has_fatter_tails_than_gaussian():
    n_loans, pd, rho, n_paths = 2000, 0.02, 0.1, 20_000
    q = 0.999
    tails = {}
    for copula in ("gaussian", "student_t"):
        sc = make_scenario(default={"rho_systematic": rho, "copula": copula, "t_dof": 4.0})
        out = counts(sc, equal_loans(n_loans, pd), n_paths)
        s = np.sort(out.gross_loss)
        i = math.ceil(n_paths * q) - 1
        half = math.sqrt(n_paths * q * (1 - q))
        se = (s[min(int(i + half) + 1, n_paths - 1)] - s[int(i - half)]) / 2
        tails[copula] = (s[i], se)
        # same marginal PD either way
        assert (abs(out.n_defaults.mean() / n_loans - pd)
                < 4 * out.n_defaults.std() / n_loans / math.sqrt(n_paths))
    (vg, sg), (vt, st) = tails["gaussian"], tails["student_t"]
    assert vt - vg > 4 * math.hypot(sg, st), tails


def monthly_truth(pd, months, stress):
    hazard = -math.log1p(-pd) / 12
    mult = np.ones(months)
    per_month = np.repeat(np.asarray(stress, float), 12)[:months]
    mult[: per_month.size] = per_month
    survival = np.exp(-hazard * np.concatenate([[0.0], np.cumsum(mult)]))
    return survival[:-1] - survival[1:]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("stress", [[], [1.0, 3.0, 0.5]])
def test_default_month_distribution_matches_pd_curve(method, stress):
    n_loans, pd, months, n_paths = 20, 0.10, 36, 20_000
    sc = make_scenario(default={"stress": stress}, simulation={"horizon_months": months})
    out = counts(sc, equal_loans(n_loans, pd, term=months), n_paths, method=method)
    per_month = out.period_defaults.sum(axis=0) / (n_paths * n_loans)
    truth = monthly_truth(pd, months, stress)
    # loans are independent (rho = 0): count per month is binomial over n_paths * n_loans trials
    se = np.sqrt(truth * (1 - truth) / (n_paths * n_loans))
    np.testing.assert_array_less(np.abs(per_month - truth), 4 * se + 1e-12)
    if stress:  # the stressed year really carries three times the hazard of year 1
        assert per_month[12:24].sum() > 2.5 * per_month[:12].sum() * 0.9


def test_dense_and_sparse_samplers_agree_in_distribution():
    sc = make_scenario(default={"rho_systematic": 0.15, "rho_sector": 0.05},
                       simulation={"horizon_months": 24})
    pf = equal_loans(300, np.linspace(0.005, 0.08, 300), term=24, n_sectors=3)
    a = counts(sc, pf, 20_000, method="sparse").n_defaults
    b = counts(sc, pf, 20_000, method="dense").n_defaults
    se = math.hypot(a.std(), b.std()) / math.sqrt(20_000)
    assert abs(a.mean() - b.mean()) < 4 * se
    for q in (0.9, 0.99):  # quantiles of the count, order-statistic tolerance
        qa, qb = np.quantile(a, q), np.quantile(b, q)
        assert abs(qa - qb) <= 4 * max(1.0, 0.05 * qa)


@pytest.mark.parametrize("want_month", [False, True])
def test_buckets_with_many_batches_of_candidates_keep_every_loans_pd(want_month):
    # independent defaults, PDs spread over 25-35 %: each sampling bucket has
    # ~50-100 candidates a path, several batches of the sparse sampler, and
    # candidates of different PDs share a bucket (the squeezes decide most).
    # Each loan's default count is Binomial(paths, p_i): a chi-square over the
    # loans, two-sided at 1e-4, fails a 2 % error in one bucket's PDs.
    n_loans, n_paths = 400, 4000
    pd = np.linspace(0.25, 0.35, n_loans)
    plan = compile_plan(make_scenario(), equal_loans(n_loans, pd), "sparse")
    expected = np.diff(plan.bucket_ptr) * pd.max()
    assert expected.max() > 3 * BATCH
    if want_month:  # amortising exposures: the loss lane then draws default months, as full runs do
        plan = plan._replace(amortizing=np.ones_like(plan.amortizing))
    assert needs_months(plan) == want_month
    out = np.zeros((n_paths, n_loans))  # one segment per loan: its loss on each path
    loss_block(plan, run_key(3), 0, np.arange(n_loans), out, 1)
    defaults = (out > 0).sum(axis=0)
    p = pd[plan.loan_order]
    chi2 = float((((defaults - n_paths * p) ** 2) / (n_paths * p * (1 - p))).sum())
    assert stats.chi2(n_loans).ppf(1e-4) < chi2 < stats.chi2(n_loans).isf(1e-4)
    k = (out > 0).sum(axis=1)
    assert abs(k.mean() - pd.sum()) < 4 * math.sqrt((pd * (1 - pd)).sum() / n_paths)


def test_sparse_sampler_with_vanishing_conditional_pds():
    # rho 0.9 and PD 1e-4: on most paths a bucket's conditional PD underflows far below
    # 1e-19, where a geometric skip no longer fits in an integer
    n_loans, pd, n_paths = 100, 1e-4, 20_000
    sc = make_scenario(default={"rho_systematic": 0.9})
    k = counts(sc, equal_loans(n_loans, pd), n_paths).n_defaults
    assert abs(k.mean() - n_loans * pd) < 4 * k.std(ddof=1) / math.sqrt(n_paths)


def test_recovery_near_the_beta_limit_stays_in_unit_interval():
    # a downturn shift pushes the mean down until the sd cap binds and both Beta shapes
    # are ~1e-4: the draw is then (nearly) Bernoulli(mean), never 0/0
    import sim as engine
    from models.scenario import load_scenario
    ds = engine.run(load_scenario("scenarios/ip_pledge_97.toml"), n_paths=20_000, seed=29)
    assert np.isfinite(float(ds.gross_loss_mean))
    assert float(ds.gross_loss_mean) <= ds.attrs["portfolio_amount"]
