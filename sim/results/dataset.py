"""Turn per-path arrays into one labelled `xarray.Dataset` with a standard
error beside every estimate (the estimators are those of
`sim.risk.estimators`; units from `sim.results.units`). Every estimate is
weighted by the paths' likelihood ratios (all ones without importance
sampling, which gives the plain estimates to the bit).

The pool-sizing curve: a path's required pool R is the smallest initial
pool that never runs dry on it (`sim.engine.waterfall`), so
P(pool runs dry | initial pool x) = P(R > x) for every x at once; the
Dataset holds it on a grid of pool sizes (`pool_grid`) and the quantiles of
R (the smallest pool meeting a target probability, with its SE)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import numpy as np
import xarray as xr

from models.scenario import PARTIES, Scenario, scenario_sha256
from sim.engine.outputs import PathOutputs
from sim.engine.plan import BANK, GUARANTOR, Plan
from sim.results.units import label
from sim.risk import estimators


def riskpool_version() -> str:
    try:
        return version("riskpool")
    except PackageNotFoundError:
        return "0+unknown"


def add_mean(data: dict, name: str, x: np.ndarray, dims: tuple[str, ...] = (),
             weights: np.ndarray | None = None) -> None:
    """Put `<name>_mean` and `<name>_se` (over axis 0) into a Dataset's variables."""
    m, se = estimators.mean(x, weights)
    data[f"{name}_mean"] = (dims, m)
    data[f"{name}_se"] = (dims, se)


def add_probability(data: dict, name: str, flags: np.ndarray, weights: np.ndarray | None = None) -> None:
    """Put `<name>` and `<name>_se`, the probability of a per-path event, into a Dataset's variables."""
    p, se = estimators.probability(flags, weights)
    data[name], data[f"{name}_se"] = ((), p), ((), se)


def add_tail(data: dict, name: str, x: np.ndarray, quantiles: np.ndarray,
             weights: np.ndarray | None = None) -> None:
    """Put `<name>_quantile`, `<name>_es` and their SEs (dim `quantile`) into a Dataset's variables."""
    t = estimators.tail_table(x, quantiles, weights)
    for row, suffix in enumerate(("quantile", "quantile_se", "es", "es_se")):
        data[f"{name}_{suffix}"] = (("quantile",), t[row])


# Probability levels of the loss curves (for plots): dense in the tail.
CURVE_LEVELS = np.concatenate([np.linspace(0.0, 0.9, 46)[:-1], 1.0 - np.logspace(-1, -4, 61)])
# Pool sizes of the sizing curve, as fractions of the book's credit: 0, then 40 a decade from 1e-4.
POOL_GRID_FRACTIONS = np.concatenate([[0.0], np.logspace(-4.0, 0.0, 161)])


def pool_grid(plan: Plan) -> np.ndarray:
    """Initial pool sizes (yuan) of the sizing curve: fractions of the book's credit."""
    return POOL_GRID_FRACTIONS * float(plan.amount.sum())


def _add_losses(data: dict, out: PathOutputs, quantiles: np.ndarray, levels: np.ndarray,
                w: np.ndarray) -> None:
    """Gross and party losses: means, tails and the loss curves."""
    add_mean(data, "gross_loss", out.gross_loss, weights=w)
    add_tail(data, "gross_loss", out.gross_loss, quantiles, w)
    originated = np.maximum(out.n_originated, 1.0)
    add_mean(data, "default_rate", out.n_defaults / originated, weights=w)
    add_mean(data, "default_rate_by_amount", out.defaulted_amount / np.maximum(out.credit, 1.0), weights=w)
    # the share of defaulted yuan recovered, as realised (downturn recoveries included)
    recovered = estimators.ratio(out.defaulted_amount - out.gross_loss, out.defaulted_amount, w)
    data["recovery_rate"], data["recovery_rate_se"] = ((), recovered.value), ((), recovered.se)
    add_mean(data, "defaults_by_period", out.period_defaults.astype(float), ("period",), w)

    add_mean(data, "loss", out.party_loss, ("party",), w)
    party_tail = np.stack([estimators.tail_table(out.party_loss[:, j], quantiles, w)
                           for j in range(len(PARTIES))])
    for row, suffix in enumerate(("quantile", "quantile_se", "es", "es_se")):
        data[f"loss_{suffix}"] = (("party", "quantile"), party_tail[:, row, :])
    curve_x = np.column_stack([out.party_loss, out.gross_loss])
    curves = estimators.quantiles(curve_x, levels, w).T
    data["loss_curve"] = (("party", "level"), curves[:-1])
    data["gross_loss_curve"] = (("level",), curves[-1])


