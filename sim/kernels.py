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
    t_sf,
    uniform,
)


@njit(cache=True)
def draw_factors(plan, key, path, sector_factor):
    """Systematic factor Z, sector factors (written to `sector_factor`) and
    sqrt_w, the Student-t mixing scale (1 for the Gaussian copula)."""
    z = std_normal(key, path, STREAM_SYSTEMATIC, 0)
    for k in range(plan.n_sectors):
        sector_factor[k] = std_normal(key, path, STREAM_SECTOR, k)
    sqrt_w = 1.0
    if plan.t_dof > 0.0:
        sqrt_w = math.sqrt(2.0 * gamma_draw(key, path, STREAM_MIXING, 0, 0.5 * plan.t_dof) / plan.t_dof)
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
def sample_defaults_dense(plan, key, path, z, sector_factor, sqrt_w, out_loan, out_month):
    """Reference sampler: one latent variable per loan. Returns the default count."""
    n = 0
    a, b, c = plan.load_systematic, plan.load_sector, plan.load_idiosyncratic
    for i in range(plan.amount.size):
        if plan.life[i] == 0:
            continue
        common = a * z + b * sector_factor[plan.sector[i]]
        eps = std_normal(key, path, STREAM_DENSE, i)
        y = common + c * eps
        if y <= sqrt_w * plan.threshold[i]:
            out_loan[n] = i
            out_month[n] = default_month(plan.clock, plan.start[i], plan.life[i], plan.hazard[i], plan.t_dof,
                                           y / sqrt_w)
            n += 1
    return n


@njit(cache=True)
def sample_defaults_sparse(plan, key, path, z, sector_factor, sqrt_w, out_loan, out_month):
    """Exact sampler whose cost grows with the number of defaults. Returns the count."""
    n = 0
    a, b, c = plan.load_systematic, plan.load_sector, plan.load_idiosyncratic
    for bucket in range(plan.bucket_threshold.size):
        common = a * z + b * sector_factor[plan.bucket_sector[bucket]]
        p_max = ndtr((sqrt_w * plan.bucket_threshold[bucket] - common) / c)
        if p_max <= 0.0:
            continue
        lo = plan.bucket_ptr[bucket]
        size = plan.bucket_ptr[bucket + 1] - lo
        log_q = math.log1p(-p_max)  # -inf when p_max == 1: every loan is a candidate
        j = -1
        draw = 0
        base = bucket << 32
        while True:
            # failures before the next candidate ~ Geometric(p_max) = floor(ratio);
            # compared as a float first because with a tiny p_max it can exceed
            # any integer (math.floor would overflow int64)
            ratio = math.log(uniform(key, path, STREAM_SKIP, base + draw)) / log_q
            if ratio >= size - j - 1:
                break
            j += 1 + int(ratio)
            i = plan.bucket_loans[lo + j]
            # u * p_max is uniform on (0, p_max), so eps = Phi^-1(u p_max) is a
            # candidate's idiosyncratic factor (normal, truncated at Phi^-1(p_max));
            # it defaults iff eps <= its own bound, i.e. with probability p_i / p_max,
            # and then eps is normal truncated at that bound, as it must be.
            eps = ndtri(uniform(key, path, STREAM_ACCEPT, base + draw) * p_max)
            if eps <= (sqrt_w * plan.threshold[i] - common) / c:
                out_loan[n] = i
                out_month[n] = default_month(plan.clock, plan.start[i], plan.life[i], plan.hazard[i],
                                               plan.t_dof, (common + c * eps) / sqrt_w)
                n += 1
            draw += 1
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
def fill_exposures(plan, n, def_loan, def_month, ead):
    """Exposure at default (yuan) of the first n defaults."""
    for k in range(n):
        i = def_loan[k]
        ead[k] = exposure_at_default(def_month[k] - plan.start[i], plan.term[i],
                                     plan.amortizing[plan.product[i]], plan.amount[i])


@njit(cache=True)
def sample_path_losses(plan, key, path, sector_factor, def_loan, def_month, ead, rec):
    """One path: factors, the defaults (loan, month), and each default's exposure
    and recovery fraction. Returns (number of defaults, systematic factor z)."""
    z, sqrt_w = draw_factors(plan, key, path, sector_factor)
    if plan.sparse:
        n = sample_defaults_sparse(plan, key, path, z, sector_factor, sqrt_w, def_loan, def_month)
    else:
        n = sample_defaults_dense(plan, key, path, z, sector_factor, sqrt_w, def_loan, def_month)
    fill_exposures(plan, n, def_loan, def_month, ead)
    for k in range(n):
        i = def_loan[k]
        p = plan.product[i]
        rec[k] = recovery_fraction(key, path, i, z, plan.recovery_mean[i], plan.recovery_downturn[p],
                                   plan.recovery_sd[p])
    return n, z
