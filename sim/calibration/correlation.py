"""Asset correlation from the yearly defaults, in the engine's own one-factor
model: firm i defaults in year t when sqrt(rho) Z_t + sqrt(1 - rho) e_it <
G(PD_i), so given the year's factor Z_t defaults are independent with
    p_i(z) = N((G(PD_i) - sqrt(rho) z) / sqrt(1 - rho)).

- Maximum likelihood (Vasicek, finite pools): with the PDs fitted by the GLM,
  log L(rho) = sum_t log E_Z[prod_b Binomial(d_tb; n_tb, p_b(Z))], firm-years
  of a year grouped in PD buckets b (their mean G(PD)), E_Z by Gauss-Hermite
  quadrature (64 nodes), maximised over rho in [0, 0.95].
- Method of moments: the yearly default rates' variance less their binomial
  noise, s^2 - (p - p2) mean(1/n_t), equals p2 - p^2, p2 = N2(G(p), G(p); rho)
  the joint default probability of two firms; solved for rho (0 when the
  excess variance is not positive). It treats every firm as having the
  average PD p (an approximation where PDs differ much).
- Confidence intervals: percentile bootstrap over years (years resampled
  with replacement, both estimators refitted). Both estimators are biased
  low on short series (few years rarely show the tail that makes rho), so
  the number of years is always reported beside them.

Sector correlation (composite likelihood): each sector-year treated as a
unit with its own factor gives the within-sector correlation rho_w =
rho_systematic + rho_sector; rho_sector = max(rho_w - rho_systematic, 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.optimize import brentq, minimize_scalar
from scipy.special import gammaln, ndtr, ndtri
from scipy.stats import multivariate_normal

RHO_MAX = 0.95
NODES, WEIGHTS = hermegauss(64)
WEIGHTS = WEIGHTS / math.sqrt(2.0 * math.pi)
N_BUCKETS = 20


@dataclass(frozen=True)
class YearCounts:
    """Firm-years and defaults by unit (a year, or a sector-year) and PD bucket, and each bucket's
    mean G(PD)."""

    unit: np.ndarray        # (units,) the year of each unit
    n: np.ndarray           # (units, buckets)
    d: np.ndarray           # (units, buckets)
    threshold: np.ndarray   # (buckets,)


def year_counts(year: np.ndarray, pd: np.ndarray, defaulted: np.ndarray, group: np.ndarray | None = None,
                n_buckets: int = N_BUCKETS) -> YearCounts:
    """Group firm-years by unit (year, or year x `group`) and by PD quantile bucket."""
    g = ndtri(np.clip(pd, 1e-12, 1 - 1e-12))
    edges = np.unique(np.quantile(g, np.linspace(0, 1, n_buckets + 1)))
    bucket = np.clip(np.searchsorted(edges, g, side="right") - 1, 0, max(edges.size - 2, 0))
    n_b = int(bucket.max()) + 1
    threshold = np.array([g[bucket == b].mean() for b in range(n_b)])
    keys = year if group is None else np.array([f"{y}|{s}" for y, s in zip(year, group)], dtype=object)
    units, unit_index = np.unique(keys, return_inverse=True)
    n = np.zeros((units.size, n_b))
    d = np.zeros((units.size, n_b))
    np.add.at(n, (unit_index, bucket), 1.0)
    np.add.at(d, (unit_index, bucket), defaulted.astype(float))
    unit_year = np.array([int(str(u).split("|")[0]) for u in units])
    return YearCounts(unit_year, n, d, threshold)


def _log_likelihood(rho: float, counts: YearCounts) -> float:
    s = math.sqrt(rho)
    p = ndtr((counts.threshold[None, :] - s * NODES[:, None]) / math.sqrt(1.0 - rho))  # (nodes, buckets)
    p = np.clip(p, 1e-300, 1 - 1e-16)
    log_p, log_q = np.log(p), np.log1p(-p)
    # (units, nodes): log prod_b Binomial(d; n, p_b(z)), the binomial coefficients added once
    ll = counts.d @ log_p.T + (counts.n - counts.d) @ log_q.T
    peak = ll.max(axis=1, keepdims=True)
    per_unit = peak[:, 0] + np.log(np.exp(ll - peak) @ WEIGHTS)
    coef = gammaln(counts.n + 1) - gammaln(counts.d + 1) - gammaln(counts.n - counts.d + 1)
    return float(per_unit.sum() + coef.sum())


def rho_mle(counts: YearCounts) -> float:
    """The maximum-likelihood rho in [0, RHO_MAX] (module doc)."""
    result = minimize_scalar(lambda r: -_log_likelihood(r, counts), bounds=(0.0, RHO_MAX), method="bounded",
                             options={"xatol": 1e-6})
    best = float(result.x)
    return 0.0 if _log_likelihood(0.0, counts) >= _log_likelihood(best, counts) else best


def rho_moments(counts: YearCounts) -> float:
    """The method-of-moments rho from the yearly default rates (module doc)."""
    n_t, d_t = counts.n.sum(axis=1), counts.d.sum(axis=1)
    if n_t.size < 2:
        return math.nan
    rate = d_t / n_t
    p = float(d_t.sum() / n_t.sum())
    if p <= 0.0 or p >= 1.0:
        return math.nan
    inv = float(np.mean(1.0 / n_t))
    p2 = (float(rate.var(ddof=1)) - p * inv + p * p) / (1.0 - inv)  # E[s^2] = (p2 - p^2) + (p - p2) inv
    if p2 <= p * p:
        return 0.0
    k = float(ndtri(p))

    def gap(rho: float) -> float:
        return float(multivariate_normal.cdf([k, k], cov=[[1.0, rho], [rho, 1.0]])) - p2

    if gap(RHO_MAX) <= 0:
        return RHO_MAX
    return float(brentq(gap, 0.0, RHO_MAX, xtol=1e-6))


def bootstrap(counts: YearCounts, estimator, n_boot: int, seed: int) -> np.ndarray:
    """The estimator on `n_boot` resamples of the years (units of a year kept together)."""
    rng = np.random.default_rng(seed)
    years = np.unique(counts.unit)
    out = np.empty(n_boot)
    for r in range(n_boot):
        pick = rng.choice(years, size=years.size, replace=True)
        rows = np.concatenate([np.flatnonzero(counts.unit == y) for y in pick])
        out[r] = estimator(YearCounts(counts.unit[rows], counts.n[rows], counts.d[rows], counts.threshold))
    return out
