"""What the page simulates: a scenario file's raw mapping, the values a person changed on the page
(scenario units: yuan, fractions, multipliers) and the path count, turned into a validated
`Scenario` exactly as `riskpool run --set ...` would validate it, and back into a TOML file that
`riskpool run` repeats bit for bit."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.parties import PARTIES
from models.scenario import Scenario, ScenarioError, read_toml, scenario_from_mapping, set_key, to_toml

STRESS_KEY = ("default", "stress")


@dataclass(frozen=True)
class Setting:
    """A scenario as read (`raw`, relative portfolio paths resolved against `base_dir`) and the
    page's changes to it: dotted key -> value in the scenario's units."""

    raw: Mapping[str, Any]
    base_dir: Path
    source: str
    n_paths: int
    changes: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: str | Path, n_paths: int) -> Setting:
        """The setting of a scenario file, unchanged; ScenarioError if the file is not valid TOML."""
        p = Path(path)
        return cls(read_toml(p), p.resolve().parent, p.name, n_paths)

    def changed(self, changes: Mapping[str, Any], n_paths: int | None = None) -> Setting:
        """This setting with other changes (and path count)."""
        return Setting(self.raw, self.base_dir, self.source, self.n_paths if n_paths is None else n_paths,
                       dict(changes))

    def mapping(self) -> dict[str, Any]:
        """The raw scenario with the changes and the path count set (before validation)."""
        data = copy.deepcopy(dict(self.raw))
        for key, value in self.changes.items():
            set_key(data, key.split("."), value)
        set_key(data, ["simulation", "n_paths"], self.n_paths)
        return data

    def scenario(self) -> Scenario:
        """The validated scenario; ScenarioError with one `source: key: why` line per problem."""
        return scenario_from_mapping(self.mapping(), source=self.source, base_dir=self.base_dir)

    def toml(self) -> str:
        """The resolved scenario as TOML: `riskpool run` on it repeats the page's run (its seed, its
        path count, the portfolio file by its absolute path)."""
        return to_toml(self.scenario())


def current(raw: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """The value at a dotted key of a raw scenario (`default` where it is not set)."""
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def shares_with_bank_rest(others: Mapping[str, float]) -> dict[str, float]:
    """A product's shares of every party given all but the bank's: the bank keeps 1 - their sum
    (rounded to 12 decimals, so 1 - 0.8 reads 0.2; negative when the others pass 1)."""
    rest = round(1.0 - math.fsum(others.values()), 12)
    return {party: (rest if party == "bank" else float(others.get(party, 0.0))) for party in PARTIES}


def stress_list(years: list[float | None]) -> list[float]:
    """One multiplier per year from the page's inputs (empty: 1), later years of 1 dropped."""
    values = [1.0 if v is None else float(v) for v in years]
    while values and values[-1] == 1.0:
        values.pop()
    return values


def error_lines(exc: ScenarioError, source: str) -> list[tuple[str, str]]:
    """(dotted key, message) of each line of a scenario error (key "" where none is named)."""
    out = []
    for line in str(exc).splitlines():
        where, sep, why = line.removeprefix(f"{source}: ").partition(": ")
        out.append((where, why) if sep else ("", line))
    return out
