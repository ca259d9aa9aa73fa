"""`riskpool capital`: the capital the bank's book needs, with and without the scheme."""

from __future__ import annotations

import click

from models.portfolio import PortfolioError
from models.scenario import ScenarioError, to_toml
from sim.cli.common import (
    common_run_options,
    dask_scheduler,
    fail,
    load_or_fail,
    results_folder,
    second_pass_progress,
    write_error,
)
from sim.report.bank_tables import capital_csv, format_capital
from sim.results.io import atomic_folder, write_netcdf
from sim.scale.capital import bank_capital


@click.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@common_run_options
def capital(scenario: str, paths: int | None, seed: int | None, threads: int | None, out: str | None,
            quiet: bool, progress_mode: str, scheduler: str | None, overrides: tuple[str, ...]) -> None:
    """Regulatory capital (Basel F-IRB and standardised) of the scenario's book with and without the
    scheme's cover, economic capital of the loss the bank keeps (over the horizon and the first
    year), and by segment and product: EL, EC (Euler), RAROC and the breakeven guarantee fee.
    Settings: the scenario's [capital] table (scenarios/README.md).

    \b
    Example:
      riskpool capital scenarios/bank_book.toml
    Writes capital.csv (a row per segment and product, then the book) and capital.nc."""
    sc = load_or_fail(scenario, overrides)
    target = results_folder(sc, out, "-capital")
    try:
        ds = bank_capital(sc, n_paths=paths, seed=seed, threads=threads, scheduler=dask_scheduler(scheduler),
                          progress=second_pass_progress(quiet, progress_mode, note=None))
    except (PortfolioError, ScenarioError) as exc:
        fail(str(exc))
    try:
        with atomic_folder(target) as tmp:
            capital_csv(ds, tmp / "capital.csv")
            write_netcdf(ds, tmp / "capital.nc")
            (tmp / "scenario.toml").write_text(to_toml(sc), encoding="utf-8")
    except OSError as exc:
        fail(write_error(target, exc))
    if not quiet:
        click.echo(format_capital(ds))
    click.echo(f"results written to {target} (capital.csv)")
