"""A history in, the default model's parameters out: each estimate with its
95 % interval and the data it came from, a scenario fragment, and (merged
into a source scenario) a runnable scenario.

The scenario's PD targets: `default.pd_annual.<stage>` is the mean PD of a
stage's loans, from which the engine finds the offset again
(`models.scoring.calibrate_offsets`). So the fitted offsets and slope are
turned into targets over the loans the scenario will run -- the source
scenario's book when merging, else the history's firm-years (where, by the
GLM's score equations, the mean fitted PD of a stage is its observed default
rate). Their intervals come from 2 000 draws of the parameters from their
clustered covariance; the GLM's own intervals use Student's t with (years -
1) degrees of freedom, few clusters making 1.96 too small. Whatever cannot be estimated is said in `notes` and
kept from the source scenario.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import t as t_dist

from models.history import History
from models.scenario import STAGES, DefaultModel, Scenario, scenario_from_mapping, set_key
from models.scoring import pd_from_score
from sim.calibration import correlation
from sim.calibration.pd_model import MIN_CLUSTERS, PdFit, auc, calibration_table, fit_pd
from sim.calibration.recovery import RecoveryFit, fit_recoveries
from sim.engine.plan import build_portfolio

# Fewer years than this give no correlation (nor a bootstrap worth the name).
MIN_YEARS = 3
PARAMETER_DRAWS = 2000


@dataclass
class Calibration:
    """Every estimate (a row each: parameter, value, low, high, method, data), the calibration by
    score band, the yearly default rates with the fitted Vasicek band, the recoveries, notes, the
    fragment's keys and, when merged, the calibrated scenario."""

    estimates: pd.DataFrame
    by_band: pd.DataFrame
    yearly: pd.DataFrame
    recoveries: list[RecoveryFit]
    recovered: np.ndarray
    keys: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    scenario: Scenario | None = None


def _row(parameter: str, value: float, low: float, high: float, method: str, data: str) -> dict:
    return {"parameter": parameter, "value": value, "low": low, "high": high, "method": method, "data": data}


def _targets(fit: PdFit, score: np.ndarray, stage: np.ndarray, model) -> tuple[np.ndarray, np.ndarray]:
    """pd_annual per stage over loans (score, stage) and its 95 % interval (module doc)."""
    rng = np.random.default_rng(12345)
    stages = list(fit.fitted_stages)
    mean = np.concatenate([fit.offset[stages], [fit.slope]])
    draws = rng.multivariate_normal(mean, fit.cov, size=PARAMETER_DRAWS)
    value, low, high = (np.full(len(STAGES), np.nan) for _ in range(3))
    for j, k in enumerate(stages):
        s = score[stage == k]
        if s.size == 0:
            continue
        value[k] = pd_from_score(s, fit.offset[k], fit.slope, model.pd_floor, model.pd_cap).mean()
        sample = [pd_from_score(s, a, b, model.pd_floor, model.pd_cap).mean() for a, b in draws[:, [j, -1]]]
        low[k], high[k] = np.quantile(sample, [0.025, 0.975])
    return value, np.vstack([low, high])


