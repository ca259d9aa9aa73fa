"""Writing a run's results folder atomically: everything goes into a hidden
temporary folder beside the target, which is renamed into place only when
complete, so an interrupted or failed run leaves no half-written folder."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import xarray as xr


class OutputError(OSError):
    """The results folder cannot be written (exists already, or not writable)."""


@contextlib.contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success rename it to `target`."""
    target = Path(target)
    if target.exists():
        raise OutputError(f"{target}: already exists; choose another --out folder")
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    except OSError as exc:
        raise OutputError(f"{target}: cannot create the results folder: {exc.strerror or exc}") from None
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_netcdf(ds: xr.Dataset, path: Path) -> None:
    ds.to_netcdf(path, engine="h5netcdf")


def read_netcdf(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()
