"""`ds.riskpool` reads every kind of result the same way: kinds are set by
their producers, estimates come with the standard error the Dataset holds,
and a Dataset of another program is refused."""

from __future__ import annotations

import pytest
import xarray as xr

import sim
from sim.results.accessor import ResultError
from tests.helpers import make_scenario


@pytest.fixture(scope="module")
def run_ds():
    return sim.run(make_scenario(contract={"pool": {"size": 5e6}}), n_paths=400, seed=3)


def test_a_runs_estimates_and_kind(run_ds):
    rp = run_ds.riskpool
    assert rp.kind == "run"
    est = rp.estimate("loss_es", party="bank", quantile=0.99)
    assert est == (float(run_ds.loss_es.sel(party="bank", quantile=0.99)),
                   float(run_ds.loss_es_se.sel(party="bank", quantile=0.99)))
    assert rp.estimate("pool_exhaustion_prob").se == float(run_ds.pool_exhaustion_prob_se)
    table = rp.party_table(0.99)
    assert table.rows[-1].label == "total" and table.rows[-1].mean == rp.estimate("gross_loss_mean")
    assert sum(r.share for r in table.rows[:-1]) == pytest.approx(1.0)
    assert rp.headline()["bank_loss_mean"] == rp.estimate("loss_mean", party="bank").value
    for name, var in run_ds.data_vars.items():
        assert "units" in var.attrs, name


def test_estimate_needs_one_point_and_an_estimate(run_ds):
    with pytest.raises(ValueError, match="select one value"):
        run_ds.riskpool.estimate("loss_mean")
    with pytest.raises(KeyError, match="not an estimate"):
        run_ds.riskpool.estimate("loss_curve", party="bank", level=0.5)
    with pytest.raises(KeyError, match="no such variable"):
        run_ds.riskpool.estimate("nothing")


def test_every_producer_writes_its_kind():
    sc = make_scenario()
    assert sim.sweep(sc, {"contract.pool.size": [1e6, 2e6]}, n_paths=100).riskpool.kind == "sweep"
    twin = sim.run_twin(sc, n_paths=20)
    assert twin.riskpool.kind == "twin" and "pool_exhaustion_prob" in twin.riskpool.headline()


def test_a_foreign_dataset_is_refused():
    with pytest.raises(ResultError, match="not a riskpool result"):
        _ = xr.Dataset({"x": 1.0}).riskpool.kind
