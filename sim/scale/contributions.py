"""Risk contributions of a run in two passes: the run itself gives every
path's gross and party losses, hence the VaR, ES and Euler coefficients of
each target (`sim.risk.estimators`); the paths that enter some target's
tail or VaR window with a positive loss are then drawn again, in batches of
bounded size (`sim.engine.tail_paths`), and only their defaults are summed
by group (`sim.risk.contributions`). Memory: the sums (24 bytes a target x
selection x group) and one batch of defaults, never loans x paths.

A path outside every tail or window, or with a zero loss, adds nothing to
any contribution, so it is not drawn again (its coefficient still counts in
the SE through A2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import xarray as xr

from models.portfolio import Portfolio, grouping
from models.scenario import PARTIES
from sim.engine.lanes import lanes_for
from sim.engine.outputs import PathOutputs, check_fits
from sim.engine.run import RunSpec
from sim.engine.tail_paths import default_losses
from sim.results.dataset import add_contributions
from sim.risk import estimators
from sim.risk.contributions import accumulate, contributions, new_sums, sums_bytes

# What contributions are taken of: the gross loss, then each party's loss.
TARGETS = ("gross", *PARTIES)
# Defaults drawn again per batch (~80 bytes each): the second pass's memory beyond the sums.
DEFAULTS_PER_BATCH = 1 << 19

ProgressFactory = Callable[[int], Callable[[int], None]]


def _targets(out: PathOutputs) -> np.ndarray:
    """(paths, targets): the gross loss and each party's loss of every path, yuan."""
    return np.column_stack([out.gross_loss, out.party_loss])


def _selections(x: np.ndarray, quantiles: np.ndarray, w: np.ndarray, means: bool):
    """Per target: the ES selections at each level, then the VaR windows, then (with `means`) every
    path at weight 1/n (the mean); and their scales."""
    n_q = quantiles.size
    chosen, scale = [], np.ones((x.shape[1], 2 * n_q + means))
    for t in range(x.shape[1]):
        row = [estimators.es_selection(x[:, t], q, w) for q in quantiles]
        for k, q in enumerate(quantiles):
            window, scale[t, n_q + k] = estimators.var_selection(x[:, t], q, w)
            row.append(window)
        if means:
            row.append(estimators.Selection(-np.inf, np.inf, 0.0, 1.0 / x.shape[0]))
        chosen.append(row)
    return chosen, scale


def _batches(paths: np.ndarray, n_defaults: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive ranges of `paths` holding about DEFAULTS_PER_BATCH defaults (a path at least)."""
    ends = np.cumsum(n_defaults[paths])
    out, lo = [], 0
    while lo < paths.size:
        base = ends[lo - 1] if lo else 0
        hi = max(lo + 1, int(np.searchsorted(ends, base + DEFAULTS_PER_BATCH, side="right")))
        out.append((lo, min(hi, paths.size)))
        lo = hi
    return out


def risk_contributions(spec: RunSpec, out: PathOutputs, portfolio: Portfolio, by: Sequence[str],
                       quantiles: np.ndarray, score_bands: Sequence[float], *, means: bool = False,
                       threads: int | None = None, progress: ProgressFactory | None = None) -> xr.Dataset:
    """ES and VaR contributions of every target by each grouping in `by` (`models.portfolio.GROUPINGS`)
    at `quantiles`, for the run `spec` whose per-path outputs are `out`; a Dataset of
    `contribution_{es,var}_<by>` (+ `_se`), dims (loss_of, quantile, <by>), yuan (segments from
    `score_bands`); with `means`, also each group's mean loss `contribution_mean_<by>` (every path with
    a loss is drawn again). `progress(n)` is
    called with the count of paths drawn again and returns what is told each batch's count."""
    quantiles = np.asarray(quantiles, float)
    groups = [grouping(portfolio, name, score_bands) for name in by]
    sizes = [len(labels) for _, labels in groups]
    first = np.concatenate([[0], np.cumsum(sizes)])
    plan_rows = spec.plan.loan_order  # plan loan -> portfolio row
    group_of = np.stack([index[plan_rows] + first[h] for h, (index, _) in enumerate(groups)])
    n_sel = 2 * quantiles.size + means
    if means and not (out.weight == 1.0).all():
        raise ValueError("group means by contributions need plain Monte Carlo (their SE formula takes "
                         "coefficients adding up to 1)")
    lanes = lanes_for(threads)
    lane_scratch = lanes * plan_rows.size * 8 * (len(TARGETS) + 16)  # each lane's settling arrays
    check_fits(sums_bytes(len(TARGETS), n_sel, int(first[-1]), plan_rows.size)
               + 80 * DEFAULTS_PER_BATCH + lane_scratch, spec.memory_bytes or np.iinfo(np.int64).max,
               f"risk contributions by {', '.join(by)}")
    x, w = _targets(out), out.weight
    chosen, scale = _selections(x, quantiles, w, means)
    a2 = np.zeros((len(TARGETS), n_sel))
    keep = np.zeros(x.shape[0], bool)
    for t, row in enumerate(chosen):
        for s, selection in enumerate(row):
            a = selection.coefficients(x[:, t], w)
            a2[t, s] = float((a * a).sum())
            keep |= (a > 0) & (x[:, t] > 0)
    paths = np.flatnonzero(keep)
    sums = new_sums(len(TARGETS), n_sel, int(first[-1]))
    tell = progress(paths.size) if progress is not None else None
    for lo, hi in _batches(paths, out.n_defaults):
        batch = paths[lo:hi]
        offsets, loans, losses = default_losses(spec.plan, spec.key, batch, out.n_defaults[batch], lanes)
        coefficients = np.stack([np.stack([sel.coefficients(x[batch, t], w[batch]) for sel in row], axis=1)
                                 for t, row in enumerate(chosen)], axis=1)
        accumulate(offsets, loans, losses, coefficients, group_of, *sums)
        if tell is not None:
            tell(batch.size)
    value, se = contributions(sums, a2, scale)
    return add_contributions(by, [labels for _, labels in groups], first, value, se, quantiles,
                             estimators.VAR_WINDOW, paths.size)
