"""Every statistic a user sees, from per-path values and optional per-path
weights, each with its standard error. Nothing else in riskpool computes
these.

Weights are likelihood ratios w_i = dP/dQ of paths drawn under a sampling
measure Q (importance sampling); plain Monte Carlo has w_i = 1. With n
paths x_1..x_n (every estimator is the plain, unnormalised IS one):

- mean: m = (1/n) sum_i w_i x_i, SE = sd(w x) / sqrt(n);
- probability of an event A: p = (1/n) sum_i w_i 1{A_i},
  SE = sqrt((p2 - p^2) / n) with p2 = (1/n) sum_i w_i^2 1{A_i}
  (= sqrt(p (1 - p) / n) when w = 1);
- VaR_q: the smallest x_(k) with F(x_(k)) >= q, where (x sorted ascending)
  F(x) = 1 - (1/n) sum_i w_i 1{x_i > x} -- the tail form, whose variance is
  small exactly where importance sampling puts its paths (Glasserman,
  Heidelberger and Shahabuddin); without weights the empirical quantile
  x_(ceil(n q)). SE: without weights, half the distance between the order
  statistics at ranks n q -+ sqrt(n q (1 - q)), a distribution-free 1-sigma
  band; with weights the same band in F, q -+ sd(w 1{x > VaR}) / sqrt(n);
- ES_q (Rockafellar-Uryasev, = CVaR_q): VaR_q + (1/n) sum_i w_i (x_i - VaR_q)^+ / (1 - q).
  SE: sqrt(Var_Q(w (x - VaR)^+) / n) / (1 - q) -- the VaR's own error has no
  first-order effect, VaR being the minimiser. Without weights this is
  computed in the equivalent form sqrt((Var(x | x >= VaR) + q (ES - VaR)^2) / (n (1 - q))).
- CVaR_alpha by direct minimisation of F(zeta) = zeta + sum_i w_i (x_i - zeta)^+ / ((1 - alpha) W)
  over the sample points (the optimizer's constraint function).
- effective paths (sum w)^2 / sum w^2 (Kish): what the weighted sample is worth for a mean.
- ratio of means r = sum_i w_i x_i / sum_i w_i y_i (e.g. the share of defaulted yuan recovered),
  SE by the delta method: sd(w (x - r y)) / (sqrt(n) mean(w y)).
- Euler risk contributions of parts x = sum_g x_g (Tasche; Glasserman 2005): a per-path
  coefficient a_i >= 0 with sum_i a_i = 1, the contribution c_g = sum_i a_i x_g,i and its SE
  sqrt(sum_i a_i^2 (x_g,i - c_g)^2) (the delta method of a ratio estimator, the level held
  fixed). ES_q: a_i = w_i / (n (1 - q)) above the VaR and, on the paths at the VaR (an atom),
  w_i (n (1 - q) - sum_{x > VaR} w) / (n (1 - q) sum_{x = VaR} w): so sum_i a_i x_i is the ES
  above to the last bit of rounding, and the contributions add up to it exactly.
  VaR_q: a_i = w_i / W on the window of paths between the (q - d) and (q + d) quantiles,
  d = (1 - q) / 5, W their weight; c_g = E[x_g | window] VaR / E[x | window], scaled so that
  the contributions add up to the VaR (the SE scaled alike, the factor taken as fixed).

- paired differences of two runs on the same paths (common random numbers): a mean's,
  sd(w_b x_b - w_a x_a) / sqrt(n); an ES's, that of the two ES influence terms
  h = w (x - VaR)^+ / (1 - q) (each run's own VaR held fixed), sd(h_b - h_a) / sqrt(n).
  Unpaired: sqrt(se_a^2 + se_b^2); a quotient a / b of estimates taken as independent, to first
  order sqrt((se_a / b)^2 + (a se_b / b^2)^2).

A weight vector of ones is plain Monte Carlo: it is detected and gives the
unweighted numbers to the bit. `verdict` checks a limit against an estimate
at a one-sided 95 % confidence bound (holds / within noise / violated). A
plain Monte Carlo probability, k events in n paths, is checked against the
exact (Clopper-Pearson) one-sided bounds instead, the Beta(k, n - k + 1) and
Beta(k + 1, n - k) quantiles, which the normal bound p -+ z SE falls short of
for rare events: with k = 0 the SE is 0 while the 95 % upper bound is
1 - 0.05^(1/n), about 3 / n.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.special import betaincinv, ndtr


class Estimate(NamedTuple):
    """An estimate and its standard error (same units)."""

    value: float
    se: float


class Tail(NamedTuple):
    """VaR and ES at one level with their standard errors (units of the sample)."""

    var: float
    var_se: float
    es: float
    es_se: float


def _weights(weights: np.ndarray | None, n: int) -> np.ndarray | None:
    """Checked per-path weights, or None for plain Monte Carlo (no weights or all ones)."""
    if weights is None:
        return None
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"weights must have one value per path, shape ({n},), got {w.shape}")
    if not (np.isfinite(w).all() and (w >= 0).all()):
        raise ValueError("weights must be finite and >= 0 (likelihood ratios)")
    return None if (w == 1.0).all() else w


def mean(x: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean over paths (axis 0) and its standard error; NaN SE with one path."""
    x = np.asarray(x)
    n = x.shape[0]
    w = _weights(weights, n)
    if w is not None:
        x = x * w.reshape((n,) + (1,) * (x.ndim - 1))
    with np.errstate(invalid="ignore"):  # unlimited capital (inf) has mean inf and no SE
        m = x.mean(axis=0)
        se = x.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.full_like(m, np.nan, dtype=float)
    return m, se


