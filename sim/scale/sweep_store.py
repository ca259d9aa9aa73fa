"""A sweep written point by point, each point into its own region of a zarr
store, for sweeps whose results should not be held in memory at once.

The store has exactly the layout `sim.scale.grid.combine_points` gives in memory
(same variables, dims, coordinates and values), so `xr.open_zarr(path)` (or
the Dataset `SweepStore.close` returns) reads like an in-memory sweep:

    store = SweepStore.create(path, scenario, axes, points)   # layout only
    store.write(i, point_dataset)    # any order; i in grid-product order
    ds = store.close()         # attributes, consolidated metadata, lazy Dataset

or all at once, removing the store if anything fails, with `write_sweep`.

The layout comes from each distinct (horizon, period) shape among the points,
built from empty outputs (no simulation). Each point is one chunk along the
swept dims, so writes never touch another point's chunk. zarr is part of the
`dask` extra.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from models.scenario import Scenario, scenario_sha256
from sim.engine.outputs import allocate_outputs
from sim.engine.plan import build_portfolio, compile_plan
from sim.results.dataset import build_dataset
from sim.scale.grid import axis_labels, dim_name, point_record

INSTALL_HINT = "zarr is needed to write a sweep to a zarr store: pip install riskpool[dask]"
# Version 2 of the format: fixed-width strings (party names, scenario hashes)
# and consolidated metadata are part of its specification.
ZARR_FORMAT = 2


def require_zarr() -> None:
    """Raise RuntimeError (how to install) unless zarr and dask are importable."""
    if importlib.util.find_spec("zarr") is None or importlib.util.find_spec("dask") is None:
        raise RuntimeError(INSTALL_HINT)


def write_sweep(path: Path | str, scenario: Scenario, axes: dict[str, list[Any]], points: list[Scenario],
                results: Iterable[tuple[int, xr.Dataset]]) -> xr.Dataset:
    """Write each (point index, Dataset) of `results`, as it comes, into a new
    store at `path` and return the store's Dataset. On any error or interrupt
    the store is removed: no partial sweep is left behind."""
    store = SweepStore.create(path, scenario, axes, points)
    try:
        for index, ds in results:
            store.write(index, ds)
        return store.close()
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def _point_layout(point: Scenario) -> xr.Dataset:
    """A point's Dataset structure (names, dims, coords, dtypes, attrs) from
    empty per-path outputs."""
    plan = compile_plan(point, build_portfolio(point))
    sim = point.simulation
    out = allocate_outputs(2, plan.horizon // plan.period_months)
    with np.errstate(all="ignore"):
        return point_record(build_dataset(out, plan, point, seed=sim.seed, method=sim.method))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list | np.ndarray):
        return [_jsonable(v) for v in value]
    return value


class SweepStore:
    """Writes sweep points into their regions of a zarr store (see module doc)."""

    def __init__(self, path: Path, axes: dict[str, list[Any]], layout: xr.Dataset, sweep_sha: str):
        self.path = Path(path)
        self.axes = axes
        self.names = [dim_name(k) for k in axes]
        self.shape = tuple(len(v) for v in axes.values())
        self.layout = layout
        self.sweep_sha = sweep_sha
        self.attrs: dict[str, Any] = {}
        self.conflicts: set[str] = set()
        self.written = np.zeros(self.shape, dtype=bool)

    @classmethod
    def create(cls, path: Path | str, scenario: Scenario, axes: dict[str, list[Any]],
               points: list[Scenario]) -> SweepStore:
        """Write the store's layout (coordinates and empty arrays) at `path`,
        which must not exist."""
        require_zarr()
        import dask.array as da

        path = Path(path)
        if path.exists():
            raise FileExistsError(f"{path}: already exists")
        shapes = {}
        for pt in points:
            shapes.setdefault((pt.simulation.horizon_months, pt.simulation.period_months), pt)
        reps = [_point_layout(pt) for pt in shapes.values()]
        # the union of the points' coordinates, with the dtypes an outer join gives
        union = xr.concat(reps, dim="point", join="outer", combine_attrs="drop_conflicts")
        names = [dim_name(k) for k in axes]
        sizes = dict(union.sizes)
        sizes.update({n: len(v) for n, v in zip(names, axes.values())})
        variables = {}
        for name, var in union.data_vars.items():
            rest = [d for d in var.dims if d != "point"]
            # combine_points: one key renames `point` (first); several unstack it (last)
            dims = names + rest if len(names) == 1 else rest + names
            shape = tuple(sizes[d] for d in dims)
            chunks = tuple(1 if d in names else sizes[d] for d in dims)
            fill = "" if var.dtype.kind == "U" else (np.nan if var.dtype.kind == "f" else 0)
            data = da.full(shape, fill, dtype=var.dtype, chunks=chunks)
            variables[name] = xr.Variable(dims, data, attrs=var.attrs)
        coords = {c: union[c] for c in union.coords if c != "point"}
        coords.update({n: xr.Variable((n,), np.asarray(axis_labels(v)), attrs={"key": k})
                       for n, (k, v) in zip(names, axes.items())})
        layout = xr.Dataset(variables, coords=coords)
        layout.to_zarr(path, mode="w-", compute=False, consolidated=False, zarr_format=ZARR_FORMAT)
        return cls(path, axes, layout, scenario_sha256(scenario))

    def write(self, index: int, ds: xr.Dataset) -> None:
        """Write point `index` (grid-product order) of the sweep into its region."""
        at = np.unravel_index(index, self.shape)
        ds = point_record(ds)
        for key, value in ds.attrs.items():
            if key in self.conflicts:
                continue
            if key in self.attrs and not np.array_equal(np.asarray(self.attrs[key]), np.asarray(value)):
                del self.attrs[key]
                self.conflicts.add(key)
            else:
                self.attrs[key] = value
        other = [c for c in self.layout.coords if c not in self.names]
        extra = sorted(set(ds.coords) - set(other))
        if extra:
            raise ValueError(f"sweep point {index}: coordinates {extra} are not in the store's layout")
        for c in other:
            if c in ds.coords and not np.isin(ds[c].values, self.layout[c].values).all():
                raise ValueError(f"sweep point {index}: its {c!r} values {ds[c].values.tolist()} are not all "
                                 f"in the store's layout {self.layout[c].values.tolist()}")
        ds = ds.reindex({c: self.layout[c] for c in other if c in ds.coords})
        ds = ds.expand_dims({n: [self.layout[n].values[i]] for n, i in zip(self.names, at)})
        region = {n: slice(int(i), int(i) + 1) for n, i in zip(self.names, at)}
        out = xr.Dataset({name: ds[name].transpose(*var.dims).astype(var.dtype)
                          for name, var in self.layout.data_vars.items()})
        out = out.drop_vars(list(out.coords))
        out.to_zarr(self.path, region=region, mode="r+", consolidated=False)
        self.written[at] = True

    def close(self) -> xr.Dataset:
        """Set the sweep's attributes (those its points agree on, plus the
        swept keys and the sweep's scenario hash), consolidate the metadata and
        return the store as a lazy Dataset. Every point must have been written."""
        import zarr

        missing = np.flatnonzero(~self.written.ravel())
        if missing.size:
            raise RuntimeError(f"{self.path}: sweep points {missing[:10].tolist()} were never written")
        attrs = {**self.attrs, "kind": "sweep", "sweep_keys": list(self.axes),
                 "scenario_sha256": self.sweep_sha}
        group = zarr.open_group(str(self.path), mode="r+")
        group.attrs.update({k: _jsonable(v) for k, v in attrs.items()})
        zarr.consolidate_metadata(str(self.path))
        return xr.open_zarr(self.path, consolidated=True)