def _add_pool(data: dict, out: PathOutputs, quantiles: np.ndarray, grid: np.ndarray, w: np.ndarray) -> None:
    """The pool: exhaustion, balances and the sizing curve (P(R > x) on the grid, quantiles of R)."""
    add_probability(data, "pool_exhaustion_prob", out.exhausted, w)
    add_mean(data, "pool_balance", out.pool_balance, ("period",), w)
    data["pool_balance_quantile"] = (
        ("period", "quantile"),
        estimators.quantiles(out.pool_balance, quantiles, w).T,
    )
    data["pool_balance_low"] = (  # the bad side of the pool: balance at the (1 - q) quantile
        ("period", "quantile"),
        estimators.quantiles(out.pool_balance, 1.0 - quantiles, w).T,
    )
    curve = np.array([estimators.probability(out.required_pool > x, w) for x in grid])
    data["pool_dry_by_size"] = (("pool_grid",), curve[:, 0])
    data["pool_dry_by_size_se"] = (("pool_grid",), curve[:, 1])
    add_tail(data, "required_pool", out.required_pool, quantiles, w)


# Runs of at most this many paths keep their per-path headline values in results.nc (~100 bytes a
# path): what `riskpool compare` pairs two runs on the same paths with.
PATHS_KEPT = 1_000_000


def path_values(out: PathOutputs) -> xr.Dataset:
    """The per-path values that paired comparisons need (dim `path`; yuan, flags, weights), or an
    empty Dataset past PATHS_KEPT paths."""
    n = out.gross_loss.size
    if n > PATHS_KEPT:
        return xr.Dataset()
    data = {"path_gross_loss": (("path",), out.gross_loss),
            "path_loss": (("path", "party"), out.party_loss),
            "path_fiscal_cost": (("path",), out.fiscal_cost), "path_credit": (("path",), out.credit),
            "path_pool_dry": (("path",), out.exhausted.astype(np.int8)),
            "path_stop_rule": (("path",), (out.stop_month >= 0).astype(np.int8)),
            "path_weight": (("path",), out.weight)}
    return label(xr.Dataset(data, coords={"path": np.arange(n), "party": list(PARTIES)}))


def add_contributions(by: list[str] | tuple[str, ...], labels: list[tuple[str, ...]], first: np.ndarray,
                      value: np.ndarray, se: np.ndarray, quantiles: np.ndarray, window: float,
                      n_redrawn: int) -> xr.Dataset:
    """The Dataset of risk contributions (`sim.scale.contributions`): for grouping h, groups
    first[h]:first[h + 1] of `value`/`se` (target, selection, group), selections the ES then the
    VaR window at each of `quantiles`, then perhaps the mean; dims (loss_of, quantile, <grouping>), yuan."""
    n_q = quantiles.size
    data, coords = {}, {"loss_of": ["gross", *PARTIES], "quantile": quantiles}
    for h, name in enumerate(by):
        part = slice(int(first[h]), int(first[h + 1]))
        coords[name] = list(labels[h])
        dims = ("loss_of", "quantile", name)
        data[f"contribution_es_{name}"] = (dims, value[:, :n_q, part])
        data[f"contribution_es_{name}_se"] = (dims, se[:, :n_q, part])
        data[f"contribution_var_{name}"] = (dims, value[:, n_q:2 * n_q, part])
        data[f"contribution_var_{name}_se"] = (dims, se[:, n_q:2 * n_q, part])
        if value.shape[1] > 2 * n_q:  # the mean of each group's loss
            data[f"contribution_mean_{name}"] = (("loss_of", name), value[:, 2 * n_q, part])
            data[f"contribution_mean_{name}_se"] = (("loss_of", name), se[:, 2 * n_q, part])
    attrs = {"contribution_var_window": window, "contribution_paths_redrawn": int(n_redrawn)}
    return label(xr.Dataset(data, coords=coords, attrs=attrs))


