"""Euler risk contributions summed from the defaults of chosen paths: the
arrays kept while paths stream past, and the contributions and SEs read
from them (the coefficients a_i come from `sim.risk.estimators`).

For a target x (the gross loss or one party's loss) with parts x_g (a
group's loans: a sector, a segment, one loan) and selections j (ES or the
VaR window at each level), the sums over paths i kept are
    S1 = sum_i a_ij x_g,i,  S2 = sum_i a_ij^2 x_g,i^2,  S3 = sum_i a_ij^2 x_g,i,
so that with A2_j = sum_i a_ij^2 over every path the contribution is
c = S1 and its SE sqrt(S2 - 2 c S3 + c^2 A2) (= sqrt(sum_i a_i^2 (x_g,i - c)^2),
the zero parts of paths never drawn again included through A2). Paths are
added in path order, one at a time: the sums do not depend on how paths are
batched or on the threads that drew them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit


class Sums(NamedTuple):
    """Running sums by (target, selection, group)."""

    s1: np.ndarray
    s2: np.ndarray
    s3: np.ndarray


def new_sums(n_targets: int, n_selections: int, n_groups: int) -> Sums:
    """Zeroed sums (memory 24 bytes a target x selection x group)."""
    return Sums(*(np.zeros((n_targets, n_selections, n_groups)) for _ in range(3)))


def sums_bytes(n_targets: int, n_selections: int, n_groups: int, n_loans: int) -> int:
    """Memory of the sums and the per-path scratch of `accumulate`, bytes."""
    return 24 * n_targets * n_selections * n_groups + 8 * n_groups * (n_targets + 2) + 8 * n_loans


@njit(cache=True)
def accumulate(offsets, loans, losses, coefficients, group_of, s1, s2, s3):
    """Add paths j = 0.. (in order) to the sums: path j's defaults are rows offsets[j]:offsets[j + 1]
    of `loans` (plan loan index) and `losses` (yuan by target), its coefficients
    coefficients[j, target, selection]; group_of[h, loan] is the loan's group in grouping h
    (groups of all groupings numbered together)."""
    n_groups = s1.shape[2]
    n_targets, n_selections = coefficients.shape[1], coefficients.shape[2]
    totals = np.zeros((n_groups, n_targets))
    touched = np.empty(n_groups, np.int64)
    seen = np.zeros(n_groups, np.bool_)
    for j in range(offsets.size - 1):
        n_touched = 0
        for r in range(offsets[j], offsets[j + 1]):
            for h in range(group_of.shape[0]):
                g = group_of[h, loans[r]]
                if not seen[g]:
                    seen[g] = True
                    touched[n_touched] = g
                    n_touched += 1
                for t in range(n_targets):
                    totals[g, t] += losses[r, t]
        for m in range(n_touched):
            g = touched[m]
            for t in range(n_targets):
                x = totals[g, t]
                if x != 0.0:
                    for s in range(n_selections):
                        a = coefficients[j, t, s]
                        if a != 0.0:
                            s1[t, s, g] += a * x
                            s2[t, s, g] += a * a * x * x
                            s3[t, s, g] += a * a * x
                totals[g, t] = 0.0
            seen[g] = False


def contributions(sums: Sums, a2: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contributions and their SEs by (target, selection, group) from the sums; `a2[t, s]` is
    sum_i a_i^2 over every path and `scale[t, s]` multiplies the selection's contributions
    (1 for ES, VaR / E[x | window] for a VaR window)."""
    c = sums.s1
    variance = sums.s2 - 2.0 * c * sums.s3 + c * c * a2[:, :, None]
    k = scale[:, :, None]
    return c * k, np.sqrt(np.maximum(variance, 0.0)) * np.abs(k)
