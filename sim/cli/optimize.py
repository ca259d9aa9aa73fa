"""`riskpool optimize`: the allocation that maximises credit within a budget,
verified by the engine."""

from __future__ import annotations

import sys

import click

from models.portfolio import PortfolioError
from models.scenario import ScenarioError, to_toml
from sim.cli.common import (
    dask_scheduler,
    fail,
    finite_number,
    load_or_fail,
    results_folder,
    set_option,
    write_error,
)
from sim.optimizer.allocation import allocation_dataset, allocation_record
from sim.optimizer.allocation import optimize as run_optimize
from sim.optimizer.model import OptimizationError
from sim.report.html import write_report
from sim.report.tables import allocation_csv, format_allocation, frontier_csv
from sim.results.io import atomic_folder, write_json, write_netcdf


@click.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--budget", type=float, required=True, callback=finite_number(0),
              help="Budget B in yuan: pool + guarantor capital injection + reserve <= B.")
@click.option("--loss-budget", type=float, callback=finite_number(0),
              help="Limit on the expected public net loss, yuan (default optimize.loss_budget: none).")
@click.option("--alpha", type=float, callback=finite_number(0, 1, open_low=True, open_high=True),
              help="Tail level of every payer's CVaR row (default optimize.alpha).")
@click.option("--scenarios", "n_scenarios", type=click.IntRange(min=100, max=1_000_000),
              help="Monte Carlo loss scenarios (default optimize.n_scenarios).")
@click.option("--seed", type=click.IntRange(min=0, max=2**63 - 2),
              help="Seed of the scenarios; the engine's verification uses seed + 1.")
@click.option("--method", type=click.Choice(["auto", "full", "cutting_plane"]), default="auto",
              show_default=True, help="Full CVaR LP, or cutting planes (adds only violated scenario rows).")
@click.option("--verify-paths", type=click.IntRange(min=0, max=10_000_000),
              help="Paths of the engine's verification of the allocation "
                   "(default optimize.verify_paths; 0: none).")
@click.option("--out", type=click.Path(file_okay=False), help="Results folder; must not exist.")
@click.option("--quiet", is_flag=True, help="Print only where the results went.")
@click.option("--scheduler", metavar="local|ADDRESS",
              help="Simulate on Dask (as for run); the LP is solved here.")
@set_option
def optimize(scenario: str, budget: float, loss_budget: float | None, alpha: float | None,
             n_scenarios: int | None, seed: int | None, method: str, verify_paths: int | None,
             out: str | None, quiet: bool, scheduler: str | None, overrides: tuple[str, ...]) -> None:
    """Choose the pool, the guarantor's capital injection, the reserve for pay-as-you-go
    public costs, the sharing option(s) and credit per segment that maximise credit within
    the budget, every public payer funded at the tail (PuLP + HiGHS); verify the allocation
    with the full engine and back off until every verdict holds. Writes allocation.json,
    allocation.nc, allocation.csv, plan_scenario.toml (+ plan_portfolio.csv, runnable with
    `riskpool run`), frontier.nc/.csv, scenario.toml and report.html."""
    sc = load_or_fail(scenario, overrides)
    target = results_folder(sc, out, "-optimize")

    def say(text: str) -> None:
        if not quiet and sys.stderr.isatty():
            click.echo(f"  {text}...", err=True)

    try:
        outcome = run_optimize(sc, budget=budget, alpha=alpha, loss_budget=loss_budget,
                               n_scenarios=n_scenarios, seed=seed, method=method, verify_paths=verify_paths,
                               scheduler=dask_scheduler(scheduler), progress=say)
    except (PortfolioError, ScenarioError, OptimizationError) as exc:
        fail(str(exc))
    allocation, record = allocation_dataset(outcome, sc), allocation_record(outcome)
    try:
        with atomic_folder(target) as tmp:
            write_json(tmp / "allocation.json", record)
            write_netcdf(allocation, tmp / "allocation.nc")
            allocation_csv(allocation, tmp / "allocation.csv")
            outcome.plan.write(tmp)
            toml_text = to_toml(sc)
            (tmp / "scenario.toml").write_text(toml_text, encoding="utf-8")
            if outcome.frontier is not None:
                write_netcdf(outcome.frontier, tmp / "frontier.nc")
                frontier_csv(outcome.frontier, tmp / "frontier.csv")
            write_report(allocation, tmp, toml_text, outcome.frontier, record)
    except OSError as exc:
        fail(write_error(target, exc))
    if not quiet:
        click.echo(format_allocation(allocation, record))
    click.echo(f"allocation written to {target} (run it: riskpool run {target / 'plan_scenario.toml'})")
