"""Numba kernels that draw, for one path, the factors, which loans default and
when, and what each default recovers.

Latent variable of loan i on a path (Gaussian copula, sqrt_w = 1):
    X_i = (a Z + b S_k(i) + c eps_i) / sqrt_w,   a^2 + b^2 + c^2 = 1
For the Student-t copula sqrt_w = sqrt(chi2_nu / nu), one draw per path.
Under importance sampling (`sim.engine.importance`) Z and the S_k are drawn
with shifted means and chi2_nu with a scale (on most paths: a defensive
mixture); the path carries the likelihood ratio of those draws, nothing
else changes.
Loan i defaults in the first month t of its life with U_i <= F_i(t), U_i the
copula's uniform of X_i and F_i its cumulative PD curve (models.scoring).

Two samplers give the same distribution:
- dense: one idiosyncratic draw per loan (cost ~ loans);
- sparse: conditional on the factors defaults are independent Bernoulli(p_i).
  Loans are grouped in buckets of close thresholds; within a bucket the
  candidates are an iid Bernoulli(p_bar) subset, p_bar >= every p_i of the
  bucket (`sim.engine.bucket_bounds`), found by geometric skips (ziggurat
  exponentials), each kept with probability p_i / p_bar (exact thinning,
  done by drawing the candidate's eps_i truncated at Phi^-1(p_bar) and
  keeping it when it also lies below its own bound); eps_i then gives the
  default month. Cost ~ buckets + defaults. Candidates are taken in batches
  (`CandidateBatch`), which changes the speed only: skip draw k and
  acceptance draw k of a bucket belong to its k-th candidate either way.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
from numba import njit

from sim.engine.bucket_bounds import candidate_rate, grid_cell, squeeze_block, squeezes
from sim.engine.plan import exposure_at_default
from sim.engine.rng import (
    STREAM_ACCEPT,
    STREAM_DENSE,
    STREAM_MIXING,
    STREAM_RECOVERY,
    STREAM_SECTOR,
    STREAM_SKIP,
    STREAM_SKIP_TAIL,
    STREAM_SYSTEMATIC,
    STREAM_TAIL_COMPONENT,
    exponential_fast,
    exponential_from_bits,
    exponential_rare,
    fill_counter_bits,
    fill_uniforms,
    gamma_draw,
    ndtr,
    ndtri,
    std_normal,
    stream_base,
    t_sf,
    uniform,
)

# What a path's defaults, exposures and recoveries are drawn from: the part of
# the plan the per-path kernels read. Passing this small tuple rather than the
# whole plan matters: every array argument of a call that is not inlined costs
# a reference-count increment and decrement, and the plan has ~30 arrays.
DrawPlan = namedtuple(
    "DrawPlan",
    [
        "load_systematic", "load_sector", "load_idiosyncratic", "t_dof", "n_sectors", "sparse",
        "threshold", "sector", "start", "life", "hazard", "clock",
        "bucket_ptr", "bucket_threshold", "bucket_sector", "bucket_pos", "bucket_bounds",
        "amount", "term", "product", "amortizing", "recovery_mean", "recovery_sd", "recovery_downturn",
        "tail",
    ],
)


@njit(cache=True)
def draw_plan(plan):
    """The `DrawPlan` view of a `sim.engine.plan.Plan` (no copies)."""
    return DrawPlan(
        plan.load_systematic, plan.load_sector, plan.load_idiosyncratic, plan.t_dof, plan.n_sectors,
        plan.sparse, plan.threshold, plan.sector, plan.start, plan.life, plan.hazard, plan.clock,
        plan.bucket_ptr, plan.bucket_threshold, plan.bucket_sector, plan.bucket_pos, plan.bucket_bounds,
        plan.amount, plan.term, plan.product, plan.amortizing, plan.recovery_mean, plan.recovery_sd,
        plan.recovery_downturn, (plan.tail_shift, plan.tail_mixing, plan.tail_defensive),
    )


@njit(cache=True)
def draw_factors(key, path, n_sectors, load_sector, t_dof, tail, sector_factor):
    """Systematic factor Z, sector factors (written to `sector_factor`; zeros
    when their loading is 0, as they then move nothing), sqrt_w, the
    Student-t mixing scale (1 for the Gaussian copula), and the log of the
    path's likelihood ratio dP/dQ.

    `tail` = (shift, mixing, defensive): Q is the defensive mixture
    `defensive` P + (1 - `defensive`) G, G drawing Z ~ N(shift[0], 1),
    S_k ~ N(shift[1 + k], 1) and chi2_nu times `mixing`
    (`sim.engine.importance`). With no shift and mixing 1 (plain Monte
    Carlo) the draws are P's, to the bit, and the log ratio is 0."""
    shift, mixing, defensive = tail
    tilted = mixing != 1.0
    for k in range(shift.size):
        tilted |= shift[k] != 0.0
    # the path's component: G, or P itself with probability `defensive`
    on = tilted and uniform(key, path, STREAM_TAIL_COMPONENT, 0) >= defensive
    mu = shift[0]
    z = std_normal(key, path, STREAM_SYSTEMATIC, 0) + (mu if on else 0.0)
    log_g = mu * (z - 0.5 * mu)  # log dG/dP of the factors: phi(z - mu) / phi(z), ...
    for k in range(n_sectors):
        if load_sector != 0.0:
            mu = shift[1 + k]
            sector_factor[k] = std_normal(key, path, STREAM_SECTOR, k) + (mu if on else 0.0)
            log_g += mu * (sector_factor[k] - 0.5 * mu)
        else:
            sector_factor[k] = 0.0
    sqrt_w = 1.0
    if t_dof > 0.0:
        chi2 = 2.0 * gamma_draw(key, path, STREAM_MIXING, 0, 0.5 * t_dof) * (mixing if on else 1.0)
        sqrt_w = math.sqrt(chi2 / t_dof)
        if mixing != 1.0:  # ... times the scaled chi2 density over the chi2 density
            log_g -= 0.5 * t_dof * math.log(mixing) + 0.5 * chi2 * (1.0 / mixing - 1.0)
    if not tilted:
        return z, sqrt_w, 0.0
    # dP/dQ = 1 / (defensive + (1 - defensive) dG/dP), at most 1 / defensive
    return z, sqrt_w, -math.log(defensive + (1.0 - defensive) * math.exp(min(log_g, 700.0)))


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
    life, sector, threshold, clock, start, hazard = d.life, d.sector, d.threshold, d.clock, d.start, d.hazard
    for i in range(life.size):
        if life[i] == 0:
            continue
        common = a * z + b * sector_factor[sector[i]]
        eps = std_normal(key, path, STREAM_DENSE, i)
        y = common + c * eps
        if y <= sqrt_w * threshold[i]:
            out_loan[n] = i
            if want_month:
                out_month[n] = default_month(clock, start[i], life[i], hazard[i], d.t_dof, y / sqrt_w)
            n += 1
    return n


