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
from sim.results.reduction import RunReduction, reduce_outputs
from sim.results.units import label
from sim.risk import estimators


def riskpool_version() -> str:
    try:
        return version("riskpool")
    except PackageNotFoundError:
        return "0+unknown"


def add_mean(data: dict, name: str, x: np.ndarray, dims: tuple[str, ...] = (),
             weights: np.ndarray | None = None) -> None:
    """Put `<name>_mean` and `<name>_se` (over axis 0 of per-path values) into a Dataset's variables."""
    m, se = estimators.mean(x, weights)
    data[f"{name}_mean"] = (dims, m)
    data[f"{name}_se"] = (dims, se)


def add_probability(data: dict, name: str, flags: np.ndarray, weights: np.ndarray | None = None) -> None:
    """Put `<name>` and `<name>_se`, the probability of a per-path event, into a Dataset's variables."""
    p, se = estimators.probability(flags, weights)
    data[name], data[f"{name}_se"] = ((), p), ((), se)


def _add_mean(data: dict, red: RunReduction, name: str, dims: tuple[str, ...] = ()) -> None:
    """Put `<name>_mean` and `<name>_se` of a reduced run into a Dataset's variables."""
    m, se = red.mean(name)
    shape = m.shape if dims else ()
    data[f"{name}_mean"] = (dims, m.reshape(shape))
    data[f"{name}_se"] = (dims, se.reshape(shape))


def _add_tail(data: dict, red: RunReduction, name: str) -> None:
    """Put `<name>_quantile`, `<name>_es` and their SEs (dim `quantile`) into a Dataset's variables."""
    t = red.tail_table(name)
    for row, suffix in enumerate(("quantile", "quantile_se", "es", "es_se")):
        data[f"{name}_{suffix}"] = (("quantile",), t[row])


# Probability levels of the loss curves (for plots): dense in the tail.
CURVE_LEVELS = np.concatenate([np.linspace(0.0, 0.9, 46)[:-1], 1.0 - np.logspace(-1, -4, 61)])
# Pool sizes of the sizing curve, as fractions of the book's credit: 0, then 40 a decade from 1e-4.
POOL_GRID_FRACTIONS = np.concatenate([[0.0], np.logspace(-4.0, 0.0, 161)])


def pool_grid(plan: Plan) -> np.ndarray:
    """Initial pool sizes (yuan) of the sizing curve: fractions of the book's credit."""
    return POOL_GRID_FRACTIONS * float(plan.amount.sum())


def _add_losses(data: dict, red: RunReduction, n_quantiles: int) -> None:
    """Gross and party losses: means, tails and the loss curves."""
    _add_mean(data, red, "gross_loss")
    _add_tail(data, red, "gross_loss")
    _add_mean(data, red, "default_rate")
    _add_mean(data, red, "default_rate_by_amount")
    # the share of defaulted yuan recovered, as realised (downturn recoveries included)
    recovered = red.ratio("recovery_rate")
    data["recovery_rate"], data["recovery_rate_se"] = ((), recovered.value), ((), recovered.se)
    _add_mean(data, red, "defaults_by_period", ("period",))
    _add_mean(data, red, "loss", ("party",))
    party_tail = np.stack([red.tail_table("loss", j) for j in range(len(PARTIES))])
    for row, suffix in enumerate(("quantile", "quantile_se", "es", "es_se")):
        data[f"loss_{suffix}"] = (("party", "quantile"), party_tail[:, row, :])
    data["loss_curve"] = (("party", "level"), red.quantiles("loss").T)
    data["gross_loss_curve"] = (("level",), red.quantiles("gross_loss")[:, 0])