def _add_scheme(data: dict, out: PathOutputs, plan: Plan, w: np.ndarray) -> None:
    """The leverage chain (public money committed, the cover it writes on the book) and the fiscal
    cost per yuan of credit supplied (a ratio of means, with its SE)."""
    capital = float(plan.guarantor_capital)
    data["public_money"] = ((), float(plan.pool_size) + (capital if np.isfinite(capital) else 0.0))
    shares = plan.shares[plan.product].copy()  # (loans, parties): who owes each defaulted yuan
    shares[~plan.guaranteed, GUARANTOR] = 0.0  # the bank carries what the guarantor did not admit
    shares[:, BANK] = 0.0
    data["cover_written"] = ((), float((plan.amount * shares.sum(axis=1)).sum()))
    per_credit = estimators.ratio(out.fiscal_cost, out.credit, w)
    data["fiscal_cost_per_credit"] = ((), per_credit.value)
    data["fiscal_cost_per_credit_se"] = ((), per_credit.se)


def build_dataset(out: PathOutputs, plan: Plan, scenario: Scenario, seed: int, method: str,
                  grid: np.ndarray | None = None) -> xr.Dataset:
    """The run's Dataset (kind "run"): dims `party`, `quantile`, `period`,
    `level`, `pool_grid` (default `pool_grid(plan)`); money in yuan."""
    n = out.gross_loss.size
    quantiles = np.asarray(scenario.simulation.quantiles, dtype=float)
    periods = (np.arange(out.pool_balance.shape[1]) + 1) * plan.period_months
    levels = CURVE_LEVELS[CURVE_LEVELS * n >= 1.0] if n > 1 else CURVE_LEVELS[:1]
    grid = pool_grid(plan) if grid is None else np.asarray(grid, float)
    w = out.weight
    data: dict[str, tuple] = {}
    _add_losses(data, out, quantiles, levels, w)
    _add_pool(data, out, quantiles, grid, w)
    add_probability(data, "stop_rule_prob", out.stop_month >= 0, w)
    add_mean(data, "guarantor_capital", out.guarantor_capital, ("period",), w)
    book = float(plan.originated_cum[-1])  # the book's credit (yuan), every loan made
    for name, x in (("credit_supplied", out.credit), ("credit_forgone", book - out.credit),
                    ("fiscal_cost", out.fiscal_cost),
                    ("subsidy", out.subsidy), ("guarantee_compensation", out.compensation),
                    ("bank_reward", out.reward), ("bank_net_income", out.bank_income)):
        add_mean(data, name, x, weights=w)
    add_tail(data, "fiscal_cost", out.fiscal_cost, quantiles, w)
    add_mean(data, "likelihood_ratio", w)  # 1 within its SE when the sampling measure is sound
    _add_scheme(data, out, plan, w)

    ds = xr.Dataset(
        data,
        coords={"party": list(PARTIES), "quantile": quantiles, "period": periods, "level": levels,
                "pool_grid": grid},
        attrs={
            "kind": "run",
            "seed": int(seed),
            "n_paths": int(n),
            "n_loans": int(plan.amount.size),
            "portfolio_amount": float(plan.amount.sum()),
            "pool_size": float(plan.pool_size),
            "method": method,
            "scenario_name": scenario.name,
            "scenario_sha256": scenario_sha256(scenario),
            "riskpool_version": riskpool_version(),
            "tail": scenario.simulation.tail,
            "tail_shift": np.asarray(plan.tail_shift, float),
            "tail_mixing": float(plan.tail_mixing),
            "tail_defensive": float(plan.tail_defensive),
            "effective_paths": estimators.effective_paths(w),
            "money_unit": "yuan",
            "period_unit": "calendar month at the end of the period",
        },
    )
    return label(ds)
