"""Importance sampling against exact truth (a one-factor homogeneous book,
Gaussian and Student-t copulas), against plain Monte Carlo on seed
scenarios, and the properties every IS run keeps: mean likelihood ratio 1,
parties adding up on every path, bit-identical results on any threads and
blocks."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from scipy import special, stats

from models.scenario import load_scenario
from models.tail import parse_tail
from sim.engine.importance import choose_shift, tilted
from sim.engine.run import RunSpec, simulate_paths
from sim.risk import estimators
from sim.scale.runs import simulate_runs
from tests.helpers import equal_loans, make_scenario

N_LOANS = 200
PD = 0.02
RHO = 0.2
LOAN = 1e6


def _book_scenario(copula: str, tail: str = "off", method: str = "sparse"):
    return make_scenario(default={"rho_systematic": RHO, "copula": copula, "t_dof": 5.0},
                         simulation={"tail": tail, "n_paths": 20_000, "seed": 3, "method": method})


def _nodes(n: int, lo: float, hi: float):
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (hi - lo) * x + 0.5 * (hi + lo), 0.5 * (hi - lo) * w


@functools.cache
def _exact_tail(copula: str) -> np.ndarray:
    """P(N >= k), k = 0..n, for the homogeneous book: the binomial law given
    the factors integrated over them (Gauss-Legendre quadrature)."""
    plan = RunSpec.resolve(_book_scenario(copula), portfolio=equal_loans(N_LOANS, PD, amount=LOAN)).plan
    threshold, dof = float(plan.threshold[0]), float(plan.t_dof)
    a, c = np.sqrt(RHO), np.sqrt(1.0 - RHO)
    z, wz = _nodes(401, -12.0, 12.0)
    wz = wz * stats.norm.pdf(z)
    if copula == "gaussian":
        scale, ws = np.ones(1), np.ones(1)
    else:  # sqrt(chi2 / dof) at chi2 quantiles u = e^s: nodes dense where chi2 is small (the tail)
        s, ws = _nodes(201, -60.0, 0.0)
        ws = ws * np.exp(s)
        scale = np.sqrt(stats.chi2.ppf(np.exp(s), dof) / dof)
    p = special.ndtr((scale[:, None] * threshold - a * z[None, :]) / c)
    k = np.arange(N_LOANS + 1)
    sf = stats.binom.sf(k[:, None, None] - 1, N_LOANS, p[None])  # P(N >= k | factors)
    return (sf * ws[None, :, None] * wz[None, None, :]).sum(axis=(1, 2))


@pytest.mark.parametrize("copula, method, targets", [
    ("gaussian", "sparse", (1e-3, 1e-4, 1e-5)), ("student_t", "sparse", (1e-3, 1e-4, 1e-5)),
    ("gaussian", "dense", (1e-4,)), ("student_t", "dense", (1e-4,)),
])
def test_is_matches_the_exact_tail_of_a_homogeneous_book(copula, method, targets):
    book = equal_loans(N_LOANS, PD, amount=LOAN)
    exact = _exact_tail(copula)
    assert exact[0] == pytest.approx(1.0, abs=1e-9)
    for target in targets:
        k = int(np.argmax(exact <= target))  # the smallest count this rare
        event = f"gross_loss>={(k - 0.5) * LOAN:g}"
        spec = RunSpec.resolve(_book_scenario(copula, event, method), portfolio=book)
        [out] = simulate_runs([spec])
        est = estimators.probability(out.gross_loss >= (k - 0.5) * LOAN, out.weight)
        assert abs(est.value - exact[k]) < 4 * est.se, (copula, target, k, est, exact[k])
        assert est.se < 0.15 * exact[k]  # and it is precise: plain MC would need ~1e7 paths
        lr = estimators.mean(out.weight)
        assert abs(lr[0] - 1.0) < 4 * lr[1]


def test_the_pilot_finds_its_way_where_most_paths_lose_nothing():
    """A book where 1 path in 60 has a default: the pilot's first elite is those few paths."""
    book = equal_loans(20, 0.0008, amount=LOAN)
    plan = RunSpec.resolve(_book_scenario("gaussian"), portfolio=book).plan
    q = choose_shift(plan, parse_tail(f"gross_loss>={2.5 * LOAN:g}"), seed=2)
    assert q.reached and q.shift[0] < -1.0


def test_the_t_copula_pilot_scales_the_mixing_draw_down():
    book = equal_loans(N_LOANS, PD, amount=LOAN)
    plan = RunSpec.resolve(_book_scenario("student_t"), portfolio=book).plan
    q = choose_shift(plan, parse_tail(f"gross_loss>={40 * LOAN:g}"), seed=1)
    assert q.reached and q.mixing < 0.8 and q.shift[0] < -1.0


SCENARIOS = {
    # (file, pool size where P(pool runs dry) is about 1e-3)
    "shijiazhuang": ("scenarios/shijiazhuang_score_loan.toml", 37e6),
    "baoding": ("scenarios/baoding_pool.toml", 37e6),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_is_agrees_with_plain_monte_carlo(name):
    path, pool = SCENARIOS[name]
    overrides = [f"contract.pool.size={pool}"]
    plain = RunSpec.resolve(load_scenario(path, overrides), n_paths=100_000, seed=5)
    tilted_spec = RunSpec.resolve(load_scenario(path, overrides + ['simulation.tail="pool_dry"']),
                                  n_paths=10_000, seed=6)
    a, b = simulate_runs([plain, tilted_spec])
    assert (a.weight == 1.0).all() and tilted_spec.sampling.reached

    def close(x, y, what):
        assert abs(x[0] - y[0]) <= 4 * np.hypot(x[1], y[1]), (what, x, y)

    pa, pb = estimators.probability(a.exhausted), estimators.probability(b.exhausted, b.weight)
    assert 3e-4 < pa.value < 3e-3 and pb.se < pa.se / 2
    close(pa, pb, "P(pool runs dry)")
    ma, sa = estimators.mean(a.party_loss)
    mb, sb = estimators.mean(b.party_loss, b.weight)
    for j in range(a.party_loss.shape[1]):
        close((ma[j], sa[j]), (mb[j], sb[j]), f"mean loss of party {j}")
        ta = estimators.tail_table(a.party_loss[:, j], [0.99])[:, 0]
        tb = estimators.tail_table(b.party_loss[:, j], [0.99], b.weight)[:, 0]
        close(ta[2:], tb[2:], f"ES99 of party {j}")


def test_is_keeps_money_conserved_and_results_bit_identical():
    sc = load_scenario("scenarios/shijiazhuang_score_loan.toml", ['simulation.tail="guarantor_dry"'])
    spec = RunSpec.resolve(sc, n_paths=1500)
    plan = spec.plan
    assert np.any(plan.tail_shift != 0.0)
    one = simulate_paths(plan, spec.n_paths, spec.seed, 512, threads=1)
    two = simulate_paths(plan, spec.n_paths, spec.seed, 1000, threads=2)
    for name, x, y in zip(one._fields, one, two):
        np.testing.assert_array_equal(x, y, err_msg=name)
    np.testing.assert_allclose(one.party_loss.sum(axis=1), one.gross_loss, rtol=1e-12, atol=1e-4)
    assert one.weight.min() > 0 and one.weight.std() > 0
    # the shift is a function of the seed: choosing it again gives the same plan
    again = tilted(plan, choose_shift(plan._replace(tail_shift=0 * plan.tail_shift), spec.tail, spec.seed))
    np.testing.assert_array_equal(again.tail_shift, plan.tail_shift)