def _add_pool(data: dict, red: RunReduction, n_quantiles: int) -> None:
    """The pool: exhaustion, balances and the sizing curve (P(R > x) on the grid, quantiles of R)."""
    dry, stop, *by_size = red.probabilities()
    data["pool_exhaustion_prob"], data["pool_exhaustion_prob_se"] = ((), dry.value), ((), dry.se)
    data["stop_rule_prob"], data["stop_rule_prob_se"] = ((), stop.value), ((), stop.se)
    _add_mean(data, red, "pool_balance", ("period",))
    bands = red.quantiles("pool_balance")  # the levels q, then 1 - q (the bad side of the pool)
    data["pool_balance_quantile"] = (("period", "quantile"), bands[:n_quantiles].T)
    data["pool_balance_low"] = (("period", "quantile"), bands[n_quantiles:].T)
    curve = np.array(by_size, dtype=float).reshape(-1, 2)
    data["pool_dry_by_size"] = (("pool_grid",), curve[:, 0])
    data["pool_dry_by_size_se"] = (("pool_grid",), curve[:, 1])
    _add_tail(data, red, "required_pool")


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


def _add_scheme(data: dict, red: RunReduction, plan: Plan) -> None:
    """The leverage chain (public money committed, the cover it writes on the book) and the fiscal
    cost per yuan of credit supplied (a ratio of means, with its SE)."""
    capital = float(plan.guarantor_capital)
    data["public_money"] = ((), float(plan.pool_size) + (capital if np.isfinite(capital) else 0.0))
    shares = plan.shares[plan.product].copy()  # (loans, parties): who owes each defaulted yuan
    shares[~plan.guaranteed, GUARANTOR] = 0.0  # the bank carries what the guarantor did not admit
    shares[:, BANK] = 0.0
    data["cover_written"] = ((), float((plan.amount * shares.sum(axis=1)).sum()))
    per_credit = red.ratio("fiscal_cost_per_credit")
    data["fiscal_cost_per_credit"] = ((), per_credit.value)
    data["fiscal_cost_per_credit_se"] = ((), per_credit.se)


def curve_levels(n_paths: int) -> np.ndarray:
    """The loss curves' levels a run of n paths resolves (n level >= 1)."""
    return CURVE_LEVELS[CURVE_LEVELS * n_paths >= 1.0] if n_paths > 1 else CURVE_LEVELS[:1]


def build_dataset(out: PathOutputs, plan: Plan, scenario: Scenario, seed: int, method: str,
                  grid: np.ndarray | None = None) -> xr.Dataset:
    """The Dataset of per-path outputs held in memory (`dataset_of`)."""
    quantiles = np.asarray(scenario.simulation.quantiles, dtype=float)
    grid = pool_grid(plan) if grid is None else np.asarray(grid, float)
    red = reduce_outputs(out, plan, quantiles, curve_levels(out.gross_loss.size), grid)
    return dataset_of(red, plan, scenario, seed, method)


def dataset_of(red: RunReduction, plan: Plan, scenario: Scenario, seed: int, method: str) -> xr.Dataset:
    """The run's Dataset (kind "run") from its reduction: dims `party`, `quantile`, `period`,
    `level`, `pool_grid`; money in yuan."""
    quantiles = np.asarray(scenario.simulation.quantiles, dtype=float)
    periods = (np.arange(plan.horizon // plan.period_months) + 1) * plan.period_months
    data: dict[str, tuple] = {}
    _add_losses(data, red, quantiles.size)
    _add_pool(data, red, quantiles.size)
    _add_mean(data, red, "guarantor_capital", ("period",))
    for name in ("credit_supplied", "credit_forgone", "fiscal_cost", "subsidy", "guarantee_compensation",
                 "bank_reward", "bank_net_income"):
        _add_mean(data, red, name)
    _add_tail(data, red, "fiscal_cost")
    _add_mean(data, red, "likelihood_ratio")  # 1 within its SE when the sampling measure is sound
    _add_scheme(data, red, plan)

    ds = xr.Dataset(
        data,
        coords={"party": list(PARTIES), "quantile": quantiles, "period": periods, "level": red.levels,
                "pool_grid": red.grid},
        attrs={
            "kind": "run",
            "seed": int(seed),
            "n_paths": int(red.n),
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
            "effective_paths": red.effective_paths(),
            "money_unit": "yuan",
            "period_unit": "calendar month at the end of the period",
        },
    )
    return label(ds)
