"""`riskpool sweep`."""

from __future__ import annotations

from pathlib import Path

import click
import xarray as xr

from models.portfolio import PortfolioError
from models.scenario import ScenarioError
from sim.cli.common import (
    Progress,
    common_run_options,
    dask_scheduler,
    fail,
    grid_or_fail,
    load_or_fail,
    results_folder,
    tail_option,
    with_tail,
    write_error,
    write_folder,
    write_results,
)
from sim.report.tables import format_sweep
from sim.results.io import atomic_folder
from sim.scale.sweep import run_sweep
from sim.scale.sweep_store import require_zarr


@click.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--grid", "grid", multiple=True, metavar="KEY=VALUES",
              help="Sweep a key over values (repeatable; the cartesian product runs): v1,v2,... (TOML "
                   "values; lists too: 'default.stress=[],[1.5,2,1.5]'), or a range LO:HI:STEP or "
                   "LO:HI:xRATIO (HI included). KEY may be `sharing` with names from [sweep.sharing].")
@click.option("--zarr", "to_zarr", is_flag=True,
              help="Write each point to its own region of OUT/results.zarr as it completes, instead of "
                   "holding the sweep in memory and writing results.nc (for sweeps of very many points).")
@tail_option
@common_run_options
def sweep(scenario: str, grid: tuple[str, ...], to_zarr: bool, tail: str | None, paths: int | None,
          seed: int | None, threads: int | None, out: str | None, quiet: bool, progress_mode: str,
          scheduler: str | None, overrides: tuple[str, ...]) -> None:
    """Run the cartesian product of swept keys with common random numbers.

    \b
    Example:
      riskpool sweep scenarios/shijiazhuang_score_loan.toml \\
        --grid contract.pool.size=20e6:80e6:20e6 --grid 'default.stress=[],[1.5,2,1.5]'
    The Dataset's dimensions are the keys' short names (pool_size, default_stress);
    a list value's label is its TOML text ("[1.5, 2, 1.5]").
    """
    sc = load_or_fail(scenario, with_tail(overrides, tail))
    axes, n_points = grid_or_fail(sc, grid)
    n_paths = paths or sc.simulation.n_paths
    target = results_folder(sc, out, "-sweep")
    scheduler = dask_scheduler(scheduler)

    def run_points(store: Path | None) -> xr.Dataset:
        try:
            return run_sweep(sc, axes, n_paths=n_paths, seed=seed, threads=threads, scheduler=scheduler,
                             progress=Progress(n_paths * n_points, quiet, progress_mode), store=store)
        except (PortfolioError, ScenarioError) as exc:
            fail(str(exc))

    if to_zarr:
        try:
            require_zarr()
        except RuntimeError as exc:
            fail(str(exc))
        try:
            with atomic_folder(target) as tmp:  # the store grows inside; renamed when complete
                write_folder(tmp, run_points(tmp / "results.zarr"), sc, netcdf=False)
        except OSError as exc:
            fail(write_error(target, exc))
        ds = xr.open_zarr(target / "results.zarr")
    else:
        ds = run_points(None)
        write_results(target, ds, sc)
    if not quiet:
        click.echo(format_sweep(ds))
    click.echo(f"sweep of {n_points} points written to {target} (open {target / 'report.html'})")