def _pd_rows(history: History, fit: PdFit, out: Calibration, targets, bounds, span: str,
             source: Scenario | None) -> None:
    n_default = int(history.defaulted.sum())
    data = f"{len(history):,} firm-years, {n_default:,} defaults, {span}"
    n_years = history.years.size
    if n_years >= MIN_CLUSTERS:  # t with (clusters - 1) degrees of freedom: few years, wider intervals
        z = float(t_dist.ppf(0.975, n_years - 1))
    else:
        z = 1.96
        out.notes.append(f"score -> PD: {n_years} year(s) of history, too few to cluster the errors by year; "
                         "the intervals treat firm-years as independent (too narrow)")
    out.estimates = pd.concat([out.estimates, pd.DataFrame([
        _row("default.score_slope", fit.slope, fit.slope - z * fit.slope_se, fit.slope + z * fit.slope_se,
             "logit GLM, SE clustered by year", data)])])
    rows = []
    for k, name in enumerate(STAGES):
        if k not in fit.fitted_stages:
            out.notes.append(f"stage {name}: no defaults or no survivors in the history; its PD is not "
                             "estimated (kept from the source scenario)")
            continue
        a, se = fit.offset[k], fit.offset_se[k]
        rows.append(_row(f"offset.{name}", a, a - z * se, a + z * se, "logit GLM, SE clustered by year",
                         data))
        if not math.isnan(targets[k]):
            rows.append(_row(f"default.pd_annual.{name}", targets[k], bounds[0, k], bounds[1, k],
                             "mean fitted PD of the stage's loans", data))
            out.keys[f"default.pd_annual.{name}"] = float(targets[k])
        a_, a_se = auc(history.score[history.stage == k], history.defaulted[history.stage == k])
        rows.append(_row(f"auc.{name}", a_, a_ - z * a_se, a_ + z * a_se, "Mann-Whitney, Hanley-McNeil SE",
                         data))
    out.estimates = pd.concat([out.estimates, pd.DataFrame(rows)])
    if fit.slope >= 0:
        out.keys["default.score_slope"] = fit.slope
    else:
        out.notes.append(f"score -> PD: the fitted slope {fit.slope:.4g} is negative (higher scores "
                         "defaulted more); the model takes slopes >= 0, so the slope is kept from the source")
    for k, name in enumerate(STAGES):
        if k in fit.fitted_stages and math.isnan(targets[k]):
            out.notes.append(f"stage {name}: fitted, but the book has no {name} loans to set its pd_annual "
                             "over (kept from the source scenario)")
    if source is not None and source.default.copula != "gaussian":
        out.notes.append(f"the source scenario uses the {source.default.copula} copula; rho is fitted in the "
                         "Gaussian one-factor model")


def _rho_rows(history: History, fit: PdFit, out: Calibration, n_boot: int, seed: int, span: str) -> None:
    rows = ~np.isnan(fit.fitted)
    years = np.unique(history.year[rows])
    if years.size < MIN_YEARS:
        out.notes.append(f"correlation: {years.size} year(s) of history, fewer than {MIN_YEARS}: rho is not "
                         "estimated (kept from the source scenario)")
        return
    counts = correlation.year_counts(history.year[rows], fit.fitted[rows], history.defaulted[rows])
    data = f"{years.size} yearly default rates, {span} (short series bias rho down)"
    found, boots = {}, {}
    for method, estimator, boot in (
            ("Vasicek MLE", correlation.rho_mle, correlation.bootstrap_mle(counts, n_boot, seed)),
            ("method of moments", correlation.rho_moments,
             correlation.bootstrap(counts, correlation.rho_moments, n_boot, seed))):
        value = estimator(counts)
        low, high = np.nanquantile(boot, [0.025, 0.975])
        found[method], boots[method] = value, boot
        out.estimates = pd.concat([out.estimates, pd.DataFrame([
            _row("default.rho_systematic", value, low, high, f"{method}, bootstrap over years", data)])])
    out.keys["default.rho_systematic"] = found["Vasicek MLE"]
    _yearly(history, fit, out, counts, found["Vasicek MLE"])
    if history.sector is not None and len(set(history.sector[rows])) > 1:
        within = correlation.year_counts(history.year[rows], fit.fitted[rows], history.defaulted[rows],
                                         group=history.sector[rows])
        rho_w = correlation.rho_mle(within)
        sector = max(rho_w - found["Vasicek MLE"], 0.0)
        boot = correlation.bootstrap_mle(within, n_boot, seed)  # the same years as the MLE's
        low, high = np.nanquantile(np.maximum(boot - boots["Vasicek MLE"], 0.0), [0.025, 0.975])
        out.estimates = pd.concat([out.estimates, pd.DataFrame([
            _row("default.rho_sector", sector, low, high, "within-sector Vasicek MLE less rho_systematic",
                 f"{within.unit.size} sector-years, {span}")])])
        if found["Vasicek MLE"] + sector < 1:
            out.keys["default.rho_sector"] = sector
        else:
            out.notes.append(f"rho_sector {sector:.4g}: with rho_systematic it reaches 1; kept from the "
                             "source")


