"""The page's controls, described from the scenario schema (models.scenario): each control is a
dotted scenario key with the unit and the allowed range that the schema's field constraints state,
so the page and the command line accept exactly the same values."""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel

from models.parties import PARTIES
from models.scenario import STAGES, Scenario

WAN = 1e4  # money is shown in 万元 (10 000 yuan) and stored in yuan


@dataclass(frozen=True)
class Bounds:
    """The allowed range of a value (in the scenario's units), open or closed at each end."""

    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False
    open_high: bool = False

    def text(self, scale: float = 1.0) -> str:
        """The range as an interval, e.g. `[0, 1)` (values divided by `scale`)."""
        if math.isinf(self.low) and math.isinf(self.high):
            return "any"
        if math.isinf(self.high):
            return f"{'>' if self.open_low else '≥'} {self.low / scale:g}"
        left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
        return f"{left}{self.low / scale:g}, {self.high / scale:g}{right}"


@dataclass(frozen=True)
class Control:
    """One control: the scenario key it sets, its label (English, translated by sim.app.labels),
    its unit, how the shown number maps to the stored one (stored = shown * scale) and its range."""

    key: tuple[str, ...]
    label: str
    unit: str
    bounds: Bounds
    integer: bool = False
    scale: float = 1.0
    optional: bool = False  # empty means unset (no stop rule) or unlimited (inf), see `empty`
    empty: Any = None       # the stored value of an empty input

    @property
    def dotted(self) -> str:
        """The key as in scenario files and `--set`, e.g. `contract.pool.size`."""
        return ".".join(self.key)


def _bounds(metadata: list[Any]) -> Bounds:
    """The range a pydantic field's metadata (annotated_types constraints) allows."""
    b: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, Ge):
            b["low"] = float(item.ge)
        elif isinstance(item, Gt):
            b.update(low=float(item.gt), open_low=True)
        elif isinstance(item, Le):
            b["high"] = float(item.le)
        elif isinstance(item, Lt):
            b.update(high=float(item.lt), open_high=True)
    return Bounds(**b)


def _strip(annotation: Any) -> Any:
    """`X | None` -> X; `Annotated[X, ...]` is kept (its metadata holds the range)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def schema_bounds(key: tuple[str, ...] | list[str], model: type[BaseModel] = Scenario) -> Bounds:
    """The range the schema allows at a dotted key: a model field, a dict's value (a product's
    shares) or a list's item (`default.stress.0`)."""
    current: Any = model
    metadata: list[Any] = []
    for part in key:
        current = _strip(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields[part]
            current, metadata = field.annotation, list(field.metadata)
        elif typing.get_origin(current) in (dict, list):
            current, metadata = typing.get_args(current)[-1], []
        else:
            raise KeyError(".".join(key))
        current = _strip(current)
        if typing.get_origin(current) is typing.Annotated:  # e.g. list[Annotated[float, Field(le=100)]]
            extra = typing.get_args(current)[1:]
            metadata += [m for info in extra for m in getattr(info, "metadata", [info])]
            current = typing.get_args(current)[0]
    return _bounds(metadata)


def _control(key: str, label: str, unit: str, *, scale: float = 1.0, integer: bool = False,
             optional: bool = False, empty: Any = None) -> Control:
    path = tuple(key.split("."))
    return Control(path, label, unit, schema_bounds(path), integer, scale, optional, empty)


def scheme_controls() -> list[Control]:
    """The pool, guarantor, stop rule, default model and subsidy controls (shares: `share_controls`)."""
    return [
        _control("contract.pool.size", "pool size", "万元", scale=WAN),
        _control("contract.guarantor.capital", "guarantor capital", "万元", scale=WAN, optional=True,
                 empty=math.inf),
        _control("contract.guarantor.leverage", "guarantor leverage", "×", optional=True, empty=math.inf),
        _control("contract.stop_rule.default_rate", "stop at default rate", "fraction", optional=True),
        _control("contract.stop_rule.compensation_rate", "stop at compensation rate", "fraction",
                 optional=True),
        _control("default.rho_systematic", "systematic correlation", "fraction"),
        _control("default.rho_sector", "sector correlation", "fraction"),
        *[_control(f"default.pd_annual.{stage}", f"annual PD, {stage}", "probability") for stage in STAGES],
        _control("policy.interest_subsidy_share", "interest subsidy share", "fraction"),
    ]


def stress_controls(horizon_months: int) -> list[Control]:
    """One hazard multiplier per year of the horizon (empty: 1, no stress that year)."""
    years = -(-horizon_months // 12)
    return [_control(f"default.stress.{i}", f"stress, year {i + 1}", "× hazard", optional=True, empty=1.0)
            for i in range(years)]


def share_controls(product: str) -> list[Control]:
    """A product's shares of each defaulted yuan, every party but the bank: the bank keeps the rest,
    so the shares always add up to 1 and a share too many shows as the bank's negative rest."""
    return [_control(f"contract.shares.{product}.{party}", f"{party} share", "fraction")
            for party in PARTIES if party != "bank"]


def paths_control() -> Control:
    """The Monte Carlo path count."""
    return _control("simulation.n_paths", "paths", "paths", integer=True)
