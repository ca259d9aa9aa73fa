"""`riskpool size`: the smallest pool that runs dry with probability at most a target."""

from __future__ import annotations

import click
import xarray as xr

from models.portfolio import PortfolioError
from models.scenario import ScenarioError
from sim.cli.common import (
    Progress,
    common_run_options,
    dask_scheduler,
    fail,
    finite_number,
    grid_or_fail,
    load_or_fail,
    results_folder,
    with_tail,
    write_results,
)
from sim.report.tables import format_sizing
from sim.scale.sizing import size_pool


@click.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--target", type=float, required=True, metavar="PROBABILITY",
              callback=finite_number(0, 1, open_low=True, open_high=True),
              help="The largest acceptable probability that the pool runs dry, e.g. 0.01.")
@click.option("--tail", type=click.Choice(["off", "pool_dry"]),
              help="pool_dry: importance-sample the paths where the pool needs most (for small "
                   "targets, 1e-3 and below); off: plain Monte Carlo. Default: the scenario's "
                   "simulation.tail.")
@click.option("--grid", "grid", multiple=True, metavar="KEY=v1,v2,...",
              help="Size the pool at every point of a grid, e.g. --grid default.rho_systematic=0.12,0.2 "
                   "(repeatable; one curve per point).")
@common_run_options
def size(scenario: str, target: float, tail: str | None, grid: tuple[str, ...], paths: int | None,
         seed: int | None, threads: int | None, out: str | None, quiet: bool, progress_mode: str,
         scheduler: str | None, overrides: tuple[str, ...]) -> None:
    """The smallest initial pool that runs dry with probability at most TARGET,
    with its 95 % confidence interval, from one run: each path's required pool
    gives P(runs dry) for every pool size at once.

    \b
    Example:
      riskpool size scenarios/shijiazhuang_score_loan.toml --target 0.01
      riskpool size scenarios/shijiazhuang_score_loan.toml --target 1e-4 --tail pool_dry
    Writes the usual results folder, with the curve in pool_sizing.png.
    """
    sc = load_or_fail(scenario, with_tail(overrides, tail))
    axes, n_points = grid_or_fail(sc, grid) if grid else (None, 1)
    n_paths = paths or sc.simulation.n_paths
    target_folder = results_folder(sc, out, "-size")
    try:
        ds: xr.Dataset = size_pool(sc, target=target, n_paths=n_paths, seed=seed, grid=axes,
                                   threads=threads, scheduler=dask_scheduler(scheduler),
                                   progress=Progress(n_paths * n_points, quiet, progress_mode))
    except (PortfolioError, ScenarioError) as exc:
        fail(str(exc))
    write_results(target_folder, ds, sc)
    click.echo(format_sizing(ds))
    click.echo(f"results written to {target_folder} (open {target_folder / 'report.html'})")