@njit(cache=True, inline="always")
def _path_streams(key, path):
    """The bases of a path's skip, skip-tail and acceptance streams."""
    return (stream_base(key, path, STREAM_SKIP), stream_base(key, path, STREAM_SKIP_TAIL),
            stream_base(key, path, STREAM_ACCEPT))


@njit(cache=True, inline="always")
def _sector_common(a, z, b, sector_factor, n_cells):
    """A sector's common term a Z + b S and its cell in the bounds table (-1: no table)."""
    common = a * z + b * sector_factor
    return common, grid_cell(common, n_cells) if n_cells else -1


@njit(cache=True, inline="always")
def _no_candidate(skip_stream, first, rate, size):
    """Does a bucket's first skip (its draw `first`, at `rate`) already pass its `size` loans?"""
    e, layer, final = exponential_fast(skip_stream, first)
    return final and not e * rate < size


@njit(cache=True, inline="always")
def _skip_ratio(bits, tail_stream, counter, rate, room):
    """A skip (loans, at `rate`) from hashed `bits`, or tail draw `counter` where the ziggurat needs it."""
    e, layer, final = exponential_from_bits(bits)
    ratio = e * rate
    if not (final & (ratio < room)):  # one branch in the usual case: a final draw within the `room` left
        if not final:
            ratio = exponential_rare(tail_stream, counter, layer, e) * rate
    return ratio