def probability(flags: np.ndarray, weights: np.ndarray | None = None) -> Estimate:
    """Probability of an event flagged per path, and its standard error."""
    flags = np.asarray(flags, dtype=bool)
    n = flags.size
    w = _weights(weights, n)
    if w is None:
        return probability_from_sums(float(flags.sum()), 0.0, n, weighted=False)
    hit = np.where(flags, w, 0.0)
    return probability_from_sums(float(hit.sum()), float((hit * w).sum()), n, weighted=True)


def probability_from_sums(hits: float, hits_w2: float, n: int, weighted: bool) -> Estimate:
    """The probability of an event from sum_i w_i 1{A_i} and sum_i w_i^2 1{A_i} over n paths (the
    count alone without weights), and its standard error (module doc)."""
    p = hits / n
    if not weighted:
        return Estimate(p, math.sqrt(p * (1.0 - p) / n))
    return Estimate(p, math.sqrt(max(hits_w2 / n - p * p, 0.0) / n))


def _tail_rank(sorted_w: np.ndarray, q: float, n: int | None = None, mass_above: float = 0.0) -> int:
    """Index of the weighted VaR_q in an ascending sample: the smallest k with
    (1/n) sum_{j > k} w_j <= 1 - q (the tail form of the weighted CDF). The
    sample may be the top part of one of n paths, `mass_above` the weight of
    the values above it."""
    n = sorted_w.size if n is None else n
    above = (mass_above + np.concatenate([np.cumsum(sorted_w[::-1])[::-1][1:], [0.0]])) / n
    return min(int(np.searchsorted(-above, -(1.0 - q), side="left")), sorted_w.size - 1)


