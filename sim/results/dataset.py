"""Turn per-path arrays into one labelled `xarray.Dataset` with a standard
error beside every estimate (the estimators are those of
`sim.risk.estimators`; units from `sim.results.units`)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import numpy as np
import xarray as xr

from models.scenario import PARTIES, Scenario, scenario_sha256
from sim.engine.outputs import PathOutputs
from sim.engine.plan import Plan
from sim.results.units import label
from sim.risk import estimators


def riskpool_version() -> str:
    try:
        return version("riskpool")
    except PackageNotFoundError:
        return "0+unknown"


def add_mean(data: dict, name: str, x: np.ndarray, dims: tuple[str, ...] = ()) -> None:
    """Put `<name>_mean` and `<name>_se` (over axis 0) into a Dataset's variables."""
    m, se = estimators.mean(x)
    data[f"{name}_mean"] = (dims, m)
    data[f"{name}_se"] = (dims, se)


def add_probability(data: dict, name: str, flags: np.ndarray) -> None:
    """Put `<name>` and `<name>_se`, the probability of a per-path event, into a Dataset's variables."""
    p, se = estimators.probability(flags)
    data[name], data[f"{name}_se"] = ((), p), ((), se)


def add_tail(data: dict, name: str, x: np.ndarray, quantiles: np.ndarray) -> None:
    """Put `<name>_quantile`, `<name>_es` and their SEs (dim `quantile`) into a Dataset's variables."""
    t = estimators.tail_table(x, quantiles)
    for row, suffix in enumerate(("quantile", "quantile_se", "es", "es_se")):
        data[f"{name}_{suffix}"] = (("quantile",), t[row])


# Probability levels of the loss curves (for plots): dense in the tail.
CURVE_LEVELS = np.concatenate([np.linspace(0.0, 0.9, 46)[:-1], 1.0 - np.logspace(-1, -4, 61)])


def build_dataset(out: PathOutputs, plan: Plan, scenario: Scenario, seed: int, method: str) -> xr.Dataset:
    """The run's Dataset (kind "run"): dims `party`, `quantile`, `period`; money in yuan."""
    n = out.gross_loss.size
    quantiles = np.asarray(scenario.simulation.quantiles, dtype=float)
    periods = (np.arange(out.pool_balance.shape[1]) + 1) * plan.period_months
    data: dict[str, tuple] = {}

    add_mean(data, "gross_loss", out.gross_loss)
    add_tail(data, "gross_loss", out.gross_loss, quantiles)
    originated = np.maximum(out.n_originated, 1.0)
    add_mean(data, "default_rate", out.n_defaults / originated)
    add_mean(data, "default_rate_by_amount", out.defaulted_amount / np.maximum(out.credit, 1.0))
    add_mean(data, "defaults_by_period", out.period_defaults.astype(float), ("period",))

    add_mean(data, "loss", out.party_loss, ("party",))
    party_tail = np.stack([estimators.tail_table(out.party_loss[:, j], quantiles)
                           for j in range(len(PARTIES))])
    for row, suffix in enumerate(("quantile", "quantile_se", "es", "es_se")):
        data[f"loss_{suffix}"] = (("party", "quantile"), party_tail[:, row, :])

    levels = CURVE_LEVELS[CURVE_LEVELS * n >= 1.0] if n > 1 else CURVE_LEVELS[:1]
    curve_x = np.column_stack([out.party_loss, out.gross_loss])
    curves = estimators.quantiles(curve_x, levels).T
    data["loss_curve"] = (("party", "level"), curves[:-1])
    data["gross_loss_curve"] = (("level",), curves[-1])

    add_probability(data, "pool_exhaustion_prob", out.exhausted)
    add_probability(data, "stop_rule_prob", out.stop_month >= 0)
    add_mean(data, "pool_balance", out.pool_balance, ("period",))
    data["pool_balance_quantile"] = (
        ("period", "quantile"),
        estimators.quantiles(out.pool_balance, quantiles).T,
    )
    data["pool_balance_low"] = (  # the bad side of the pool: balance at the (1 - q) quantile
        ("period", "quantile"),
        estimators.quantiles(out.pool_balance, 1.0 - quantiles).T,
    )
    add_mean(data, "guarantor_capital", out.guarantor_capital, ("period",))
    add_mean(data, "credit_supplied", out.credit)
    add_mean(data, "fiscal_cost", out.fiscal_cost)
    add_tail(data, "fiscal_cost", out.fiscal_cost, quantiles)
    add_mean(data, "subsidy", out.subsidy)
    add_mean(data, "guarantee_compensation", out.compensation)
    add_mean(data, "bank_reward", out.reward)
    add_mean(data, "bank_net_income", out.bank_income)

    ds = xr.Dataset(
        data,
        coords={"party": list(PARTIES), "quantile": quantiles, "period": periods, "level": levels},
        attrs={
            "kind": "run",
            "seed": int(seed),
            "n_paths": int(n),
            "n_loans": int(plan.amount.size),
            "portfolio_amount": float(plan.amount.sum()),
            "method": method,
            "scenario_name": scenario.name,
            "scenario_sha256": scenario_sha256(scenario),
            "riskpool_version": riskpool_version(),
            "money_unit": "yuan",
            "period_unit": "calendar month at the end of the period",
        },
    )
    return label(ds)