@njit(cache=True, inline="always")
def sample_defaults_sparse(d, key, path, z, sector_factor, sqrt_w, want_month, out_loan, out_month, batch):
    """Exact sampler whose cost grows with the number of defaults (bounds as
    `sim.engine.bucket_bounds` describes), a bucket's candidates taken a batch at a
    time (`batch`, a `CandidateBatch`). Returns the count; default months are
    written only when `want_month`."""
    n = 0
    a, b, c = d.load_systematic, d.load_sector, d.load_idiosyncratic
    # arrays taken out of the tuples once: a field read inside the loops costs
    # a reference-count pair per read wherever numba cannot prune it
    threshold, bucket_threshold, bucket_ptr = d.threshold, d.bucket_threshold, d.bucket_ptr
    bounds, bucket_pos, bucket_sector = d.bucket_bounds, d.bucket_pos, d.bucket_sector
    clock, start, life, hazard = d.clock, d.start, d.life, d.hazard
    bits, loan, pos, accept, keep, undecided = batch
    skip_stream, tail_stream, accept_stream = _path_streams(key, path)
    n_cells = bounds.shape[0]
    sector, common, cell = -1, 0.0, -1
    for bucket in range(bucket_threshold.size):
        if bucket_sector[bucket] != sector:  # a sector's buckets are consecutive
            sector = bucket_sector[bucket]
            common, cell = _sector_common(a, z, b, sector_factor[sector], n_cells)
        lo = bucket_ptr[bucket]
        if cell >= 0:
            p_bar, rate, lower = bounds[cell, bucket, 0], bounds[cell, bucket, 1], bounds[cell, bucket, 2]
            chord, upper, span = bounds[cell, bucket, 3], bounds[cell, bucket, 4], bounds[cell, bucket, 5]
        else:
            p_bar, rate = candidate_rate(bucket_threshold[bucket], common, c, sqrt_w)
            lower, chord, upper, span = 0.0, 0.0, np.inf, 0.0
        if p_bar <= 0.0:
            continue
        size = bucket_ptr[bucket + 1] - lo
        first = bucket << 32  # the bucket's draw 0 on the skip and accept streams
        # most buckets of a book have no candidate: find that out with one
        # draw before drawing a batch
        if _no_candidate(skip_stream, first, rate, size):
            continue
        if cell < 0 and not want_month:  # squeezes not from the table (loss-only runs)
            lower, chord, upper, span = squeezes(threshold[lo], bucket_threshold[bucket], common,
                                                 common, c, sqrt_w, p_bar)
        j = -1  # the last candidate's position in the bucket
        while True:
            # A batch: vector passes hash the skip draws and draw the acceptance
            # values (before the skips, so this pass overlaps the scalar loop),
            # the skips follow one by one (each starts where the last ended),
            # then a vector pass applies the squeezes. Passes run the batch's
            # full length: cheaper than the branches a varying length mispredicts.
            fill_counter_bits(skip_stream, first, bits)
            fill_uniforms(accept_stream, first, p_bar, accept)
            m, done = 0, False
            while m < bits.size:
                ratio = _skip_ratio(bits[m], tail_stream, first + m, rate, size - j - 1)
                if not ratio < size - j - 1:
                    done = True
                    break
                j += 1 + int(ratio)
                loan[np.uint64(m)] = lo + j
                pos[np.uint64(m)] = bucket_pos[np.uint64(lo + j)]
                m += 1
            if not want_month:
                squeeze_block(pos, accept, lower, chord, upper, span, keep, undecided)
            for k in range(m):
                i = loan[k]
                if want_month or undecided[k]:
                    # u * p_bar is uniform on (0, p_bar), so eps = Phi^-1(u p_bar) is a
                    # candidate's idiosyncratic factor (normal, truncated at Phi^-1(p_bar));
                    # it defaults iff eps <= its own bound, i.e. with probability p_i / p_bar,
                    # and then eps is normal truncated at that bound, as it must be.
                    eps = ndtri(accept[k])
                    if eps <= (sqrt_w * threshold[i] - common) / c:
                        out_loan[n] = i
                        if want_month:
                            out_month[n] = default_month(clock, start[i], life[i], hazard[i], d.t_dof,
                                                           (common + c * eps) / sqrt_w)
                        n += 1
                else:
                    out_loan[np.uint64(n)] = i
                    n += np.int64(keep[k])
            if done:
                break
            first += bits.size
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
    start, term, amortizing, product, amount = d.start, d.term, d.amortizing, d.product, d.amount
    for k in range(n):
        i = def_loan[k]
        ead[k] = exposure_at_default(def_month[k] - start[i], term[i], amortizing[product[i]], amount[i])