def tail(sorted_x: np.ndarray, q: float, sorted_weights: np.ndarray | None = None) -> Tail:
    """VaR_q and ES_q with standard errors of an ascending sample (weights in the same order)."""
    n = sorted_x.size
    w = _weights(sorted_weights, n)
    if w is None:
        return _plain_tail(sorted_x, q)
    idx = _tail_rank(w, q)
    var = float(sorted_x[idx])
    beyond = np.where(sorted_x > var, w, 0.0)
    band = float(beyond.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
    lo = _tail_rank(w, max(q - band, 0.0))
    hi = _tail_rank(w, min(q + band, 1.0))
    excess = np.zeros(n)
    excess[idx:] = w[idx:] * (sorted_x[idx:] - var)
    es = var + float(excess.sum()) / (n * (1.0 - q))
    es_se = float(excess.std(ddof=1)) / math.sqrt(n) / (1.0 - q) if n > 1 else math.nan
    return Tail(var, float(sorted_x[hi] - sorted_x[lo]) / 2.0, es, es_se)


def plain_tail_ranks(n: int, q: float) -> tuple[int, int, int]:
    """Ranks (0-based, ascending) of the plain VaR_q and of the two ends of its SE band."""
    half = math.sqrt(n * q * (1.0 - q))
    return (max(math.ceil(n * q) - 1, 0), min(max(math.floor(n * q - half) - 1, 0), n - 1),
            min(max(math.ceil(n * q + half) - 1, 0), n - 1))


def quantile_rank(n: int, level: float) -> int:
    """Rank (0-based, ascending) of the inverted-CDF quantile at `level` of n values, as NumPy's
    `quantile(method="inverted_cdf")` takes it."""
    v = n * level - 1.0
    below = math.floor(v)
    return min(max(below if v == below else below + 1, 0), n - 1)


def _plain_tail(sorted_x: np.ndarray, q: float) -> Tail:
    n = sorted_x.size
    idx, lo, hi = plain_tail_ranks(n, q)
    var = float(sorted_x[idx])
    var_se = float(sorted_x[hi] - sorted_x[lo]) / 2.0
    excess = sorted_x[idx:] - var
    es = var + float(excess.sum()) / (n * (1.0 - q))
    tail_values = sorted_x[idx:]
    tail_var = float(tail_values.var(ddof=1)) if tail_values.size > 1 else 0.0
    es_se = math.sqrt((tail_var + q * (es - var) ** 2) / (n * (1.0 - q)))
    return Tail(var, var_se, es, es_se)


def tail_table(x: np.ndarray, quantiles: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(4, n_quantiles): VaR, VaR SE, ES, ES SE of sample `x` at each level."""
    x = np.asarray(x)
    if _weights(weights, x.size) is None:
        s = np.sort(x)  # once for every level
        return np.array([_plain_tail(s, q) for q in quantiles]).T
    order = np.argsort(x, kind="stable")
    s, w = x[order], np.asarray(weights, dtype=float)[order]
    return np.array([tail(s, q, w) for q in quantiles]).T


def quantiles(x: np.ndarray, levels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Quantiles of each column of `x` (axis 0) at `levels` (inverted CDF, no SE: for plots and bands)."""
    x = np.asarray(x)
    w = _weights(weights, x.shape[0])
    if w is None:
        return np.quantile(x, levels, axis=0, method="inverted_cdf")
    columns = x.reshape(x.shape[0], -1)
    out = np.empty((len(levels), columns.shape[1]))
    for j in range(columns.shape[1]):
        order = np.argsort(columns[:, j], kind="stable")
        out[:, j] = columns[order, j][[_tail_rank(w[order], level) for level in levels]]
    return out.reshape((len(levels),) + x.shape[1:])


def cvar_and_var(losses: np.ndarray, alpha: float, weights: np.ndarray | None = None) -> tuple[float, float]:
    """(CVaR, VaR) of a 1-D sample by direct minimisation over zeta.

    Without weights, F(zeta) = zeta + sum(max(L - zeta, 0)) / ((1 - alpha) n)
    is convex and piecewise linear with kinks at the sample points; its
    minimum is at the order statistic of rank j = ceil(alpha n), where it
    equals ((j - alpha n) L_(j) + sum_{i > j} L_(i)) / ((1 - alpha) n) -- the
    fractional atom at the VaR. alpha n may round either side of an integer,
    so rank j - 1 is evaluated too and the smaller value kept. With weights,
    F(zeta) = zeta + (1/n) sum_i w_i (L_i - zeta)^+ / (1 - alpha), minimised
    at the weighted VaR (and its neighbour below is evaluated too).
    """
    losses = np.asarray(losses)
    n = losses.size
    weight = _weights(weights, n)
    if weight is None:
        ordered = np.sort(losses)
        rank = min(max(math.ceil(alpha * n), 1), n)
    else:
        order = np.argsort(losses, kind="stable")
        ordered, weight = losses[order], weight[order]
        rank = _tail_rank(weight, alpha) + 1
    best = (math.inf, math.nan)
    for zeta in ordered[[max(rank - 2, 0), rank - 1]]:
        excess = np.maximum(ordered - zeta, 0.0)
        if weight is not None:
            excess = excess * weight
        value = zeta + excess.sum() / ((1.0 - alpha) * n)
        best = min(best, (float(value), float(zeta)))
    return best


def ratio(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> Estimate:
    """The ratio of the means of x and y over paths and its standard error (delta method); NaN
    when y is zero on every path."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    w = _weights(weights, x.size)
    wx, wy = (x, y) if w is None else (w * x, w * y)
    total = float(wy.sum())
    if total == 0.0:
        return Estimate(math.nan, math.nan)
    r = float(wx.sum()) / total
    se = float((wx - r * wy).std(ddof=1)) / math.sqrt(x.size) / (total / x.size) if x.size > 1 else math.nan
    return Estimate(r, se)


def effective_paths(weights: np.ndarray) -> float:
    """(sum w)^2 / sum w^2: the plain Monte Carlo paths a weighted sample is worth for a mean
    (n for unit weights)."""
    w = np.asarray(weights, dtype=float)
    total = float(w.sum())
    return total * total / float((w * w).sum()) if total > 0.0 else 0.0


def cvar(losses: np.ndarray, alpha: float, weights: np.ndarray | None = None) -> Estimate:
    """CVaR_alpha of a 1-D sample (minimisation form) with the standard error of `tail`."""
    losses = np.asarray(losses, dtype=float)
    value, var = cvar_and_var(losses, alpha, weights)
    n = losses.size
    w = _weights(weights, n)
    if w is None:
        tail_values = losses[losses >= var]
        tail_variance = float(tail_values.var(ddof=1)) if tail_values.size > 1 else 0.0
        return Estimate(value, math.sqrt((tail_variance + alpha * (value - var) ** 2) / ((1.0 - alpha) * n)))
    excess = w * np.maximum(losses - var, 0.0)
    return Estimate(value, float(excess.std(ddof=1)) / math.sqrt(n) / (1.0 - alpha) if n > 1 else math.nan)


def paired_mean_difference(x_a: np.ndarray, x_b: np.ndarray, w_a: np.ndarray | None = None,
                           w_b: np.ndarray | None = None) -> Estimate:
    """mean(b) - mean(a) of two runs on the same paths, and its paired SE (module doc)."""
    a = np.asarray(x_a, float) * (1.0 if w_a is None else np.asarray(w_a, float))
    b = np.asarray(x_b, float) * (1.0 if w_b is None else np.asarray(w_b, float))
    if a.shape != b.shape:
        raise ValueError(f"paired runs need the same paths (got {a.shape[0]} and {b.shape[0]})")
    d = b - a
    return Estimate(float(d.mean()), float(d.std(ddof=1)) / math.sqrt(d.size) if d.size > 1 else math.nan)


def _es_influence(x: np.ndarray, q: float, w: np.ndarray | None) -> tuple[float, np.ndarray]:
    var = float(tail_table(x, np.array([q]), w)[0, 0])
    h = np.maximum(x - var, 0.0) / (1.0 - q)
    return var, h if w is None else h * np.asarray(w, float)


def paired_es_difference(x_a: np.ndarray, x_b: np.ndarray, q: float, w_a: np.ndarray | None = None,
                         w_b: np.ndarray | None = None) -> Estimate:
    """ES_q(b) - ES_q(a) of two runs on the same paths, and its paired SE (module doc)."""
    x_a, x_b = np.asarray(x_a, float), np.asarray(x_b, float)
    if x_a.shape != x_b.shape:
        raise ValueError(f"paired runs need the same paths (got {x_a.size} and {x_b.size})")
    var_a, h_a = _es_influence(x_a, q, _weights(w_a, x_a.size))
    var_b, h_b = _es_influence(x_b, q, _weights(w_b, x_b.size))
    d = h_b - h_a
    value = var_b - var_a + float(d.mean())
    return Estimate(value, float(d.std(ddof=1)) / math.sqrt(d.size) if d.size > 1 else math.nan)


def unpaired_difference(a: Estimate, b: Estimate) -> Estimate:
    """b - a of two estimates taken as independent, SE sqrt(se_a^2 + se_b^2) (values may be arrays)."""
    return Estimate(b.value - a.value, np.hypot(a.se, b.se))


def quotient(a: Estimate, b: Estimate) -> Estimate:
    """a / b of two estimates taken as independent, SE to first order
    sqrt((se_a / b)^2 + (a / b * se_b / b)^2) (values may be arrays; NaN where b is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.divide(a.value, b.value)
        return Estimate(q, np.hypot(np.divide(a.se, b.value), q * np.divide(b.se, b.value)))


class Selection(NamedTuple):
    """Which paths enter a conditional expectation and how much each counts: a path with value x and
    weight w gets a = w low_scale at x == low, w inner_scale where low < x <= high, else 0."""

    low: float
    high: float
    low_scale: float
    inner_scale: float

    def coefficients(self, x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """The per-path coefficients a of paths with values `x` (any subset of the sample)."""
        x = np.asarray(x, dtype=float)
        a = np.where(x == self.low, self.low_scale, np.where((x > self.low) & (x <= self.high),
                                                              self.inner_scale, 0.0))
        return a if weights is None else a * np.asarray(weights, dtype=float)


# Half-width of the window of VaR contributions, as a fraction of 1 - q.
VAR_WINDOW = 0.2


def es_selection(x: np.ndarray, q: float, weights: np.ndarray | None = None) -> Selection:
    """The Euler coefficients of ES_q (module doc): sum_i a_i x_i is `tail`'s ES."""
    x = np.asarray(x, dtype=float)
    n = x.size
    w = np.ones(n) if _weights(weights, n) is None else np.asarray(weights, dtype=float)
    var = float(tail_table(x, np.array([q]), weights)[0, 0])
    mass = n * (1.0 - q)
    atom = float(w[x == var].sum())
    beta = max(mass - float(w[x > var].sum()), 0.0)
    return Selection(var, math.inf, beta / (mass * atom) if atom > 0 else 0.0, 1.0 / mass)


def var_selection(x: np.ndarray, q: float, weights: np.ndarray | None = None) -> tuple[Selection, float]:
    """The coefficients of the window around VaR_q (module doc) and the factor VaR / E[x | window]
    that scales the window's means into contributions adding up to the VaR (0 when that mean is 0)."""
    x = np.asarray(x, dtype=float)
    half = VAR_WINDOW * (1.0 - q)
    lo, hi = quantiles(x, np.array([max(q - half, 0.0), min(q + half, 1.0)]), weights)
    var = float(tail_table(x, np.array([q]), weights)[0, 0])
    w = np.ones(x.size) if weights is None else np.asarray(weights, dtype=float)
    inside = (x >= lo) & (x <= hi)
    total = float(w[inside].sum())
    selection = Selection(float(lo), float(hi), 1.0 / total, 1.0 / total)
    window_mean = float((selection.coefficients(x, weights) * x).sum())
    return selection, (var / window_mean if window_mean > 0 else 0.0)


# One-sided 95 %: the normal quantile a verdict's confidence bound uses.
VERDICT_Z = 1.645
VERDICTS = ("holds", "within noise", "violated")


def binomial_bounds(k: int, n: int, z: float = VERDICT_Z) -> tuple[float, float]:
    """Exact one-sided bounds (Clopper-Pearson) of a probability with k events in n paths, each at
    confidence Phi(z) (95 % by default): (lower, upper)."""
    tail = float(ndtr(-z))
    lower = 0.0 if k == 0 else float(betaincinv(k, n - k + 1, tail))
    upper = 1.0 if k == n else float(betaincinv(k + 1, n - k, 1.0 - tail))
    return lower, upper


def paths_to_show_none(limit: float, z: float = VERDICT_Z) -> int:
    """The fewest paths whose exact upper bound with no event, 1 - Phi(-z)^(1/n), is <= `limit` (a
    probability in (0, 1)): log Phi(-z) / log(1 - limit), rounded up."""
    return math.ceil(math.log(float(ndtr(-z))) / math.log1p(-limit))


def _judged(lower: float, upper: float, limit: float) -> str:
    """"holds" when the upper bound is within the limit, "violated" when the lower one is past it."""
    return "holds" if upper <= limit else "violated" if lower > limit else "within noise"


def probability_verdict(flags: np.ndarray, limit: float, z: float = VERDICT_Z) -> str:
    """`verdict` of a plain Monte Carlo probability at its exact bounds (`binomial_bounds`)."""
    flags = np.asarray(flags, dtype=bool)
    return _judged(*binomial_bounds(int(flags.sum()), flags.size, z), limit)


def verdict(estimate: Estimate, limit: float, z: float = VERDICT_Z) -> str:
    """A limit checked against an estimate at a one-sided confidence bound: "holds" when
    value + z se <= limit, "violated" when value - z se > limit, else "within noise"."""
    value, se = estimate
    return _judged(value - z * se, value + z * se, limit)