def _yearly(history: History, fit: PdFit, out: Calibration, counts, rho: float) -> None:
    """Each year's default rate against the 5-95 % band of the fitted one-factor model."""
    n_t, d_t = counts.n.sum(axis=1), counts.d.sum(axis=1)
    p = np.array([np.nanmean(fit.fitted[history.year == y]) for y in counts.unit])
    g = correlation.ndtri(p)
    band = [correlation.ndtr((g - math.sqrt(rho) * correlation.ndtri(q)) / math.sqrt(1 - rho))
            for q in (0.95, 0.05)]
    out.yearly = pd.DataFrame({"year": counts.unit, "firm_years": n_t, "defaults": d_t, "rate": d_t / n_t,
                               "fitted_pd": p, "band_low": band[0], "band_high": band[1]})


def _recovery_rows(history: History, out: Calibration, source: Scenario | None, n_boot: int,
                   seed: int) -> None:
    out.recoveries = fit_recoveries(history, n_boot, seed)
    given = history.defaulted & ~np.isnan(history.recovered)
    out.recovered = history.recovered[given]
    if not out.recoveries:
        out.notes.append("recovery: fewer than 5 recoveries given in the history: not estimated (kept from "
                         "the source scenario)")
    products = list(source.products) if source is not None else []
    for fit in out.recoveries:
        if fit.product == "":
            out.notes.append("recovery: rows with a blank product are left out")
            continue
        names = products if fit.product == "*" else [fit.product]
        if not names:
            out.notes.append("recovery: fitted for every product; set products.<name>.recovery_mean and "
                             "recovery_sd from estimates.csv (or use --merge-into)")
        data = f"{fit.n} recoveries" + ("" if fit.product == "*" else f" of {fit.product}")
        label = "*" if fit.product == "*" else fit.product
        out.estimates = pd.concat([out.estimates, pd.DataFrame([
            _row(f"products.{label}.recovery_mean", fit.mean, *fit.mean_ci, "sample mean, normal interval",
                 data),
            _row(f"products.{label}.recovery_sd", fit.sd, *fit.sd_ci, "sample SD, bootstrap", data)])])
        for name in names:
            if source is not None and name not in source.products:
                out.notes.append(f"recovery of product {name!r}: not a product of the source scenario "
                                 "(skipped)")
                continue
            out.keys[f"products.{name}.recovery_mean"] = fit.mean
            sd = min(fit.sd, 0.999 * math.sqrt(fit.mean * (1 - fit.mean)), 0.499)
            if sd < fit.sd:
                out.notes.append(f"recovery sd of {name}: {fit.sd:.4f} cut to {sd:.4f}, the largest a Beta "
                                 "distribution of that mean allows")
            out.keys[f"products.{name}.recovery_sd"] = sd
            if not math.isnan(fit.lag_months):
                out.keys[f"products.{name}.recovery_lag_months"] = int(round(fit.lag_months))


def merged_scenario(source: Scenario, keys: dict[str, float]) -> Scenario:
    """The source scenario with the fitted keys set (validated again)."""
    raw = source.model_dump(mode="python")
    for dotted, value in keys.items():
        set_key(raw, dotted.split("."), value)
    return scenario_from_mapping(raw, source=f"{source.source} (calibrated)")


def calibrate(history: History, source: Scenario | None = None, *, n_boot: int = 200,
              seed: int = 0) -> Calibration:
    """Fit the default model to `history` (module doc); merged into `source` when given."""
    out = Calibration(pd.DataFrame(columns=["parameter", "value", "low", "high", "method", "data"]),
                      pd.DataFrame(), pd.DataFrame(), [], np.empty(0))
    span = f"{int(history.years.min())}-{int(history.years.max())}"
    fit = fit_pd(history)
    if source is not None:
        book = build_portfolio(source)
        targets, bounds = _targets(fit, book.score, book.stage, source.default)
    else:  # over the history's own firm-years, with the schema's PD floor and cap
        targets, bounds = _targets(fit, history.score, history.stage, DefaultModel())
    _pd_rows(history, fit, out, targets, bounds, span, source)
    out.by_band = calibration_table(history, fit.fitted, [0.0, 500.0, 600.0, 700.0, 1000.0])
    _rho_rows(history, fit, out, n_boot, seed, span)
    _recovery_rows(history, out, source, n_boot, seed)
    out.estimates = out.estimates.reset_index(drop=True)
    out.keys = {k: v if isinstance(v, int) else float(f"{v:.6g}") for k, v in out.keys.items()}
    if source is not None:
        out.scenario = merged_scenario(source, out.keys)
    return out
