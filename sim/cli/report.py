"""`riskpool report`: rebuild a results folder's plots and report.html."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
import xarray as xr

from sim.cli.common import fail, lang_option
from sim.report.html import write_report
from sim.results.accessor import ResultError
from sim.results.io import read_netcdf

T = TypeVar("T")
# What each kind of results folder holds its data in.
DATA_FILES = ("results.nc", "allocation.nc", "results.zarr")


@click.command()
@click.argument("folder", type=click.Path(file_okay=False))
@lang_option
def report(folder: str, lang: str) -> None:
    """Rebuild the plots and report.html of a results folder from its results.nc
    (an optimizer's allocation.nc, or a sweep's results.zarr)."""
    path = Path(folder)
    data = next((path / n for n in DATA_FILES if (path / n).exists()), path / "results.nc")
    if not data.exists():
        if (path / "plan.nc").exists():
            fail(f"{path / 'plan.nc'}: written by an older riskpool (the optimizer's answer is now "
                 "allocation.nc); run `riskpool optimize` again")
        fail(f"{data}: not found; FOLDER must be a results folder written by riskpool run/sweep/optimize")
    ds = read_or_fail(data, lambda: xr.open_zarr(data).load() if data.suffix == ".zarr"
                      else read_netcdf(data))
    read_or_fail(data, lambda: ds.riskpool.kind)  # another program's file: refused before any write
    frontier_nc = path / "frontier.nc"
    frontier = read_or_fail(frontier_nc, lambda: read_netcdf(frontier_nc)) \
        if frontier_nc.is_file() else None
    toml_path = path / "scenario.toml"
    toml_text = read_or_fail(toml_path, lambda: toml_path.read_text(encoding="utf-8")) \
        if toml_path.is_file() else ""
    record_path = path / "allocation.json"
    record = read_or_fail(record_path, lambda: json.loads(record_path.read_text(encoding="utf-8"))) \
        if ds.riskpool.kind == "allocation" else None
    try:
        # everything is drawn in a temporary folder first: a failure leaves the folder as it was
        with tempfile.TemporaryDirectory(prefix=".report.", dir=path) as tmp:
            write_report(ds, Path(tmp), toml_text, frontier, record, lang=lang)
            for made in sorted(Path(tmp).iterdir()):
                os.replace(made, path / made.name)
    except (OSError, ResultError, ValueError, KeyError) as exc:
        fail(f"{path}: cannot write the report: {getattr(exc, 'strerror', None) or exc}")
    click.echo(f"report written to {path / 'report.html'}")


def read_or_fail(path: Path, read: Callable[[], T]) -> T:
    """`read()`, or exit 2 naming `path` when the file is not what riskpool wrote."""
    try:
        return read()
    except (OSError, ValueError, KeyError, ImportError, UnicodeDecodeError) as exc:
        fail(f"{path}: cannot be read ({exc}); is it a folder riskpool wrote?")
    raise AssertionError("unreachable")
