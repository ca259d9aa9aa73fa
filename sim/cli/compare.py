"""`riskpool compare`: runs side by side, differences with standard errors."""

from __future__ import annotations

from pathlib import Path

import click

from sim.cli.common import fail, finite_number, results_folder, write_error
from sim.cli.report import read_or_fail
from sim.report.bank_tables import format_compare
from sim.report.html import write_compare_report
from sim.results.compare import compare_runs
from sim.results.io import atomic_folder, read_netcdf, write_netcdf


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--quantile", type=float, callback=finite_number(0, 1, open_low=True, open_high=True),
              help="The VaR/ES level compared, one of every run's simulation.quantiles (default: the "
                   "first run's table level, the highest up to 0.99).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Folder to write (default results/compare-<time>); must not exist.")
def compare(runs: tuple[str, ...], quantile: float | None, out: str | None) -> None:
    """Headline figures of two or more results folders (of `riskpool run`) side by side, with each
    one's difference from the first and its standard error: paired path by path when the runs share
    book, seed and paths (a stressed run against its base, say), unpaired with a note otherwise.
    Writes compare.csv, compare.nc and report.html (the loss curves overlaid).

    \b
    Example:
      riskpool run scenarios/bank_book.toml --out results/base
      riskpool run scenarios/bank_book.toml --set 'default.stress=[1.5,2,1.5,1]' --out results/stressed
      riskpool compare results/base results/stressed"""
    if len(runs) < 2:
        fail("compare needs two results folders or more")
    target = results_folder(None, out, "-compare")
    data = []
    for folder in runs:
        path = Path(folder) / "results.nc"
        if not path.is_file():
            fail(f"{path}: not found; each RUN must be a results folder written by riskpool run")
        ds = read_or_fail(path, lambda p=path: read_netcdf(p))
        if read_or_fail(path, lambda d=ds: d.riskpool.kind) != "run":
            fail(f"{path}: a {ds.riskpool.kind} result; compare takes folders of riskpool run")
        data.append(ds)
    names = _names(runs)
    try:
        cmp = compare_runs(data, names, quantile)
    except ValueError as exc:
        fail(str(exc))
    try:
        with atomic_folder(target) as tmp:
            write_netcdf(cmp, tmp / "compare.nc")
            write_compare_report(cmp, data, tmp)
    except OSError as exc:
        fail(write_error(target, exc))
    click.echo(format_compare(cmp))
    click.echo(f"results written to {target} (open {target / 'report.html'})")


def _names(runs: tuple[str, ...]) -> list[str]:
    """Each run's label: its folder's name, with its position where two names are the same."""
    names = [Path(r).resolve().name for r in runs]
    return [f"{n}#{i + 1}" if names.count(n) > 1 else n for i, n in enumerate(names)]
