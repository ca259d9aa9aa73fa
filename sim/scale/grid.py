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

Grammar of ``--grid KEY=VALUES``:

- VALUES is a comma-separated list of TOML values; commas inside ``[...]``,
  ``{...}`` or quotes do not separate: ``default.stress=[],[1.5,2,1.5]`` is
  two values, the empty list and a three-year stress. A value that is not
  TOML is read as a string.
- ``LO:HI:STEP`` (numbers) is the range LO, LO + STEP, ... up to HI
  included; ``LO:HI:xR`` the geometric range LO, LO R, LO R^2, ... up to HI
  (``contract.pool.size=10e6:80e6:10e6``, ``contract.pool.size=5e6:80e6:x2``).
- ``sharing`` takes names of ``[sweep.sharing.<name>]`` options, always as
  strings (``sharing=2:2:6,4321``).

Any value the key accepts can be swept, lists and tables included; a
dimension's labels are then the values' TOML text (``"[1.5, 2, 1.5]"``).
"""

from __future__ import annotations

import copy
import itertools
import re
import tomllib
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from models.scenario import (
    Scenario,
    ScenarioError,
    apply_overrides,
    key_path,
    scenario_from_mapping,
    scenario_sha256,
)

SHARING = "sharing"


GRID_GRAMMAR = ("KEY=v1,v2,... with at least one value (TOML values; commas inside [...] or quotes do "
                "not separate), or KEY=LO:HI:STEP or KEY=LO:HI:xRATIO (ranges, HI included)")
MAX_RANGE = 10_000  # values one range may give


def _split_values(raw: str) -> list[str]:
    """Split at the commas outside brackets, braces and quotes."""
    items, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(raw):
        if quote:
            quote = "" if ch == quote and raw[i - 1] != "\\" else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(raw[start:i])
            start = i + 1
    items.append(raw[start:])
    return [item.strip() for item in items]


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if np.isfinite(value) else None


def _range(text: str) -> list[float] | None:
    """The values of a ``LO:HI:STEP`` or ``LO:HI:xRATIO`` range, None if `text` is not one."""
    parts = text.split(":")
    if len(parts) != 3:
        return None
    lo, hi = _number(parts[0]), _number(parts[1])
    geometric = parts[2].strip().startswith("x")
    step = _number(parts[2].strip()[1:] if geometric else parts[2])
    if lo is None or hi is None or step is None:
        return None
    if hi < lo or (step <= 1.0 if geometric else step <= 0.0) or (geometric and lo <= 0.0):
        raise ValueError(f"range {text!r}: needs LO <= HI and a step > 0 (a ratio xR > 1, LO > 0)")
    count = (np.log(hi / lo) / np.log(step) if geometric else (hi - lo) / step) + 1e-9
    if count >= MAX_RANGE:
        raise ValueError(f"range {text!r}: more than {MAX_RANGE:,} values")
    k = np.arange(int(np.floor(count)) + 1)
    values = lo * step ** k if geometric else lo + step * k
    # integers where they are written so (1:5:1, 1000:8000:x2) and every value is whole
    written = [p.strip().lstrip("x+-") for p in parts]
    integers = all(w.isdigit() for w in written) and all(float(v).is_integer() for v in values)
    # 12 significant digits: 0.1:0.3:0.1 gives 0.3, not 0.30000000000000004
    return [int(v) if integers else float(f"{v:.12g}") for v in values]


def parse_values(key: str, raw: str) -> list[Any]:
    """The values of one ``--grid`` option (module doc)."""
    values: list[Any] = []
    for item in _split_values(raw):
        if not item:
            raise ValueError("an empty value (two commas in a row, or one at an end)")
        if key == SHARING:
            values.append(item[1:-1] if item[:1] in "\"'" and item[-1:] == item[:1] else item)
            continue
        expanded = _range(item)
        if expanded is not None:
            values.extend(expanded)
            continue
        try:
            values.append(tomllib.loads(f"v = {item}")["v"])
        except tomllib.TOMLDecodeError:
            values.append(item)
    return values


def parse_grid(texts: Sequence[str]) -> dict[str, list[Any]]:
    """``--grid`` options into {key: [values]} (grammar in the module doc)."""
    grid: dict[str, list[Any]] = {}
    for text in texts:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise ScenarioError(f"--grid {text!r}: expected {GRID_GRAMMAR}")
        try:
            grid[key] = parse_values(key, raw)
        except ValueError as exc:
            raise ScenarioError(f"--grid {text!r}: {exc}; expected {GRID_GRAMMAR}") from None
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
        if len({_same_value(v) for v in values}) != len(values):
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
                data = apply_overrides(data, [f"{_toml_key(key)}={_toml_value(value)}"])
        source = f"{scenario.source} [sweep point {', '.join(labels)}]"
        points.append(scenario_from_mapping(data, source=source))
        points[-1]._source = scenario.source
    return points


def _same_value(value: Any) -> str:
    """What makes two swept values the same point: 1e7 and 10000000 are one value."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(float(value))
    return _toml_value(value)


def _toml_key(key: str) -> str:
    """A dotted key as an override writes it: each part quoted unless it is a bare TOML key
    (so a product named 科技贷, or one with dots written in quotes, is one part)."""
    parts = key_path(key) or key.split(".")
    return ".".join(part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else _toml_value(part) for part in parts)


def _toml_value(value: Any) -> str:
    """`value` as TOML text (lists and tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float) and not np.isfinite(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_value(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def axis_labels(values: list[Any]) -> list[Any]:
    """A swept key's dimension labels: the values, or their TOML text where a value is a list or table."""
    if any(isinstance(v, list | tuple | dict) for v in values):
        return [_toml_value(v) for v in values]
    return list(values)


def point_record(ds: xr.Dataset) -> xr.Dataset:
    """What a sweep keeps of a point's Dataset: no tail curves (nor their
    `level` coordinate), no per-path values (nor `path`), and the point's
    scenario hash as a variable."""
    dropped = [v for v in ds.data_vars if v.endswith("_curve") or "path" in ds[v].dims] + ["level", "path"]
    ds = ds.drop_vars(dropped, errors="ignore")
    ds["scenario_sha256"] = ((), np.array(ds.attrs["scenario_sha256"], dtype="<U64"))
    return ds


def combine_points(scenario: Scenario, axes: dict[str, list[Any]], datasets: list[xr.Dataset]) -> xr.Dataset:
    """The points' Datasets (in grid product order) as one with the swept dims."""
    combined = xr.concat([point_record(d) for d in datasets], dim="point",
                         combine_attrs="drop_conflicts", join="outer")
    names = [dim_name(k) for k in axes]
    labels = [axis_labels(v) for v in axes.values()]
    if len(names) == 1:  # one key: the point dimension simply becomes it
        combined = combined.rename(point=names[0]).assign_coords({names[0]: labels[0]})
    else:
        index = {n: ("point", list(col)) for n, col in zip(names, zip(*itertools.product(*labels)))}
        combined = combined.assign_coords(index).set_index(point=names).unstack("point")
        # unstack sorts each dimension's labels: keep the order the grid gives
        combined = combined.sel(dict(zip(names, labels)))
    for name, key in zip(names, axes):
        combined[name].attrs["key"] = key
    combined.attrs["kind"] = "sweep"
    combined.attrs["sweep_keys"] = list(axes)
    combined.attrs["scenario_sha256"] = scenario_sha256(scenario)
    return combined
