"""Score model: (innovation score, lifecycle stage) -> annual PD, PD term
structure, and score -> loan rate.

PD(score, stage) = clip(logistic(a_stage - slope * (score - 500) / 100), floor, cap)

`slope` (log-odds per 100 points) makes PD fall as the score rises; the
offsets a_stage are calibrated so that the average PD of the portfolio's
loans in each stage equals the scenario's target for that stage.

Default times use a constant monthly hazard per loan, lambda = -ln(1 - PD) / 12,
scaled by the calendar month's stress multiplier m(month):
F(t) = 1 - exp(-lambda * sum_{u=s}^{s+t-1} m(u)) for a loan started in month s,
so with no stress F(12) equals the annual PD exactly.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

from models.scenario import DefaultModel, Pricing

STAGE_NAMES = ("startup", "growth", "mature")


def _logistic(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def pd_from_score(
    score: np.ndarray, offset: float | np.ndarray, slope: float, floor: float, cap: float
) -> np.ndarray:
    """Annual PD (probability) for scores in [0, 1000] given the stage offset."""
    x = np.asarray(offset) - slope * (np.asarray(score, dtype=float) - 500.0) / 100.0
    return np.clip(_logistic(x), floor, cap)


def calibrate_offsets(
    score: np.ndarray, stage: np.ndarray, model: DefaultModel
) -> np.ndarray:
    """Offsets a_stage (one per stage) so each stage's mean PD hits its target.

    A stage with no loans gets the offset that puts its target at score 500.
    """
    targets = model.pd_annual.as_tuple()
    offsets = np.empty(len(STAGE_NAMES))
    for k, target in enumerate(targets):
        s = score[stage == k]
        if s.size == 0:
            offsets[k] = np.log(target / (1.0 - target))
            continue

        def gap(a: float, s: np.ndarray = s, target: float = target) -> float:
            pd = pd_from_score(s, a, model.score_slope, model.pd_floor, model.pd_cap)
            return float(pd.mean() - target)

        # the scenario guarantees pd_floor <= target <= pd_cap, and at offsets of
        # -+200 every PD sits on the floor or the cap, so the root is bracketed
        offsets[k] = brentq(gap, -200.0, 200.0, xtol=1e-13, rtol=1e-14)
    return offsets


def annual_pd(score: np.ndarray, stage: np.ndarray, model: DefaultModel) -> np.ndarray:
    """Calibrated annual PD per loan (probability)."""
    offsets = calibrate_offsets(score, stage, model)
    return pd_from_score(score, offsets[stage], model.score_slope, model.pd_floor, model.pd_cap)


def monthly_hazard(pd_annual: np.ndarray) -> np.ndarray:
    """Constant monthly hazard (per month) whose 12-month default probability is `pd_annual`."""
    return -np.log1p(-np.asarray(pd_annual, dtype=float)) / 12.0


def stress_clock(stress: list[float] | np.ndarray, n_months: int) -> np.ndarray:
    """Cumulative stress-weighted months C[m] = sum_{u<m} multiplier(u), m = 0..n_months.

    `stress` holds one multiplier per year (year 1 first); later years use 1.
    """
    per_month = np.repeat(np.asarray(stress, dtype=float), 12)[:n_months]
    mult = np.ones(n_months)
    mult[: per_month.size] = per_month
    clock = np.zeros(n_months + 1)
    np.cumsum(mult, out=clock[1:])
    return clock


def cumulative_pd(
    hazard: np.ndarray, start_month: np.ndarray, months: np.ndarray, clock: np.ndarray
) -> np.ndarray:
    """P(default within `months` of the start), F(t) = 1 - exp(-hazard * (C[s+t] - C[s]))."""
    s = np.asarray(start_month)
    t = np.asarray(months)
    return -np.expm1(-hazard * (clock[s + t] - clock[s]))


def loan_rate(score: np.ndarray, pricing: Pricing) -> np.ndarray:
    """Annual loan rate, falling with the score, clipped to [rate_floor, rate_cap]."""
    rate = pricing.rate_at_500 - pricing.rate_slope_per_100 * (np.asarray(score, float) - 500.0) / 100.0
    return np.clip(rate, pricing.rate_floor, pricing.rate_cap)
