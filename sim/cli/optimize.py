"""`riskpool optimize`: the allocation that maximises credit within a fiscal budget."""

from __future__ import annotations

import click

from models.portfolio import PortfolioError
from models.scenario import ScenarioError, to_toml
from sim.cli.common import dask_scheduler, fail, load_or_fail, results_folder, set_option
from sim.optimizer.allocation import allocation_dataset, allocation_record
from sim.optimizer.allocation import optimize as run_optimize
from sim.optimizer.model import OptimizationError
from sim.report.html import write_report
from sim.report.tables import format_allocation
from sim.results.io import OutputError, atomic_folder, write_json, write_netcdf


@click.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--budget", type=click.FloatRange(min=0), required=True,
              help="Fiscal budget B in yuan: pool size + expected other fiscal cost <= B.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="CVaR level (default optimize.alpha).")
@click.option("--scenarios", "n_scenarios", type=click.IntRange(min=100),
              help="Monte Carlo loss scenarios (default optimize.n_scenarios).")
@click.option("--seed", type=click.IntRange(min=0), help="Seed; the out-of-sample check uses seed + 1.")
@click.option("--method", type=click.Choice(["auto", "full", "cutting_plane"]), default="auto",
              show_default=True, help="Full CVaR LP, or cutting planes (adds only violated scenario rows).")
@click.option("--out", type=click.Path(file_okay=False), help="Results folder; must not exist.")
@click.option("--quiet", is_flag=True, help="Print only where the results went.")
@click.option("--scheduler", metavar="local|ADDRESS",
              help="Simulate the loss scenarios on Dask (as for run); the LP is solved here.")
@set_option
def optimize(scenario: str, budget: float, alpha: float | None, n_scenarios: int | None, seed: int | None,
             method: str, out: str | None, quiet: bool, scheduler: str | None,
             overrides: tuple[str, ...]) -> None:
    """Choose the pool size, the sharing option and credit per segment that maximise
    credit supplied within a fiscal budget and CVaR limits (PuLP + HiGHS); writes
    allocation.json, allocation.nc, frontier.nc, scenario.toml and report.html."""
    sc = load_or_fail(scenario, overrides)
    target = results_folder(sc, out, "-optimize")
    try:
        outcome = run_optimize(sc, budget=budget, alpha=alpha, n_scenarios=n_scenarios, seed=seed,
                               method=method, scheduler=dask_scheduler(scheduler))
    except (PortfolioError, ScenarioError, OptimizationError) as exc:
        fail(str(exc))
    allocation, record = allocation_dataset(outcome, sc), allocation_record(outcome)
    try:
        with atomic_folder(target) as tmp:
            write_json(tmp / "allocation.json", record)
            write_netcdf(allocation, tmp / "allocation.nc")
            toml_text = to_toml(sc)
            (tmp / "scenario.toml").write_text(toml_text, encoding="utf-8")
            if outcome.frontier is not None:
                write_netcdf(outcome.frontier, tmp / "frontier.nc")
            write_report(allocation, tmp, toml_text, outcome.frontier)
    except OutputError as exc:
        fail(str(exc))
    if not quiet:
        click.echo(format_allocation(allocation, record))
    click.echo(f"allocation written to {target}")
