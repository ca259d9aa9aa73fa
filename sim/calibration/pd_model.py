"""Score -> PD fitted to firm-years by maximum likelihood: the project's own
model (`models.scoring`), logit PD = a_stage - slope (score - 500) / 100, as
a binomial GLM with a logit link (statsmodels) on stage indicators and
-(score - 500) / 100. Standard errors are clustered by year: a bad year
moves every firm together, so firm-years are not independent and plain
GLM errors would be too small.

Discrimination per stage: AUC = P(score of a survivor > score of a
defaulter) (Mann-Whitney, ties counted half), SE by Hanley and McNeil
(1982), Gini = 2 AUC - 1. Calibration: per score band, the mean fitted PD
against the observed default rate with its exact (Clopper-Pearson) 95 %
interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.stats import rankdata
from statsmodels.stats.proportion import proportion_confint

from models.history import History
from models.scenario import STAGES

# Fewer years than this: the GLM's errors cannot be clustered by year.
MIN_CLUSTERS = 3


@dataclass(frozen=True)
class PdFit:
    """Fitted offsets a_stage (NaN for a stage that could not be fitted), the slope (log-odds per
    100 points), their clustered SEs, and each firm-year's fitted annual PD."""

    offset: np.ndarray
    offset_se: np.ndarray
    slope: float
    slope_se: float
    fitted: np.ndarray
    fitted_stages: tuple[int, ...]
    cov: np.ndarray  # clustered covariance of (offsets of fitted_stages..., slope)


def fittable_stages(history: History) -> tuple[int, ...]:
    """Stages with firm-years and at least one default and one survivor (others have no finite MLE)."""
    out = []
    for k in range(len(STAGES)):
        d = history.defaulted[history.stage == k]
        if d.size and d.any() and not d.all():
            out.append(k)
    return tuple(out)


def fit_pd(history: History) -> PdFit:
    """The GLM fit on the fittable stages' firm-years (module doc)."""
    stages = fittable_stages(history)
    if not stages:
        raise ValueError(f"{history.source}: no stage has both defaults and survivors: PD cannot be fitted")
    rows = np.isin(history.stage, stages)
    stage = history.stage[rows]
    x = np.column_stack([(stage == k).astype(float) for k in stages]
                        + [-(history.score[rows] - 500.0) / 100.0])
    y = history.defaulted[rows].astype(float)
    model = sm.GLM(y, x, family=sm.families.Binomial())
    years = history.year[rows]
    if np.unique(years).size >= MIN_CLUSTERS:
        result = model.fit(cov_type="cluster", cov_kwds={"groups": years})
    else:  # too few years to cluster on: plain errors (the caller notes it)
        result = model.fit()
    offset, offset_se = np.full(len(STAGES), np.nan), np.full(len(STAGES), np.nan)
    offset[list(stages)] = result.params[:-1]
    offset_se[list(stages)] = result.bse[:-1]
    fitted = np.full(len(history), np.nan)
    fitted[rows] = result.predict(x)
    return PdFit(offset, offset_se, float(result.params[-1]), float(result.bse[-1]), fitted, stages,
                 np.asarray(result.cov_params()))


def auc(score: np.ndarray, defaulted: np.ndarray) -> tuple[float, float]:
    """AUC of the score (survivors scoring higher) and its Hanley-McNeil SE; NaN without both classes."""
    n_d, n_s = int(defaulted.sum()), int((~defaulted).sum())
    if n_d == 0 or n_s == 0:
        return math.nan, math.nan
    ranks = rankdata(score)
    a = (ranks[~defaulted].sum() - n_s * (n_s + 1) / 2.0) / (n_s * n_d)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = math.sqrt((a * (1 - a) + (n_s - 1) * (q1 - a * a) + (n_d - 1) * (q2 - a * a)) / (n_s * n_d))
    return float(a), se


def calibration_table(history: History, fitted: np.ndarray, bands: list[float]) -> pd.DataFrame:
    """Per stage and score band: firm-years, defaults, observed rate with its 95 % Clopper-Pearson
    interval, mean fitted PD."""
    band = np.clip(np.searchsorted(bands, history.score, side="right") - 1, 0, len(bands) - 2)
    records = []
    for k in range(len(STAGES)):
        for b in range(len(bands) - 1):
            rows = (history.stage == k) & (band == b) & ~np.isnan(fitted)
            n = int(rows.sum())
            if n == 0:
                continue
            d = int(history.defaulted[rows].sum())
            low, high = proportion_confint(d, n, alpha=0.05, method="beta")
            records.append({"stage": STAGES[k], "score_band": f"{bands[b]:g}-{bands[b + 1]:g}",
                            "firm_years": n, "defaults": d, "observed": d / n, "observed_low": low,
                            "observed_high": high,
                            "fitted": float(fitted[rows].mean())})
    return pd.DataFrame.from_records(records)
