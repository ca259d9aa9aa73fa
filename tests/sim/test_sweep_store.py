"""Sweeps written point by point into regions of a zarr store
(sim.scale.sweep_store): the store reads back identical to the in-memory sweep;
the CLI's --zarr folder is written atomically."""

from __future__ import annotations

import pytest
import xarray as xr
from click.testing import CliRunner

import sim
import sim.scale.sweep
from sim.cli import cli
from sim.scale.sweep import point_scenarios, run_sweep, sweep_axes
from sim.scale.sweep_store import SweepStore
from tests.helpers import make_scenario

pytest.importorskip("zarr", reason="needs zarr (pip install riskpool[dask])")


def scenario():
    return make_scenario(
        portfolio={"synthetic": {"n_firms": 120, "seed": 1}},
        default={"rho_systematic": 0.1},
        contract={"shares": {"loan": {"bank": 0.3, "pool": 0.3, "guarantor": 0.4}}, "pool": {"size": 5e6}},
        simulation={"horizon_months": 24, "period_months": 6},
    )


@pytest.mark.parametrize("grid", [
    {"contract.pool.size": [2e6, 4e6, 8e6]},
    # the horizon changes the number of periods: the store holds their union, NaN-padded
    {"contract.pool.size": [2e6, 8e6], "simulation.horizon_months": [12, 24]},
])
def test_store_reads_back_identical_to_the_in_memory_sweep(tmp_path, grid):
    sc = scenario()
    reference = run_sweep(sc, grid, n_paths=300, seed=4)
    stored = run_sweep(sc, grid, n_paths=300, seed=4, store=tmp_path / "s.zarr")
    xr.testing.assert_identical(stored.load(), reference)
    xr.testing.assert_identical(xr.open_zarr(tmp_path / "s.zarr").load(), reference)


def test_points_written_in_any_order_land_in_their_regions(tmp_path):
    sc = scenario()
    grid = {"contract.pool.size": [2e6, 8e6], "default.rho_systematic": [0.05, 0.2]}
    reference = run_sweep(sc, grid, n_paths=200, seed=2)
    axes = sweep_axes(sc, grid)
    points = point_scenarios(sc, axes)
    store = SweepStore.create(tmp_path / "s.zarr", sc, axes, points)
    for i in (3, 0, 2, 1):
        store.write(i, sim.run(points[i], n_paths=200, seed=2))
    xr.testing.assert_identical(store.close().load(), reference)


def test_unsorted_grid_values_keep_their_order_in_memory_and_in_the_store(tmp_path):
    sc = scenario()
    grid = {"contract.pool.size": [8e6, 2e6], "default.rho_systematic": [0.2, 0.05]}
    reference = run_sweep(sc, grid, n_paths=200, seed=2)
    assert reference.pool_size.values.tolist() == [8e6, 2e6]
    assert reference.default_rho_systematic.values.tolist() == [0.2, 0.05]
    point = run_sweep(sc, {"contract.pool.size": [2e6], "default.rho_systematic": [0.05]},
                      n_paths=200, seed=2)
    assert float(reference.gross_loss_mean[1, 1]) == float(point.gross_loss_mean[0, 0])
    xr.testing.assert_identical(run_sweep(sc, grid, n_paths=200, seed=2, store=tmp_path / "s.zarr").load(),
                                reference)


def die_on_the_second_point(monkeypatch, error: BaseException) -> list:
    """Make the sweep's point runs raise `error` on the second point; returns the call log."""
    real_run = sim.scale.sweep.simulate_runs
    calls = []

    def run(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise error
        return real_run(*args, **kwargs)

    monkeypatch.setattr(sim.scale.sweep, "simulate_runs", run)
    return calls


def test_a_failing_sweep_removes_its_store(tmp_path, monkeypatch):
    die_on_the_second_point(monkeypatch, RuntimeError("worker lost"))
    with pytest.raises(RuntimeError, match="worker lost"):
        run_sweep(scenario(), {"contract.pool.size": [2e6, 8e6]}, n_paths=50, store=tmp_path / "s.zarr")
    assert list(tmp_path.iterdir()) == []


def test_store_refuses_an_existing_path_and_an_incomplete_sweep(tmp_path):
    sc = scenario()
    axes = sweep_axes(sc, {"contract.pool.size": [2e6, 8e6]})
    points = point_scenarios(sc, axes)
    store = SweepStore.create(tmp_path / "s.zarr", sc, axes, points)
    with pytest.raises(FileExistsError, match="already exists"):
        SweepStore.create(tmp_path / "s.zarr", sc, axes, points)
    with pytest.raises(FileExistsError, match="already exists"):
        run_sweep(sc, {"contract.pool.size": [2e6, 8e6]}, n_paths=50, store=tmp_path / "s.zarr")
    assert (tmp_path / "s.zarr").is_dir()  # someone else's store is left alone
    store.write(1, sim.run(points[1], n_paths=50))
    with pytest.raises(RuntimeError, match=r"points \[0\] were never written"):
        store.close()


def test_a_point_outside_the_layout_is_refused_not_truncated(tmp_path):
    sc = scenario()
    axes = sweep_axes(sc, {"contract.pool.size": [2e6, 8e6]})
    points = point_scenarios(sc, axes)
    store = SweepStore.create(tmp_path / "s.zarr", sc, axes, points)
    longer = sc.model_copy(update={"simulation": sc.simulation.model_copy(update={"horizon_months": 36})})
    with pytest.raises(ValueError, match="'period' values"):
        store.write(0, sim.run(longer, n_paths=50))


SCENARIO = "scenarios/shijiazhuang_score_loan.toml"
GRID = ["--grid", "contract.pool.size=2e7,6e7"]


def test_cli_zarr_sweep_writes_the_same_results_as_netcdf(tmp_path):
    runner = CliRunner()
    nc, zr = tmp_path / "nc", tmp_path / "zarr"
    for out, extra in ((nc, []), (zr, ["--zarr"])):
        result = runner.invoke(cli, ["sweep", SCENARIO, *GRID, "--paths", "300", "--quiet", "--out", str(out),
                                     *extra], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    assert (zr / "results.zarr").is_dir() and not (zr / "results.nc").exists()
    assert (zr / "report.html").is_file() and (zr / "scenario.toml").is_file()
    stored = xr.open_zarr(zr / "results.zarr").load()
    with xr.open_dataset(nc / "results.nc", engine="h5netcdf") as a:
        xr.testing.assert_equal(stored, a.load())  # netCDF stores a one-item list attribute as a string
    assert stored.attrs["sweep_keys"] == ["contract.pool.size"]
    (zr / "report.html").unlink()
    assert runner.invoke(cli, ["report", str(zr)]).exit_code == 0
    assert (zr / "report.html").is_file()


def test_cli_zarr_sweep_interrupted_leaves_nothing(tmp_path, monkeypatch):
    calls = die_on_the_second_point(monkeypatch, KeyboardInterrupt())
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["sweep", SCENARIO, *GRID, "--paths", "100", "--zarr",
                                      "--out", str(out)])
    assert result.exit_code != 0 and len(calls) == 2
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its temporary
