"""`riskpool report`: rebuild a results folder's plots and report.html."""

from __future__ import annotations

from pathlib import Path

import click
import xarray as xr

from sim.cli.common import fail
from sim.report.html import write_report
from sim.results.accessor import ResultError
from sim.results.io import read_netcdf

# What each kind of results folder holds its data in.
DATA_FILES = ("results.nc", "allocation.nc", "results.zarr")


@click.command()
@click.argument("folder", type=click.Path(file_okay=False))
def report(folder: str) -> None:
    """Rebuild the plots and report.html of a results folder from its results.nc
    (an optimizer's allocation.nc, or a sweep's results.zarr)."""
    path = Path(folder)
    data = next((path / n for n in DATA_FILES if (path / n).exists()), path / "results.nc")
    if not data.exists():
        if (path / "plan.nc").exists():
            fail(f"{path / 'plan.nc'}: written by an older riskpool (the optimizer's answer is now "
                 "allocation.nc); run `riskpool optimize` again")
        fail(f"{data}: not found; FOLDER must be a results folder written by riskpool run/sweep/optimize")
    try:
        ds = xr.open_zarr(data).load() if data.suffix == ".zarr" else read_netcdf(data)
        ds.riskpool.kind  # noqa: B018  (a file of another program is refused before anything is written)
    except (OSError, ValueError, KeyError, ImportError) as exc:
        fail(f"{data}: cannot be read: {exc}")
    frontier_nc = path / "frontier.nc"
    frontier = read_netcdf(frontier_nc) if frontier_nc.is_file() else None
    toml_path = path / "scenario.toml"
    toml_text = toml_path.read_text(encoding="utf-8") if toml_path.is_file() else ""
    try:
        written = write_report(ds, path, toml_text, frontier)
    except (OSError, ResultError) as exc:
        fail(f"{path}: cannot write the report: {getattr(exc, 'strerror', None) or exc}")
    click.echo(f"report written to {written}")
