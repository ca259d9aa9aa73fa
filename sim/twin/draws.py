"""The twin's random draws: one path's factors, default months, exposures and
recoveries, from its own NumPy PCG64 stream (see `sim.twin.processes` for
the whole model; the draws are its "Draws" paragraph)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from sim.engine.plan import Plan


@dataclass(frozen=True)
class PathDraws:
    """One path's random outcome: default month per loan (-1: none) and recovery fraction."""

    month: np.ndarray
    recovery: np.ndarray
    exposure: np.ndarray


def life_pd(plan: Plan) -> np.ndarray:
    """F_i(life_i), the probability that loan i defaults within its life."""
    s = np.minimum(plan.start, plan.horizon)
    return -np.expm1(-plan.hazard * (plan.clock[s + plan.life] - plan.clock[s]))


def draw_path(plan: Plan, rng: np.random.Generator, pd_life: np.ndarray) -> PathDraws:
    """Factors, latent variables, default months, exposures and recoveries of one path."""
    n = plan.amount.size
    z = rng.standard_normal()
    sector = rng.standard_normal(plan.n_sectors)
    sqrt_w = math.sqrt(rng.chisquare(plan.t_dof) / plan.t_dof) if plan.t_dof > 0.0 else 1.0
    eps = rng.standard_normal(n)
    common = plan.load_systematic * z + plan.load_sector * sector[plan.sector]
    x = (common + plan.load_idiosyncratic * eps) / sqrt_w
    survival = special.stdtr(plan.t_dof, -x) if plan.t_dof > 0.0 else special.ndtr(-x)
    # U <= F(life)  <=>  1 - U >= exp(-lambda (C[s + life] - C[s]))
    defaults = np.flatnonzero((plan.life > 0) & (plan.hazard > 0.0) & (survival >= 1.0 - pd_life))
    month = np.full(n, -1, np.int64)
    exposure = np.zeros(n)
    recovery = np.zeros(n)
    if defaults.size == 0:
        return PathDraws(month, recovery, exposure)
    s = plan.start[defaults]
    target = plan.clock[s] - np.log(survival[defaults]) / plan.hazard[defaults]
    t = np.searchsorted(plan.clock, target, side="left") - s  # first t with C[s + t] >= target
    t = np.clip(t, 1, plan.life[defaults])
    month[defaults] = s + t
    prod = plan.product[defaults]
    exposure[defaults] = plan.amount[defaults] * (1.0 - plan.amortizing[prod] * (t - 1) / plan.term[defaults])

    mean = plan.recovery_mean[defaults].astype(float)
    k = plan.recovery_downturn[prod]
    shift = (k > 0.0) & (mean > 0.0) & (mean < 1.0)
    mean[shift] = special.ndtr(special.ndtri(mean[shift]) + k[shift] * z)
    sd = plan.recovery_sd[prod]
    beta = (sd > 0.0) & (mean > 0.0) & (mean < 1.0)
    rec = mean.copy()
    if beta.any():
        m = mean[beta]
        var = np.minimum(sd[beta] ** 2, 0.99 * m * (1.0 - m))
        total = m * (1.0 - m) / var - 1.0
        rec[beta] = rng.beta(m * total, (1.0 - m) * total)
    recovery[defaults] = rec
    return PathDraws(month, recovery, exposure)
