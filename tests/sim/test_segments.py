"""The optimizer's loss scenarios: segment losses add up to the engine's own
gross loss path by path, and options share their random numbers."""

from __future__ import annotations

import math

import numpy as np

import sim
from models.portfolio import segment_index
from models.scenario import PARTIES, Shares, load_scenario
from sim.engine.plan import build_portfolio
from sim.optimizer.segments import segment_losses

UNLIMITED = ["contract.pool.size=inf", "contract.guarantor.capital=inf", "contract.guarantor.leverage=inf",
             "contract.stop_rule.default_rate=1.0"]


def test_segments_cover_every_loan_once():
    sc = load_scenario("scenarios/shijiazhuang_score_loan.toml")
    pf = build_portfolio(sc)
    index, labels = segment_index(pf, [0, 500, 650, 1000])
    assert np.bincount(index).sum() == len(pf) and (np.bincount(index) > 0).all()
    for i in np.flatnonzero(pf.score >= 650)[:20]:
        assert "|650-1000|" in labels[index[i]]


def test_segment_losses_reproduce_the_engine_with_unlimited_money():
    sc = load_scenario("scenarios/shijiazhuang_score_loan.toml", UNLIMITED)
    pf = build_portfolio(sc)
    options = {"own": sc.contract.shares["score_loan"], "bank20_pool80": Shares(bank=0.2, pool=0.8)}
    sl = segment_losses(sc, pf, options, [0, 500, 650, 1000], n_paths=3000, seed=5)
    ds = sim.run(sc, n_paths=3000, seed=5)
    per_path_total = (sl.party_loss[:, :, 0, :].sum(axis=-1) * sl.amount).sum(axis=1)
    assert math.isclose(per_path_total.mean(), float(ds.gross_loss_mean), rel_tol=1e-12)
    # common random numbers: without moral hazard both options see the very same gross loss
    np.testing.assert_allclose(sl.party_loss[:, :, 0, :].sum(-1), sl.party_loss[:, :, 1, :].sum(-1),
                               rtol=1e-12)
    # each party's loss is its share of the gross loss
    pool = PARTIES.index("pool")
    np.testing.assert_allclose(sl.party_loss[:, :, 1, pool], 0.8 * sl.party_loss[:, :, 1, :].sum(-1),
                               rtol=1e-12)
