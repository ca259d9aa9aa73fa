"""Recoveries of defaulted firm-years: per product (all together without a
`product` column), the mean and standard deviation of the recovered
fraction (the Beta distribution of the engine's products by moments:
alpha = m (m (1 - m) / s^2 - 1), beta = (1 - m) (m (1 - m) / s^2 - 1)), the
mean's 95 % interval m -+ 1.96 s / sqrt(n), the SD's by a percentile
bootstrap of the recoveries, and the median months to recovery."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.history import History

# Fewer recoveries than this give no estimate for a product.
MIN_RECOVERIES = 5


@dataclass(frozen=True)
class RecoveryFit:
    product: str          # "*" without a product column: every product
    n: int
    mean: float
    mean_ci: tuple[float, float]
    sd: float
    sd_ci: tuple[float, float]
    lag_months: float     # NaN without recovery_months


def fit_recoveries(history: History, n_boot: int, seed: int) -> list[RecoveryFit]:
    """A fit per product with at least MIN_RECOVERIES recoveries (module doc)."""
    given = history.defaulted & ~np.isnan(history.recovered)
    products = ["*"] if history.product is None else sorted(set(history.product[given]))
    rng = np.random.default_rng(seed)
    out = []
    for product in products:
        rows = given if product == "*" else given & (history.product == product)
        r = history.recovered[rows]
        if r.size < MIN_RECOVERIES:
            continue
        m, s = float(r.mean()), float(r.std(ddof=1))
        half = 1.96 * s / math.sqrt(r.size)
        boot = np.array([rng.choice(r, r.size).std(ddof=1) for _ in range(n_boot)])
        months = history.recovery_months[rows]
        lag = float(np.median(months[~np.isnan(months)])) if (~np.isnan(months)).any() else math.nan
        out.append(RecoveryFit(product, int(r.size), m, (max(m - half, 0.0), min(m + half, 1.0)), s,
                               (float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))), lag))
    return out
