"""Turn per-path arrays into one labelled `xarray.Dataset` with a standard
error beside every estimate.

Estimators (n paths, L sorted ascending):
- mean: sample mean, SE = sd / sqrt(n);
- VaR_q (``*_quantile``): the empirical q-quantile L[ceil(n q) - 1];
  SE from the order-statistic interval: (L[k+] - L[k-]) / 2 with
  k+- = n q +- sqrt(n q (1 - q)), i.e. a distribution-free 1-sigma band;
- ES_q (``*_es``): Rockafellar-Uryasev, VaR_q + mean((L - VaR_q)^+) / (1 - q);
  SE = sqrt((Var(L | L >= VaR) + q (ES - VaR)^2) / (n (1 - q)));
- probabilities: SE = sqrt(p (1 - p) / n).
"""

from __future__ import annotations

import math
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import xarray as xr

from models.scenario import PARTIES, Scenario, scenario_sha256


def riskpool_version() -> str:
    try:
        return version("riskpool")
    except PackageNotFoundError:
        return "0+unknown"


def mean_se(x: np.ndarray) -> tuple[float, float]:
    """Sample mean and its standard error (axis 0)."""
    n = x.shape[0]
    with np.errstate(invalid="ignore"):  # unlimited capital (inf) has mean inf and no SE
        m = x.mean(axis=0)
        se = x.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.full_like(m, np.nan)
    return m, se


def add_mean(data: dict, name: str, x: np.ndarray, dims: tuple[str, ...] = ()) -> None:
    """Put `<name>_mean` and `<name>_se` (over axis 0) into a Dataset's variables."""
    m, se = mean_se(x)
    data[f"{name}_mean"] = (dims, m)
    data[f"{name}_se"] = (dims, se)


def var_es(sorted_x: np.ndarray, q: float) -> tuple[float, float, float, float]:
    """VaR_q, its SE, ES_q and its SE of an ascending sample."""
    n = sorted_x.size
    idx = max(math.ceil(n * q) - 1, 0)
    var = float(sorted_x[idx])
    half = math.sqrt(n * q * (1.0 - q))
    lo = min(max(math.floor(n * q - half) - 1, 0), n - 1)
    hi = min(max(math.ceil(n * q + half) - 1, 0), n - 1)
    var_se = float(sorted_x[hi] - sorted_x[lo]) / 2.0
    excess = sorted_x[idx:] - var
    es = var + float(excess.sum()) / (n * (1.0 - q))
    tail = sorted_x[idx:]
    tail_var = float(tail.var(ddof=1)) if tail.size > 1 else 0.0
    es_se = math.sqrt((tail_var + q * (es - var) ** 2) / (n * (1.0 - q)))
    return var, var_se, es, es_se


def tail_table(x: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """(4, n_quantiles): VaR, VaR SE, ES, ES SE for each quantile."""
    s = np.sort(x)
    return np.array([var_es(s, q) for q in quantiles]).T


# Probability levels of the loss curves (for plots): dense in the tail.
CURVE_LEVELS = np.concatenate([np.linspace(0.0, 0.9, 46)[:-1], 1.0 - np.logspace(-1, -4, 61)])


def _probability(flags: np.ndarray) -> tuple[float, float]:
    p = float(flags.mean())
    return p, math.sqrt(p * (1.0 - p) / flags.size)


def build_dataset(out, plan, scenario: Scenario, seed: int, method: str) -> xr.Dataset:
    """The run's Dataset: dims `party`, `quantile`, `period`; money in yuan."""
    n = out.gross_loss.size
    quantiles = np.asarray(scenario.simulation.quantiles, dtype=float)
    periods = (np.arange(out.pool_balance.shape[1]) + 1) * plan.period_months
    data: dict[str, tuple] = {}

    def add_tail(name: str, x: np.ndarray) -> None:
        t = tail_table(x, quantiles)
        for row, suffix in enumerate(("quantile", "quantile_se", "es", "es_se")):
            data[f"{name}_{suffix}"] = (("quantile",), t[row])

    add_mean(data, "gross_loss", out.gross_loss)
    add_tail("gross_loss", out.gross_loss)
    originated = np.maximum(out.n_originated, 1.0)
    add_mean(data, "default_rate", out.n_defaults / originated)
    add_mean(data, "default_rate_by_amount", out.defaulted_amount / np.maximum(out.credit, 1.0))
    add_mean(data, "defaults_by_period", out.period_defaults.astype(float), ("period",))

    add_mean(data, "loss", out.party_loss, ("party",))
    party_tail = np.stack([tail_table(out.party_loss[:, j], quantiles) for j in range(len(PARTIES))])
    for row, suffix in enumerate(("quantile", "quantile_se", "es", "es_se")):
        data[f"loss_{suffix}"] = (("party", "quantile"), party_tail[:, row, :])

    levels = CURVE_LEVELS[CURVE_LEVELS * n >= 1.0] if n > 1 else CURVE_LEVELS[:1]
    curve_x = np.column_stack([out.party_loss, out.gross_loss])
    curves = np.quantile(curve_x, levels, axis=0, method="inverted_cdf").T
    data["loss_curve"] = (("party", "level"), curves[:-1])
    data["gross_loss_curve"] = (("level",), curves[-1])

    p, se = _probability(out.exhausted)
    data["pool_exhaustion_prob"], data["pool_exhaustion_prob_se"] = ((), p), ((), se)
    p, se = _probability(out.stop_month >= 0)
    data["stop_rule_prob"], data["stop_rule_prob_se"] = ((), p), ((), se)
    add_mean(data, "pool_balance", out.pool_balance, ("period",))
    data["pool_balance_quantile"] = (
        ("period", "quantile"),
        np.quantile(out.pool_balance, quantiles, axis=0, method="inverted_cdf").T,
    )
    data["pool_balance_low"] = (  # the bad side of the pool: balance at the (1 - q) quantile
        ("period", "quantile"),
        np.quantile(out.pool_balance, 1.0 - quantiles, axis=0, method="inverted_cdf").T,
    )
    add_mean(data, "guarantor_capital", out.guarantor_capital, ("period",))
    add_mean(data, "credit_supplied", out.credit)
    add_mean(data, "fiscal_cost", out.fiscal_cost)
    add_tail("fiscal_cost", out.fiscal_cost)
    add_mean(data, "subsidy", out.subsidy)
    add_mean(data, "guarantee_compensation", out.compensation)
    add_mean(data, "bank_reward", out.reward)
    add_mean(data, "bank_net_income", out.bank_income)

    ds = xr.Dataset(
        data,
        coords={"party": list(PARTIES), "quantile": quantiles, "period": periods, "level": levels},
        attrs={
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
    for name in ds.data_vars:
        if any(t in name for t in ("loss", "balance", "capital", "credit", "cost", "subsidy",
                                   "compensation", "reward", "income")):
            ds[name].attrs["units"] = "yuan"
        elif "defaults_by_period" in name:
            ds[name].attrs["units"] = "defaults per period"
        else:
            ds[name].attrs["units"] = "probability"
    for name in ("loss_curve", "gross_loss_curve"):
        ds[name].attrs["description"] = "loss quantile at each probability level (for plots)"
    return ds