# A thread lane's scratch for `sample_path_losses`: sector factors, per
# default loan, month, exposure and recovery, and the sparse sampler's batch.
DrawScratch = namedtuple("DrawScratch", ["sector_factor", "loan", "month", "ead", "rec", "batch"])
# A batch of one bucket's candidates: the skip draws' hashed bits, loan (plan
# order), bucket position, acceptance value u p_bar and the squeezes' verdicts.
CandidateBatch = namedtuple("CandidateBatch", ["bits", "loan", "pos", "accept", "keep", "undecided"])
# Candidates per batch (W1 averages 12 a bucket).
BATCH = 16


@njit(cache=True)
def draw_scratch(plan):
    """A `DrawScratch` sized for the plan."""
    n_loans = plan.amount.size
    # zeros: a pass runs over the whole batch, slots past the last candidate too
    batch = CandidateBatch(np.zeros(BATCH, np.uint64), np.zeros(BATCH, np.int64), np.zeros(BATCH),
                           np.zeros(BATCH), np.zeros(BATCH, np.bool_), np.zeros(BATCH, np.bool_))
    return DrawScratch(np.empty(max(plan.n_sectors, 1)), np.empty(n_loans, np.int64),
                       np.empty(n_loans, np.int64), np.empty(n_loans), np.empty(n_loans), batch)


@njit(cache=True)
def sample_path_losses(d, key, path, want_month, scratch):
    """One path: factors, the defaults (scratch.loan, scratch.month), and each
    default's exposure and recovery fraction (scratch.ead, scratch.rec).
    Returns (number of defaults, systematic factor z, log likelihood ratio).

    Without `want_month` the months are not drawn (scratch.month is left as
    it was), which only a caller that needs neither event timing nor
    amortising exposures may ask for (see `needs_months`); the defaults are
    the same."""
    sector_factor, def_loan, ead, rec = scratch.sector_factor, scratch.loan, scratch.ead, scratch.rec
    z, sqrt_w, log_ratio = draw_factors(key, path, d.n_sectors, d.load_sector, d.t_dof, d.tail, sector_factor)
    if d.sparse:
        n = sample_defaults_sparse(d, key, path, z, sector_factor, sqrt_w, want_month, def_loan,
                                   scratch.month, scratch.batch)
    else:
        n = sample_defaults_dense(d, key, path, z, sector_factor, sqrt_w, want_month, def_loan, scratch.month)
    product, amount = d.product, d.amount
    mean, sd, downturn = d.recovery_mean, d.recovery_sd, d.recovery_downturn
    if want_month:
        fill_exposures(d, n, def_loan, scratch.month, ead)
    for k in range(n):
        i = def_loan[k]
        p = product[i]
        if not want_month:
            ead[k] = amount[i]
        if random_recovery(sd, downturn, p):
            rec[k] = recovery_fraction(key, path, i, z, mean[i], downturn[p], sd[p])
        else:
            rec[k] = mean[i]
    return n, z, log_ratio


@njit(cache=True, inline="always")
def random_recovery(recovery_sd, recovery_downturn, product):
    """Does a default of this product recover a path-dependent fraction?"""
    return recovery_sd[product] > 0.0 or recovery_downturn[product] > 0.0


def needs_months(plan) -> bool:
    """Does a loan's exposure at default depend on its default month (an
    amortising product)? Loss-only runs draw months only then."""
    return bool((plan.amortizing > 0.0).any())
