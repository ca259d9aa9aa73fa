"""The one estimator module against exact answers: unit weights reproduce
the unweighted numbers to the bit; importance-sampling weights (likelihood
ratios of a shifted normal) recover the exact normal mean, tail probability,
VaR and ES within a few standard errors, and those standard errors match the
spread of independent replications."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sim.risk import estimators

Q = 0.99


def shifted_sample(n: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws of N(shift, 1) and their likelihood ratios to N(0, 1)."""
    x = np.random.default_rng(seed).standard_normal(n) + shift
    return x, np.exp(-shift * x + shift * shift / 2.0)


def test_unit_weights_give_the_unweighted_numbers_to_the_bit():
    rng = np.random.default_rng(3)
    x = rng.lognormal(size=5001)
    ones = np.ones_like(x)
    for a, b in ((estimators.mean(x), estimators.mean(x, ones)),
                 (estimators.probability(x > 3), estimators.probability(x > 3, ones)),
                 (estimators.tail_table(x, [0.9, Q]), estimators.tail_table(x, [0.9, Q], ones)),
                 (estimators.cvar(x, Q), estimators.cvar(x, Q, ones)),
                 (estimators.quantiles(x, [0.5, Q]), estimators.quantiles(x, [0.5, Q], ones))):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_plain_estimators_match_closed_forms():
    x = np.random.default_rng(4).standard_normal(200_000)
    m, se = estimators.mean(x)
    assert abs(m) < 4 * se and se == pytest.approx(1 / math.sqrt(x.size), rel=0.01)
    p = estimators.probability(x > 2)
    assert abs(p.value - stats.norm.sf(2)) < 4 * p.se
    var, var_se, es, es_se = estimators.tail_table(x, [Q])[:, 0]
    assert abs(var - stats.norm.ppf(Q)) < 4 * var_se
    assert abs(es - stats.norm.pdf(stats.norm.ppf(Q)) / (1 - Q)) < 4 * es_se
    assert estimators.cvar(x, Q).value == pytest.approx(es, rel=1e-3)


def test_importance_sampling_recovers_the_exact_normal_tail():
    shift = stats.norm.ppf(Q)  # sample where the 1 % tail is
    x, w = shifted_sample(100_000, shift, seed=5)
    m, se = estimators.mean(x, w)
    assert abs(m) < 4 * se
    far = 4.0  # P(X > 4) = 3.2e-5: about 3 plain draws in 100 000, a few thousand here
    p = estimators.probability(x > far, w)
    assert abs(p.value - stats.norm.sf(far)) < 4 * p.se
    assert p.se < 0.1 * p.value  # plain Monte Carlo would give ~55 % relative error
    var, var_se, es, es_se = estimators.tail(np.sort(x), Q, w[np.argsort(x)])
    assert abs(var - stats.norm.ppf(Q)) < 4 * var_se
    exact_es = stats.norm.pdf(stats.norm.ppf(Q)) / (1 - Q)
    assert abs(es - exact_es) < 4 * es_se
    cvar = estimators.cvar(x, Q, w)
    assert abs(cvar.value - exact_es) < 4 * cvar.se


def test_weighted_standard_errors_match_the_spread_of_replications():
    shift = 2.0
    runs = [shifted_sample(4000, shift, seed=s) for s in range(200)]
    probs = [estimators.probability(x > 3, w) for x, w in runs]
    tails = [estimators.tail(np.sort(x), Q, w[np.argsort(x)]) for x, w in runs]
    for values, errors in (([p.value for p in probs], [p.se for p in probs]),
                           ([t.es for t in tails], [t.es_se for t in tails]),
                           ([t.var for t in tails], [t.var_se for t in tails])):
        spread, typical = float(np.std(values, ddof=1)), float(np.median(errors))
        # 200 replications pin the spread to about +-10 %; the band form of the VaR SE is rougher
        assert 0.7 < typical / spread < 1.4, (typical, spread)


def test_bad_weights_are_refused():
    with pytest.raises(ValueError, match="one value per path"):
        estimators.mean(np.zeros(3), np.ones(2))
    with pytest.raises(ValueError, match="finite and >= 0"):
        estimators.probability(np.zeros(2, bool), np.array([1.0, -1.0]))


