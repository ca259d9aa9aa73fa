"""Numba kernels that draw, for one path, the factors, which loans default and
when, and what each default recovers.

Latent variable of loan i on a path (Gaussian copula, sqrt_w = 1):
    X_i = (a Z + b S_k(i) + c eps_i) / sqrt_w,   a^2 + b^2 + c^2 = 1
For the Student-t copula sqrt_w = sqrt(chi2_nu / nu), one draw per path.
Loan i defaults in the first month t of its life with U_i <= F_i(t), U_i the
copula's uniform of X_i and F_i its cumulative PD curve (models.scoring).

Two samplers give the same distribution:
- dense: one idiosyncratic draw per loan (cost ~ loans);
- sparse: conditional on the factors defaults are independent Bernoulli(p_i).
  Loans are grouped in buckets of close thresholds; within a bucket the
  candidates are an iid Bernoulli(p_max) subset, found by geometric skips,
  each kept with probability p_i / p_max (exact thinning, done by drawing the
  candidate's eps_i truncated at the bucket's bound and keeping it when it
  also lies below its own); eps_i then gives the default month.
  Cost ~ buckets + defaults.
"""

from __future__ import annotations

import math
from collections import namedtuple

from numba import njit

from sim.plan import exposure_at_default
from sim.rng import (
    STREAM_ACCEPT,
    STREAM_DENSE,
    STREAM_MIXING,
    STREAM_RECOVERY,
    STREAM_SECTOR,
    STREAM_SKIP,
    STREAM_SYSTEMATIC,
    gamma_draw,
    ndtr,
    ndtri,
    std_normal,
    stream_base,
    t_sf,
    uniform,
    uniform_at,
)

_SQRT_2PI = math.sqrt(2.0 * math.pi)

# What a path's defaults, exposures and recoveries are drawn from: the part of
# the plan the per-path kernels read. Passing this small tuple rather than the
# whole plan matters: every array argument of a call that is not inlined costs
# a reference-count increment and decrement, and the plan has ~30 arrays.
DrawPlan = namedtuple(
    "DrawPlan",
    [
        "load_systematic", "load_sector", "load_idiosyncratic", "t_dof", "n_sectors", "sparse",
        "threshold", "sector", "start", "life", "hazard", "clock",
        "bucket_ptr", "bucket_threshold", "bucket_sector",
        "amount", "term", "product", "amortizing", "recovery_mean", "recovery_sd", "recovery_downturn",
    ],
)


@njit(cache=True)
def draw_plan(plan):
    """The `DrawPlan` view of a `sim.plan.Plan` (no copies)."""
    return DrawPlan(
        plan.load_systematic, plan.load_sector, plan.load_idiosyncratic, plan.t_dof, plan.n_sectors,
        plan.sparse, plan.threshold, plan.sector, plan.start, plan.life, plan.hazard, plan.clock,
        plan.bucket_ptr, plan.bucket_threshold, plan.bucket_sector,
        plan.amount, plan.term, plan.product, plan.amortizing, plan.recovery_mean, plan.recovery_sd,
        plan.recovery_downturn,
    )


@njit(cache=True)
def draw_factors(key, path, n_sectors, t_dof, sector_factor):
    """Systematic factor Z, sector factors (written to `sector_factor`) and
    sqrt_w, the Student-t mixing scale (1 for the Gaussian copula)."""
    z = std_normal(key, path, STREAM_SYSTEMATIC, 0)
    for k in range(n_sectors):
        sector_factor[k] = std_normal(key, path, STREAM_SECTOR, k)
    sqrt_w = 1.0
    if t_dof > 0.0:
        sqrt_w = math.sqrt(2.0 * gamma_draw(key, path, STREAM_MIXING, 0, 0.5 * t_dof) / t_dof)
    return z, sqrt_w


@njit(cache=True)
def default_month(clock, start, life, hazard, t_dof, x):
    """First month (calendar, 1-based) in which latent value x means default for
    a loan (start month, months of life, monthly hazard) that defaults within
    its life. Scalars rather than the plan: this runs once per default."""
    survival = t_sf(x, t_dof) if t_dof > 0.0 else ndtr(-x)
    target = clock[start] - math.log(survival) / hazard
    # smallest t in 1..life with clock[start + t] >= target; rounding can leave
    # a defaulter a hair past its last month, which is then its month.
    lo, hi = 1, life
    while lo < hi:
        mid = (lo + hi) // 2
        if clock[start + mid] >= target:
            hi = mid
        else:
            lo = mid + 1
    return start + lo


