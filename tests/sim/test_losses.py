"""The loss-only engine (`sim.engine.run.simulate_losses`) against the full engine:
the same defaults, exposures and recoveries path for path, so the same
per-path gross loss, whatever the threads or block size."""

from __future__ import annotations

import numpy as np
import pytest

from models.scenario import load_scenario
from sim import run, run_losses
from sim.engine.lanes import loss_block
from sim.engine.run import RunSpec, run_key, simulate_losses, simulate_paths
from sim.engine.sampling import needs_months

CASES = [
    ("scenarios/shijiazhuang_score_loan.toml", []),
    ("scenarios/shijiazhuang_score_loan.toml", ["default.rho_sector=0.1", "default.copula=\"student_t\""]),
    ("scenarios/shijiazhuang_score_loan.toml", ["simulation.method=\"dense\""]),
    ("scenarios/baoding_pool.toml", []),
    ("scenarios/ip_pledge_97.toml", []),
    ("scenarios/national_4321.toml", []),
    ("scenarios/shanxi_special_fund.toml", []),
    # fixed recoveries and bullet exposures: the loss lane's per-loan fixed losses
    ("scenarios/shijiazhuang_score_loan.toml",
     ["products.score_loan.recovery_sd=0", "products.score_loan.recovery_downturn=0"]),
]


def plan_without_stop_rule(path, overrides, n_paths=1500):
    """A stop rule halts lending, which only the waterfall knows: the loss-only
    engine is the full engine's gross loss with no stop rule."""
    spec = RunSpec.resolve(load_scenario(path, overrides), n_paths=n_paths)
    return (spec.plan._replace(stop_default_rate=np.inf, stop_compensation_rate=np.inf),
            spec.n_paths, spec.seed)


@pytest.mark.parametrize("path, overrides", CASES)
def test_loss_only_run_gives_the_full_engines_gross_loss(path, overrides):
    plan, n, seed = plan_without_stop_rule(path, overrides)
    full = simulate_paths(plan, n, seed, 512, 1).gross_loss
    losses = simulate_losses(plan, n, seed, threads=1)
    assert full.sum() > 0
    # same defaults; only the order of summation differs
    np.testing.assert_allclose(losses, full, rtol=1e-12, atol=1e-6)


def test_loss_only_run_is_bit_identical_for_any_threads_and_blocks():
    plan, n, seed = plan_without_stop_rule(*CASES[1], n_paths=2000)
    reference = simulate_losses(plan, n, seed, threads=1)
    for threads, block_size in [(2, 65_536), (2, 100), (1, 777)]:
        assert np.array_equal(reference,
                              simulate_losses(plan, n, seed, block_size=block_size, threads=threads))


@pytest.mark.parametrize("case", [CASES[0], CASES[-1]])
def test_segment_columns_are_loss_only_runs_of_their_loans(case):
    # a segment's column is the loss-only run of a book whose other loans recover
    # everything (a loan's recovery draws are its own); random and fixed
    # recoveries take different paths in the lane
    plan, n, seed = plan_without_stop_rule(*case, n_paths=1000)
    assert not needs_months(plan)
    segment = np.arange(plan.amount.size) % 3
    out = np.zeros((n, 3))
    loss_block(plan, run_key(seed), 0, segment, out, 1)
    for s in range(3):
        alone = plan._replace(recovery_mean=np.where(segment == s, plan.recovery_mean, 1.0))
        assert np.array_equal(out[:, s], simulate_losses(alone, n, seed, threads=1))
        assert out[:, s].sum() > 0
    np.testing.assert_allclose(out.sum(axis=1), simulate_losses(plan, n, seed, threads=1), rtol=1e-12)


def test_run_losses_of_a_scenario_without_stop_rule_is_runs_gross_loss():
    sc = load_scenario("scenarios/ip_pledge_97.toml")
    assert sc.contract.stop_rule.default_rate is None and sc.contract.stop_rule.compensation_rate is None
    losses = run_losses(sc, n_paths=3000, seed=9)
    ds = run(sc, n_paths=3000, seed=9)
    assert losses.mean() == pytest.approx(float(ds.gross_loss_mean), rel=1e-12)
    assert losses.std(ddof=1) / np.sqrt(losses.size) == pytest.approx(float(ds.gross_loss_se), rel=1e-9)


def test_threads_beyond_numba_num_threads_are_capped(monkeypatch):
    import sim.engine.lanes as engine

    lanes = []
    monkeypatch.setattr(engine, "run_lanes", lambda kernel, n_lanes, *a: lanes.append(n_lanes))
    plan, n, seed = plan_without_stop_rule(*CASES[0], n_paths=200)
    simulate_losses(plan, n, seed, threads=64)
    simulate_paths(plan, n, seed, 512, threads=64)
    assert lanes and set(lanes) == {engine.default_threads()}