def test_results_and_the_optimizer_use_the_estimators(monkeypatch):
    """Every statistic goes through this module: patching it changes what they report."""
    import sim.optimizer.model as model
    from sim.risk.estimators import cvar_and_var

    calls = []
    monkeypatch.setattr(estimators, "cvar_and_var", lambda *a, **k: calls.append(1) or cvar_and_var(*a, **k))
    assert model.empirical_cvar(np.arange(100.0), 0.9) == pytest.approx(94.5)
    assert calls


def test_ratio_of_means_against_truth():
    rng = np.random.default_rng(4)
    y = rng.exponential(2.0, 40_000)
    x = 0.3 * y + rng.normal(0.0, 0.5, y.size)  # E[x] / E[y] = 0.3
    est = estimators.ratio(x, y)
    assert abs(est.value - 0.3) < 4 * est.se and est.se < 0.01
    np.testing.assert_allclose(estimators.ratio(2 * y, y), (2.0, 0.0), atol=1e-12)
    assert np.isnan(estimators.ratio(x, 0 * y).value)
    # unit weights give the plain numbers to the bit; the spread of replications matches the SE
    assert estimators.ratio(x, y, np.ones(y.size)) == est
    reps = [estimators.ratio(0.3 * yy + rng.normal(0, 0.5, yy.size), yy).value
            for yy in (rng.exponential(2.0, 2_000) for _ in range(300))]
    se = estimators.ratio(x[:2_000], y[:2_000]).se
    assert 0.7 < np.std(reps) / se < 1.4


def test_effective_paths():
    assert estimators.effective_paths(np.ones(500)) == 500.0
    w = np.r_[np.ones(99), 100.0]  # one path carries half the weight
    assert estimators.effective_paths(w) == pytest.approx(199.0**2 / (99 + 1e4))
    assert estimators.effective_paths(np.zeros(3)) == 0.0


def test_the_quotient_of_independent_estimates_has_the_first_order_error_of_simulated_draws():
    rng = np.random.default_rng(3)
    a, b = estimators.Estimate(5.0, 0.2), estimators.Estimate(40.0, 1.5)
    q = estimators.quotient(a, b)
    draws = rng.normal(a.value, a.se, 200_000) / rng.normal(b.value, b.se, 200_000)
    assert float(q.value) == 5.0 / 40.0
    assert float(q.se) == pytest.approx(draws.std(), rel=0.02)
    d = estimators.unpaired_difference(a, b)
    assert float(d.value) == 35.0 and float(d.se) == pytest.approx(np.hypot(0.2, 1.5), rel=1e-12)


@pytest.mark.parametrize("k, n", [(0, 1000), (1, 1000), (30, 1000), (999, 1000), (1000, 1000), (0, 1),
                                  (5, 20), (12_345, 100_000)])
def test_the_exact_binomial_bounds_leave_the_verdicts_tail_on_their_side(k, n):
    """Clopper-Pearson by definition, with SciPy's binomial distribution: at the upper bound u,
    P(X <= k) = a; at the lower bound l, P(X >= k) = a; a = Phi(-z), 5 % at the verdicts' z."""
    a = stats.norm.cdf(-estimators.VERDICT_Z)
    lower, upper = estimators.binomial_bounds(k, n)
    if k < n:
        assert stats.binom.cdf(k, n, upper) == pytest.approx(a, rel=1e-6)
    else:
        assert upper == 1.0
    if k > 0:
        assert stats.binom.sf(k - 1, n, lower) == pytest.approx(a, rel=1e-6)
    else:
        assert lower == 0.0 and upper == pytest.approx(1 - a ** (1 / n), rel=1e-9)


def test_a_rare_event_is_judged_at_its_exact_bound_not_the_normal_one():
    none = np.zeros(1000, dtype=bool)  # no event in 1 000 paths: SE 0, yet P may be up to ~0.3 %
    assert estimators.verdict(estimators.probability(none), 0.001) == "holds"  # the normal bound's answer
    assert estimators.probability_verdict(none, 0.001) == "within noise"
    assert estimators.probability_verdict(none, 0.005) == "holds"
    some = np.arange(1000) < 30  # 3 % against a 1 % limit
    assert estimators.probability_verdict(some, 0.01) == "violated"
    assert estimators.probability_verdict(some, 0.05) == "holds"


@pytest.mark.parametrize("limit", [0.05, 0.01, 0.001, 1e-4])
def test_the_paths_needed_to_show_a_limit_with_no_event(limit):
    n = estimators.paths_to_show_none(limit)
    assert estimators.binomial_bounds(0, n)[1] <= limit < estimators.binomial_bounds(0, n - 1)[1]
