"""Asset correlation from the yearly defaults, in the engine's own one-factor
model: firm i defaults in year t when sqrt(rho) Z_t + sqrt(1 - rho) e_it <
G(PD_i), so given the year's factor Z_t defaults are independent with
    p_i(z) = N((G(PD_i) - sqrt(rho) z) / sqrt(1 - rho)).

- Maximum likelihood (Vasicek, finite pools): with the PDs fitted by the GLM,
  log L(rho) = sum_t log E_Z[prod_b Binomial(d_tb; n_tb, p_b(Z))], firm-years
  of a year grouped in PD buckets b (their mean G(PD)), E_Z by adaptive
  Gauss-Hermite quadrature (32 nodes around each year's mode, scaled by its
  curvature), maximised over rho in [0, 0.95].
- Method of moments: each year's default rate DR_t has, under the model,
  mean m_t = sum_b w_tb p_b (w_tb the share of the year's firms in PD bucket
  b) and variance
      V_t(rho) = sum_bc w_tb w_tc (N2(g_b, g_c; rho) - p_b p_c)
                 + sum_b w_tb (p_b - N2(g_b, g_b; rho)) / n_t,
  N2 the bivariate normal CDF (by Owen's T) and the second term the binomial
  noise of finite pools; rho solves sum_t (DR_t - m_t)^2 = sum_t V_t(rho)
  (0 when the observed spread is below the binomial noise alone).
- Confidence intervals: percentile bootstrap over years (years resampled
  with replacement, both estimators refitted). A resample's log-likelihood
  is the sum of its units' (a unit drawn k times counts k times), so the
  MLE is refitted from each unit's log L on a grid of rho, once for all
  resamples, interpolated by a cubic spline: the resamples' MLEs to within
  the direct maximisation's own tolerance, at the cost of a few fits
  instead of one per resample. Both estimators are biased
  low on short series (few years rarely show the tail that makes rho), so
  the number of years is always reported beside them.

Sector correlation (composite likelihood): each sector-year treated as a
unit with its own factor gives the within-sector correlation rho_w =
rho_systematic + rho_sector; rho_sector = max(rho_w - rho_systematic, 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.interpolate import CubicSpline
from scipy.optimize import brentq, minimize_scalar
from scipy.special import gammaln, log_ndtr, ndtr, ndtri, owens_t

RHO_MAX = 0.95
NODES, WEIGHTS = hermegauss(32)
WEIGHTS = WEIGHTS / math.sqrt(2.0 * math.pi)
N_BUCKETS = 20
# Bisection steps for each unit's mode in [-12, 12]: to ~1e-6, far finer than the quadrature needs.
MODE_STEPS = 25
# The MLE's tolerance in rho, and the grid a bootstrap interpolates each unit's log L on: uniform in
# t = log(1 + rho / RHO_SCALE), in which log L varies on one scale (in rho itself it varies on the
# scale of a pool's binomial noise near 0, ~1e-3 for 1 500 firms, and on the scale of rho above).
RHO_XATOL = 1e-4
RHO_SCALE = 1e-4
GRID_T = np.linspace(0.0, math.log1p(RHO_MAX / RHO_SCALE), 256)


@dataclass(frozen=True)
class YearCounts:
    """Firm-years and defaults by unit (a year, or a sector-year) and PD bucket, and each bucket's
    mean G(PD)."""

    unit: np.ndarray        # (units,) the year of each unit
    n: np.ndarray           # (units, buckets)
    d: np.ndarray           # (units, buckets)
    threshold: np.ndarray   # (buckets,)

    def rows(self, rows: np.ndarray) -> YearCounts:
        """The units `rows` (repeats allowed), same buckets."""
        return YearCounts(self.unit[rows], self.n[rows], self.d[rows], self.threshold)


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


def _log_binomials(rho: float, counts: YearCounts, z: np.ndarray) -> np.ndarray:
    """(units, points): log prod_b p_b(z)^d (1 - p_b(z))^(n - d) at each unit's own points z."""
    x = (counts.threshold[None, None, :] - math.sqrt(rho) * z[:, :, None]) / math.sqrt(1.0 - rho)
    return (counts.d[:, None, :] * log_ndtr(x) + (counts.n - counts.d)[:, None, :] * log_ndtr(-x)).sum(axis=2)


def _slope(rho: float, counts: YearCounts, z: np.ndarray) -> np.ndarray:
    """d/dz of each unit's log integrand (log binomials + log phi(z)) at z (one point per unit)."""
    root = math.sqrt(1.0 - rho)
    x = (counts.threshold[None, :] - math.sqrt(rho) * z[:, None]) / root
    log_phi = -0.5 * x * x - 0.5 * math.log(2.0 * math.pi)
    ratio_p, ratio_q = np.exp(log_phi - log_ndtr(x)), np.exp(log_phi - log_ndtr(-x))
    return (-math.sqrt(rho) / root) * (counts.d * ratio_p - (counts.n - counts.d) * ratio_q).sum(axis=1) - z


