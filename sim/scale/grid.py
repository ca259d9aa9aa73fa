"""Sweeps: the cartesian product of scenario keys, run with common random
numbers (one seed for every point), returned as one Dataset whose dimensions
are the swept keys.

A sweep comes from the scenario's ``[sweep]`` table or from ``--grid`` options:

    [sweep.grid]
    "contract.pool.size" = [20e6, 40e6, 60e6, 80e6]
    sharing = ["2:2:6", "4321"]          # names of [sweep.sharing.<name>] tables

    [sweep.sharing."2:2:6"]
    bank = 0.2
    pool = 0.2
    guarantor = 0.6

`sharing` sets every product's `contract.shares` to the named option.
This module turns a grid into validated point scenarios and the points'
Datasets into the sweep's; `sim.scale.sweep` runs them.
"""

from __future__ import annotations

import copy
import itertools
import tomllib
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from models.scenario import (
    Scenario,
    ScenarioError,
    apply_overrides,
    scenario_from_mapping,
    scenario_sha256,
)

SHARING = "sharing"


def parse_grid(texts: Sequence[str]) -> dict[str, list[Any]]:
    """``KEY=v1,v2,...`` options into {key: [values]} (values read as TOML)."""
    grid: dict[str, list[Any]] = {}
    for text in texts:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise ScenarioError(f"--grid {text!r}: expected KEY=v1,v2,... with at least one value")
        values = []
        for item in raw.split(","):
            item = item.strip()
            try:
                values.append(tomllib.loads(f"v = {item}")["v"])
            except tomllib.TOMLDecodeError:
                values.append(item)
        grid[key] = values
    return grid


def dim_name(key: str) -> str:
    """Short dimension name of a dotted key: its last two parts (pool_size)."""
    parts = key.split(".")
    return "_".join(parts[-2:]) if len(parts) > 1 else key


def sweep_axes(scenario: Scenario, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The scenario's [sweep.grid], with command-line keys replacing or adding axes."""
    axes = {**scenario.sweep.grid, **grid} if scenario.sweep else dict(grid)
    if not axes:
        raise ScenarioError(f"{scenario.source}: nothing to sweep: "
                            "add a [sweep.grid] table or --grid KEY=v1,v2")
    names = [dim_name(k) for k in axes]
    if len(set(names)) != len(names):
        raise ScenarioError(f"swept keys {list(axes)} give clashing dimension names {names}")
    for key, values in axes.items():
        if not values:
            raise ScenarioError(f"{scenario.source}: sweep.grid.{key}: needs at least one value")
        if len({repr(v) for v in values}) != len(values):
            raise ScenarioError(f"{scenario.source}: sweep.grid.{key}: values repeat: {values}")
    return axes


def point_scenarios(scenario: Scenario, axes: dict[str, list[Any]]) -> list[Scenario]:
    """One validated scenario per grid point (product order); a bad point is an
    error that names the key and value."""
    raw = scenario.model_dump(mode="python", exclude={"sweep"})
    options = scenario.sweep.sharing if scenario.sweep else {}
    points = []
    for values in itertools.product(*axes.values()):
        data = raw
        labels = []
        for key, value in zip(axes, values):
            labels.append(f"{key}={value}")
            if key == SHARING:
                if value not in options:
                    raise ScenarioError(
                        f"{scenario.source}: sweep.grid.sharing: unknown option {value!r}; "
                        f"defined in [sweep.sharing]: {sorted(options)}"
                    )
                shares = options[value].model_dump()
                data = copy.deepcopy(data)
                data["contract"]["shares"] = {p: dict(shares) for p in scenario.products}
            else:
                if not isinstance(value, str | int | float | bool):
                    raise ScenarioError(f"{scenario.source}: sweep.grid.{key}: values must be plain values")
                data = apply_overrides(data, [f"{key}={_toml_value(value)}"])
        source = f"{scenario.source} [sweep point {', '.join(labels)}]"
        points.append(scenario_from_mapping(data, source=source))
        points[-1]._source = scenario.source
    return points


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float) and not np.isfinite(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def point_record(ds: xr.Dataset) -> xr.Dataset:
    """What a sweep keeps of a point's Dataset: no tail curves (nor their
    `level` coordinate), and the point's scenario hash as a variable."""
    ds = ds.drop_vars([v for v in ds.data_vars if v.endswith("_curve")] + ["level"], errors="ignore")
    ds["scenario_sha256"] = ((), np.array(ds.attrs["scenario_sha256"], dtype="<U64"))
    return ds


def combine_points(scenario: Scenario, axes: dict[str, list[Any]], datasets: list[xr.Dataset]) -> xr.Dataset:
    """The points' Datasets (in grid product order) as one with the swept dims."""
    combined = xr.concat([point_record(d) for d in datasets], dim="point",
                         combine_attrs="drop_conflicts", join="outer")
    names = [dim_name(k) for k in axes]
    if len(names) == 1:  # one key: the point dimension simply becomes it
        combined = combined.rename(point=names[0]).assign_coords({names[0]: list(axes.values())[0]})
    else:
        index = {n: ("point", list(col)) for n, col in zip(names, zip(*itertools.product(*axes.values())))}
        combined = combined.assign_coords(index).set_index(point=names).unstack("point")
        # unstack sorts each dimension's labels: keep the order the grid gives
        combined = combined.sel({n: list(v) for n, v in zip(names, axes.values())})
    for name, key in zip(names, axes):
        combined[name].attrs["key"] = key
    combined.attrs["kind"] = "sweep"
    combined.attrs["sweep_keys"] = list(axes)
    combined.attrs["scenario_sha256"] = scenario_sha256(scenario)
    return combined
