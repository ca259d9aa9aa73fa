"""The required pool: for every pool size P, the engine's pool runs dry on a
path exactly when that path's required pool R (one run, any pool size)
exceeds P -- with top-ups of both modes, caps, recoveries and a
payout-based stop rule."""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine.plan import compile_plan
from sim.engine.run import simulate_paths
from tests.helpers import equal_loans, make_scenario

N_PATHS = 3000
SEED = 11


def _outputs(pool_size: float, top_up: dict, caps: dict, stop: dict):
    """Per-path outputs of a 120-loan book (starts spread over a year) with the pool of `pool_size`."""
    sc = make_scenario(
        default={"rho_systematic": 0.25},
        products={"loan": {"recovery_mean": 0.35, "recovery_sd": 0.15, "recovery_lag_months": 4}},
        contract={
            "shares": {"loan": {"bank": 0.2, "pool": 0.3, "guarantor": 0.5}},
            "pool": {"size": pool_size, "claim_lag_months": 1, **top_up, **caps},
            "guarantor": {"capital": 20e6, "lag_months": 2},
            "stop_rule": stop,
        },
        simulation={"horizon_months": 24, "period_months": 3, "seed": SEED},
    )
    book = equal_loans(120, 0.08, amount=1e6, term=12, start=np.arange(120) % 12)
    return simulate_paths(compile_plan(sc, book), N_PATHS, SEED, 512)


ADD = {"top_up": "add", "top_up_amount": 5e5, "top_up_every_months": 6}
CASES = {
    "no top-up": ({"top_up": "none"}, {}, {}),
    "add": (ADD, {}, {}),
    "to_target": ({"top_up": "to_target", "top_up_every_months": 4}, {}, {}),
    "caps": (ADD, {"cap_per_loan": 2.0e5, "cumulative_cap": 6e6}, {}),
    "payout stop rule": (ADD, {}, {"compensation_rate": 0.02}),
}


@pytest.mark.parametrize("case", CASES)
def test_pool_runs_dry_exactly_when_the_required_pool_exceeds_it(case):
    top_up, caps, stop = CASES[case]
    base = _outputs(3e6, top_up, caps, stop)
    required = base.required_pool
    assert (required > 0).mean() > 0.3  # the test means something: many paths need a pool
    if stop:
        assert 0.05 < (base.stop_month >= 0).mean() < 0.95  # the rule bites on some paths only
    # five pool sizes between distinct required pools (never on a tie), across the distribution
    distinct = np.unique(required[required > 0])
    for rank in (np.linspace(0.1, 0.9, 5) * (distinct.size - 2)).astype(int):
        size = 0.5 * (distinct[rank] + distinct[rank + 1])
        out = _outputs(size, top_up, caps, stop)
        assert 0 < out.exhausted.sum() < N_PATHS
        np.testing.assert_array_equal(out.exhausted, required > size, err_msg=f"{case}: pool {size}")
        # the required pool does not depend on the pool the path was settled with
        np.testing.assert_allclose(out.required_pool, required, rtol=1e-12, atol=1e-3)


def test_an_unlimited_pool_still_gives_the_required_pool():
    top_up, caps, stop = CASES["add"]
    required = _outputs(3e6, top_up, caps, stop).required_pool
    unlimited = _outputs(float("inf"), top_up, caps, stop)
    assert not unlimited.exhausted.any()
    np.testing.assert_allclose(unlimited.required_pool, required, rtol=1e-12, atol=1e-3)


def test_a_hand_settled_path_gives_the_same_required_pool_whatever_its_pool():
    from sim.engine.run import settle_given_defaults

    sc = make_scenario(contract={"shares": {"loan": {"bank": 0.5, "pool": 0.5}}, "pool": {"size": 1e3}})
    plan = compile_plan(sc, equal_loans(5, 0.1, amount=1e6))
    dry = settle_given_defaults(plan, [0, 1, 2], [2, 3, 5], [0.0, 0.0, 0.0])
    full = settle_given_defaults(plan._replace(pool_size=1e9), [0, 1, 2], [2, 3, 5], [0.0, 0.0, 0.0])
    assert dry.exhausted[0] and not full.exhausted[0]
    assert dry.required_pool[0] == full.required_pool[0] == 1.5e6