@njit(cache=True)
def sample_defaults_dense(d, key, path, z, sector_factor, sqrt_w, want_month, out_loan, out_month):
    """Reference sampler: one latent variable per loan. Returns the default
    count; default months are written only when `want_month`."""
    n = 0
    a, b, c = d.load_systematic, d.load_sector, d.load_idiosyncratic
    for i in range(d.amount.size):
        if d.life[i] == 0:
            continue
        common = a * z + b * sector_factor[d.sector[i]]
        eps = std_normal(key, path, STREAM_DENSE, i)
        y = common + c * eps
        if y <= sqrt_w * d.threshold[i]:
            out_loan[n] = i
            if want_month:
                out_month[n] = default_month(d.clock, d.start[i], d.life[i], d.hazard[i],
                                               d.t_dof, y / sqrt_w)
            n += 1
    return n


@njit(cache=True)
def _squeeze_bounds(t_lo, t_hi, p_max, common, c, sqrt_w):
    """Set-up of the sparse sampler's squeezes for a bucket whose loans' lifetime
    thresholds run from t_lo to t_hi (sorted), with highest conditional PD p_max.

    A loan's bound b_i = (sqrt_w t_i - common) / c is linear in s_i =
    (t_i - t_lo) / (t_hi - t_lo). As log Phi is concave, p_i = Phi(b_i) lies
    above the chord p_lo (p_max / p_lo)^s_i and below the tangent at b_hi,
    p_max exp(-(1 - s_i) span), span = (b_hi - b_lo) phi(b_hi) / p_max; with
    exp(y) >= 1 + y + y^2/2 (y >= 0) and exp(-x) <= 1 - x + x^2/2 (x >= 0) a
    candidate below the one bound is kept and one above the other dropped
    without Phi^-1. The caller's 1e-9 margins keep a squeeze from ever deciding
    differently from the exact test (ndtr/ndtri round at ~1e-15 relative), so
    loss-only and full runs keep the same defaults.

    Returns (usable, p_lo, 1 / (t_hi - t_lo), log(p_max / p_lo), span)."""
    p_lo = ndtr((sqrt_w * t_lo - common) / c)
    if not (p_lo > 1e-290 and t_hi > t_lo):
        return False, p_lo, 0.0, 0.0, 0.0
    b_hi = (sqrt_w * t_hi - common) / c
    span = sqrt_w * (t_hi - t_lo) / c * math.exp(-0.5 * b_hi * b_hi) / (_SQRT_2PI * p_max)
    return True, p_lo, 1.0 / (t_hi - t_lo), math.log(p_max / p_lo), span


@njit(cache=True)
def sample_defaults_sparse(d, key, path, z, sector_factor, sqrt_w, want_month, out_loan, out_month):
    """Exact sampler whose cost grows with the number of defaults. Returns the
    count; default months are written only when `want_month`."""
    n = 0
    a, b, c = d.load_systematic, d.load_sector, d.load_idiosyncratic
    skip_stream = stream_base(key, path, STREAM_SKIP)
    accept_stream = stream_base(key, path, STREAM_ACCEPT)
    for bucket in range(d.bucket_threshold.size):
        common = a * z + b * sector_factor[d.bucket_sector[bucket]]
        p_max = ndtr((sqrt_w * d.bucket_threshold[bucket] - common) / c)
        if p_max <= 0.0:
            continue
        lo = d.bucket_ptr[bucket]
        size = d.bucket_ptr[bucket + 1] - lo
        # Squeezes (loss-only runs: see `_squeeze_bounds`), set up on the
        # bucket's first candidate, since most buckets of a book have none;
        # not when c is tiny, where rounding in the bounds b_i (~1e-16 / c)
        # would approach the squeezes' 1e-9 margins.
        pending = not want_month and p_max > 1e-290 and c >= 1e-3
        squeeze = False
        t_lo = p_lo = inv_width = chord = span = 0.0
        log_q = math.log1p(-p_max)  # -inf when p_max == 1: every loan is a candidate
        j = -1
        draw = 0
        base = bucket << 32
        while True:
            # failures before the next candidate ~ Geometric(p_max) = floor(ratio);
            # compared as a float first because with a tiny p_max it can exceed
            # any integer (math.floor would overflow int64)
            ratio = math.log(uniform_at(skip_stream, base + draw)) / log_q
            if ratio >= size - j - 1:
                break
            j += 1 + int(ratio)
            i = lo + j
            # u * p_max is uniform on (0, p_max), so eps = Phi^-1(u p_max) is a
            # candidate's idiosyncratic factor (normal, truncated at Phi^-1(p_max));
            # it defaults iff eps <= its own bound, i.e. with probability p_i / p_max,
            # and then eps is normal truncated at that bound, as it must be.
            v = uniform_at(accept_stream, base + draw) * p_max
            draw += 1
            if pending:
                pending = False
                t_lo = d.threshold[lo]
                squeeze, p_lo, inv_width, chord, span = _squeeze_bounds(
                    t_lo, d.bucket_threshold[bucket], p_max, common, c, sqrt_w)
            if squeeze:
                s_i = (d.threshold[i] - t_lo) * inv_width
                y = s_i * chord
                if v < p_lo * (1.0 + y + 0.5 * y * y) * (1.0 - 1e-9):
                    out_loan[n] = i
                    n += 1
                    continue
                x = (1.0 - s_i) * span
                if v > p_max * (1.0 - x + 0.5 * x * x) * (1.0 + 1e-9):
                    continue
            eps = ndtri(v)
            if eps <= (sqrt_w * d.threshold[i] - common) / c:
                out_loan[n] = i
                if want_month:
                    out_month[n] = default_month(d.clock, d.start[i], d.life[i], d.hazard[i],
                                                   d.t_dof, (common + c * eps) / sqrt_w)
                n += 1
    return n