def _unit_log_likelihoods(rho: float, counts: YearCounts) -> np.ndarray:
    """(units,): each unit's log L(rho) by adaptive Gauss-Hermite: its integrand (log-concave in z) is
    centred on its mode (bisection of the slope) and scaled by its curvature, so large pools, whose
    integrand is far narrower than the standard normal, are integrated as accurately as small ones."""
    lo, hi = np.full(counts.n.shape[0], -12.0), np.full(counts.n.shape[0], 12.0)
    for _ in range(MODE_STEPS):
        mid = 0.5 * (lo + hi)
        up = _slope(rho, counts, mid) > 0
        lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
    mode = 0.5 * (lo + hi)
    h = 1e-4
    curvature = (_slope(rho, counts, mode + h) - _slope(rho, counts, mode - h)) / (2 * h)
    width = 1.0 / np.sqrt(np.maximum(-curvature, 1e-12))
    z = mode[:, None] + width[:, None] * NODES[None, :]  # (units, nodes)
    # E_phi[f] = E_q[f phi / q], q = N(mode, width^2): log f + log phi - log q at the nodes
    log_terms = (_log_binomials(rho, counts, z) - 0.5 * z * z + 0.5 * NODES[None, :] ** 2
                 + np.log(width)[:, None])
    peak = log_terms.max(axis=1, keepdims=True)
    per_unit = peak[:, 0] + np.log(np.exp(log_terms - peak) @ WEIGHTS)
    coef = gammaln(counts.n + 1) - gammaln(counts.d + 1) - gammaln(counts.n - counts.d + 1)
    return per_unit + coef.sum(axis=1)


def _log_likelihood(rho: float, counts: YearCounts) -> float:
    """log L(rho) of all units."""
    return float(_unit_log_likelihoods(rho, counts).sum())


def _maximise(log_likelihood: Callable[[float], float]) -> float:
    """The rho in [0, RHO_MAX] that maximises `log_likelihood` (bounded Brent, to RHO_XATOL); 0 where
    independence is at least as likely."""
    result = minimize_scalar(lambda r: -log_likelihood(r), bounds=(0.0, RHO_MAX), method="bounded",
                             options={"xatol": RHO_XATOL})
    best = float(result.x)
    return 0.0 if log_likelihood(0.0) >= log_likelihood(best) else best


def rho_mle(counts: YearCounts) -> float:
    """The maximum-likelihood rho in [0, RHO_MAX] (module doc)."""
    return _maximise(lambda r: _log_likelihood(r, counts))


def binormal_cdf(h: np.ndarray, k: np.ndarray, rho: float) -> np.ndarray:
    """P(X <= h, Y <= k) of standard normals with correlation rho (Owen 1956, by Owen's T)."""
    h = np.where(np.abs(h) < 1e-12, -1e-12, h)
    k = np.where(np.abs(k) < 1e-12, -1e-12, k)
    root = math.sqrt(1.0 - rho * rho)
    beta = np.where(h * k > 0, 0.0, 1.0)
    return (0.5 * ndtr(h) + 0.5 * ndtr(k) - owens_t(h, (k - rho * h) / (h * root))
            - owens_t(k, (h - rho * k) / (k * root)) - 0.5 * beta)


def rho_moments(counts: YearCounts) -> float:
    """The method-of-moments rho from the yearly default rates (module doc)."""
    n_t, d_t = counts.n.sum(axis=1), counts.d.sum(axis=1)
    if n_t.size < 2 or d_t.sum() == 0:
        return math.nan
    w = counts.n / n_t[:, None]
    g = counts.threshold
    p = ndtr(g)
    # the GLM made the fitted PDs match the total defaults: one degree of freedom spent
    spread = float(((d_t / n_t - w @ p) ** 2).sum()) * n_t.size / (n_t.size - 1)
    gb, gc = np.meshgrid(g, g, indexing="ij")

    def variance(rho: float) -> float:
        joint = binormal_cdf(gb, gc, rho)
        between = np.einsum("tb,bc,tc->t", w, joint - np.outer(p, p), w)
        noise = (w @ (p - np.diag(joint))) / n_t
        return float((between + noise).sum())

    if variance(0.0) >= spread:
        return 0.0
    if variance(RHO_MAX) <= spread:
        return RHO_MAX
    return float(brentq(lambda r: variance(r) - spread, 0.0, RHO_MAX, xtol=1e-7))


def year_resamples(counts: YearCounts, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """The rows of `n_boot` resamples of the years (units of a year kept together); the same years
    for the same seed whatever the units are (years, or sector-years of the same years)."""
    rng = np.random.default_rng(seed)
    years = np.unique(counts.unit)
    for _ in range(n_boot):
        pick = rng.choice(years, size=years.size, replace=True)
        yield np.concatenate([np.flatnonzero(counts.unit == y) for y in pick])


def bootstrap(counts: YearCounts, estimator: Callable[[YearCounts], float], n_boot: int,
              seed: int) -> np.ndarray:
    """The estimator refitted on each of `n_boot` resamples of the years."""
    return np.array([estimator(counts.rows(rows)) for rows in year_resamples(counts, n_boot, seed)])


def bootstrap_mle(counts: YearCounts, n_boot: int, seed: int) -> np.ndarray:
    """`bootstrap(counts, rho_mle, ...)` from each unit's log L on GRID_T (module doc): the same
    resamples, each maximiser within RHO_XATOL of the direct one."""
    table = np.array([_unit_log_likelihoods(RHO_SCALE * math.expm1(t), counts) for t in GRID_T]).T
    units = counts.unit.size

    def refit(rows: np.ndarray) -> float:
        spline = CubicSpline(GRID_T, np.bincount(rows, minlength=units) @ table)  # (units, grid) summed
        return _maximise(lambda rho: float(spline(math.log1p(rho / RHO_SCALE))))

    return np.array([refit(rows) for rows in year_resamples(counts, n_boot, seed)])
