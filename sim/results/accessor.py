"""`ds.riskpool`: how every reader (terminal, HTML report, CLI) reads a
result Dataset, without rebuilding variable names from strings.

    ds.riskpool.kind                          # "run", "sweep", "twin" or "allocation"
    ds.riskpool.estimate("loss_es", party="bank", quantile=0.99)   # Estimate(value, se)
    ds.riskpool.estimates("pool_exhaustion_prob")                  # Estimate of DataArrays
    ds.riskpool.party_table(0.99)             # per-party E[loss], VaR, ES with SEs, share
    ds.riskpool.headline()                    # flat dict of headline figures (summary.json/csv)
    ds.riskpool.required_pool(0.01)           # smallest pool dry with probability <= 1 %, Estimate
    ds.riskpool.contributions("sector", "bank")   # who carries the bank's tail: a DataFrame

An estimate's standard error is the variable its `standard_error` attribute
names (set from `sim.results.units`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import xarray as xr

from models.portfolio import GROUPINGS
from sim.risk.estimators import Estimate

KINDS = ("run", "sweep", "twin", "allocation", "compare", "capital")


class ResultError(ValueError):
    """A Dataset that is not a riskpool result of the kind asked for."""


@dataclass(frozen=True)
class PartyRow:
    """One row of the per-party table: yuan, share of the expected total loss."""

    label: str
    mean: Estimate
    var: Estimate
    es: Estimate
    share: float


@dataclass(frozen=True)
class PartyTable:
    """Per party that bears anything, then the total, at VaR/ES level `q`."""

    q: float
    rows: tuple[PartyRow, ...]


@xr.register_dataset_accessor("riskpool")
class RiskpoolAccessor:
    """Domain reading of a riskpool result Dataset (see the module docstring)."""

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    @property
    def kind(self) -> str:
        """What produced the Dataset: run, sweep, twin or allocation."""
        kind = self._ds.attrs.get("kind")
        if kind not in KINDS:
            raise ResultError(f"not a riskpool result: its `kind` attribute is {kind!r}, "
                              f"expected one of {KINDS}")
        return str(kind)

    def require(self, *kinds: str) -> None:
        if self.kind not in kinds:
            raise ResultError(f"a {self.kind} result has no such figures "
                              f"(they belong to: {', '.join(kinds)})")

    def _se_name(self, name: str) -> str:
        if name not in self._ds.data_vars:
            raise KeyError(f"{name}: no such variable in this {self.kind} result")
        se = self._ds[name].attrs.get("standard_error")
        if se is None:
            raise KeyError(f"{name}: not an estimate (it has no standard error)")
        return se

    def estimates(self, name: str, **sel) -> Estimate:
        """Value and standard error of estimate `name` as DataArrays (selected by `sel`)."""
        se = self._se_name(name)
        value, error = self._ds[name], self._ds[se]
        if sel:
            value, error = value.sel(**sel), error.sel(**sel)
        return Estimate(value, error)

    def estimate(self, name: str, **sel) -> Estimate:
        """Value and standard error of estimate `name` at one point (`sel` picks it), as floats."""
        value, error = self.estimates(name, **sel)
        if value.ndim or error.ndim:
            raise ValueError(f"{name}: select one value of {list(value.dims)} (e.g. {value.dims[0]}=...)")
        return Estimate(float(value), float(error))

    def required_pool(self, target: float | None = None, **sel) -> Estimate:
        """The smallest initial pool (yuan) that runs dry with probability at
        most `target` (default the Dataset's `sizing_target`), and its SE:
        the (1 - target) quantile of the paths' required pools."""
        if target is None:
            if "sizing_target" not in self._ds.attrs:
                raise ValueError("give a target: this Dataset was not made by sim.size")
            target = float(self._ds.attrs["sizing_target"])
        level = 1.0 - float(target)
        found = self.level(level)
        if abs(found - level) > 1e-12:
            levels = list(map(float, self._ds["quantile"].values))
            raise ValueError(f"no quantile {level:g} in this Dataset (it has {levels}); run sim.size with "
                             "this target")
        return self.estimate("required_pool_quantile", quantile=found, **sel)

    def level(self, q: float = 0.99) -> float:
        """The quantile level of the Dataset nearest to `q`."""
        return float(self._ds["quantile"].sel(quantile=q, method="nearest"))

    def table_level(self) -> float:
        """The level a table shows by default: the highest of the Dataset's quantiles up to 0.99
        (the lowest when all are above)."""
        levels = sorted(map(float, self._ds["quantile"].values))
        return max([q for q in levels if q <= 0.99], default=levels[0])

    def party_table(self, q: float = 0.99) -> PartyTable:
        """E[loss], VaR_q and ES_q with SEs of each party that bears anything, then the total."""
        self.require("run")
        q = self.level(q)
        total = self.estimate("gross_loss_mean").value

        def row(label: str, prefix: str, share: float, **sel) -> PartyRow:
            return PartyRow(label, self.estimate(f"{prefix}_mean", **sel),
                            self.estimate(f"{prefix}_quantile", quantile=q, **sel),
                            self.estimate(f"{prefix}_es", quantile=q, **sel), share)

        rows = []
        for party in map(str, self._ds.party.values):
            mean = self.estimate("loss_mean", party=party).value
            if mean == 0 and float(self._ds.loss_quantile.sel(party=party).max()) == 0:
                continue
            rows.append(row(party, "loss", mean / total if total else 0.0, party=party))
        rows.append(row("total", "gross_loss", 1.0 if total else 0.0))
        return PartyTable(q, tuple(rows))

    def groupings(self) -> list[str]:
        """The groupings a run holds risk contributions by (`sim.run(..., contributions=...)`)."""
        return [by for by in GROUPINGS if f"contribution_es_{by}" in self._ds]

    def contributions(self, by: str, loss_of: str = "gross", q: float | None = None) -> pd.DataFrame:
        """Euler contributions of each group of `by` to the ES and VaR at level q (default
        `table_level`) of `loss_of` ("gross" or a party): columns es, es_se, es_share, var, var_se
        (yuan; shares of the ES), largest ES first."""
        self.require("run")
        if by not in self.groupings():
            raise KeyError(f"no contributions by {by!r} in this run (it has: {self.groupings() or 'none'}); "
                           f"run it with contributions=[{by!r}] (riskpool run --contributions {by})")
        q = self.level(self.table_level() if q is None else q)
        pick = {"loss_of": loss_of, "quantile": q}
        es, es_se = self.estimates(f"contribution_es_{by}", **pick)
        var, var_se = self.estimates(f"contribution_var_{by}", **pick)
        total = float(es.sum())
        frame = pd.DataFrame({"es": es.values, "es_se": es_se.values,
                              "es_share": es.values / total if total else 0.0,
                              "var": var.values, "var_se": var_se.values},
                             index=pd.Index(list(map(str, es[by].values)), name=by))
        return frame.sort_values("es", ascending=False, kind="stable")

    def headline(self) -> dict[str, float]:
        """Headline figures with their standard errors, a flat dict (money in yuan).

        A run: losses (total and per party) with VaR and ES at every level of
        the Dataset's quantiles, probabilities and means of money. A twin:
        every scalar variable.
        """
        if self.kind == "twin":
            return {str(k): float(v) for k, v in self._ds.data_vars.items() if v.ndim == 0}
        self.require("run")
        out: dict[str, float] = {}

        def put(key: str, name: str, **sel) -> None:
            value, se = self.estimate(name, **sel)
            out[key], out[f"{key}_se"] = value, se

        levels = [float(q) for q in self._ds["quantile"].values]
        out["gross_loss_mean"], out["gross_loss_se"] = self.estimate("gross_loss_mean")
        for q in levels:
            put(f"gross_loss_var{q:g}", "gross_loss_quantile", quantile=q)
            put(f"gross_loss_es{q:g}", "gross_loss_es", quantile=q)
        for party in map(str, self._ds.party.values):
            out[f"{party}_loss_mean"], out[f"{party}_loss_se"] = self.estimate("loss_mean", party=party)
            for q in levels:
                put(f"{party}_loss_var{q:g}", "loss_quantile", party=party, quantile=q)
                put(f"{party}_loss_es{q:g}", "loss_es", party=party, quantile=q)
        for name in ("pool_exhaustion_prob", "stop_rule_prob"):
            put(name, name)
        if "fiscal_cost_per_credit" in self._ds:
            put("fiscal_cost_per_credit", "fiscal_cost_per_credit")
            for name in ("public_money", "cover_written"):
                out[name] = float(self._ds[name])
        for name in ("default_rate", "credit_supplied", "fiscal_cost", "subsidy",
                     "guarantee_compensation", "bank_reward", "bank_net_income"):
            out[f"{name}_mean"], out[f"{name}_se"] = self.estimate(f"{name}_mean")
        return out