@njit(cache=True)
def recovery_fraction(key, path, i, z, mean, downturn, sd):
    """Share of the exposure recovered on loan i's default. Downturn: the mean
    moves to Phi(Phi^-1(mean) + downturn z), lower when z is bad; with sd > 0
    the fraction is Beta with that mean and sd."""
    if downturn > 0.0 and 0.0 < mean < 1.0:
        mean = ndtr(ndtri(mean) + downturn * z)
    if sd <= 0.0 or mean <= 0.0 or mean >= 1.0:
        return mean
    var = min(sd * sd, 0.99 * mean * (1.0 - mean))
    total = mean * (1.0 - mean) / var - 1.0
    x = gamma_draw(key, path, STREAM_RECOVERY, 3 * i, mean * total)
    y = gamma_draw(key, path, STREAM_RECOVERY, 3 * i + 1, (1.0 - mean) * total)
    if x + y > 0.0:
        return x / (x + y)
    # Both shapes tiny (sd near its limit sqrt(mean (1 - mean))): the Beta is then
    # all but a Bernoulli(mean), and both gamma draws underflowed to zero.
    return 1.0 if uniform(key, path, STREAM_RECOVERY, (3 * i + 2) * 64) < mean else 0.0


@njit(cache=True)
def fill_exposures(d, n, def_loan, def_month, ead):
    """Exposure at default (yuan) of the first n defaults."""
    for k in range(n):
        i = def_loan[k]
        ead[k] = exposure_at_default(def_month[k] - d.start[i], d.term[i],
                                     d.amortizing[d.product[i]], d.amount[i])


@njit(cache=True)
def sample_path_losses(d, key, path, want_month, sector_factor, def_loan, def_month, ead, rec):
    """One path: factors, the defaults (loan, month), and each default's exposure
    and recovery fraction. Returns (number of defaults, systematic factor z).

    Without `want_month` the months are not drawn (def_month is left as it
    was), which only a caller that needs neither event timing nor amortising
    exposures may ask for (see `needs_months`); the defaults are the same."""
    z, sqrt_w = draw_factors(key, path, d.n_sectors, d.t_dof, sector_factor)
    if d.sparse:
        n = sample_defaults_sparse(d, key, path, z, sector_factor, sqrt_w, want_month, def_loan, def_month)
    else:
        n = sample_defaults_dense(d, key, path, z, sector_factor, sqrt_w, want_month, def_loan, def_month)
    if want_month:
        fill_exposures(d, n, def_loan, def_month, ead)
    for k in range(n):
        i = def_loan[k]
        p = d.product[i]
        if not want_month:
            ead[k] = d.amount[i]
        if d.recovery_sd[p] > 0.0 or d.recovery_downturn[p] > 0.0:
            rec[k] = recovery_fraction(key, path, i, z, d.recovery_mean[i], d.recovery_downturn[p],
                                       d.recovery_sd[p])
        else:
            rec[k] = d.recovery_mean[i]
    return n, z


def needs_months(plan) -> bool:
    """Does a loan's exposure at default depend on its default month (an
    amortising product)? Loss-only runs draw months only then."""
    return bool((plan.amortizing > 0.0).any())
