"""Chosen paths simulated again, loan by loan: what each of a path's defaults
cost each party. A path is a pure function of (run key, path index), so
paths picked after a first pass (those in a tail) are drawn again exactly,
and only they; this gives risk contributions without a loans x paths array.

A default k's net loss to party q is paid_k,q (1 - r_k), paid_k,q what q
paid on it (`sim.engine.waterfall`) and r_k its recovery fraction, which
goes back to every payer pro rata; its gross loss is EAD_k (1 - r_k). Over
a path's defaults these add up to the path's party and gross losses (to
rounding). Defaults of loans the stop rule kept from being made have none.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.engine.lanes import CHUNK, run_lanes
from sim.engine.outputs import allocate_outputs
from sim.engine.plan import Plan
from sim.engine.sampling import draw_plan, draw_scratch, sample_path_losses
from sim.engine.waterfall import settle_path, settle_scratch


@njit(cache=True, nogil=True)
def _default_losses_lane(plan, key, paths, offsets, loans, losses, spare, lane, n_lanes):
    scratch = draw_scratch(plan)
    n_parties = spare.party_loss.shape[1]
    paid, keys, k_of_row, year_guarantor, loan_default_month, firm_subsidy = settle_scratch(plan, n_parties)
    d = draw_plan(plan)
    for c in range(lane, (paths.size + CHUNK - 1) // CHUNK, n_lanes):
        for s in range(c * CHUNK, min(paths.size, (c + 1) * CHUNK)):
            n, _, _ = sample_path_losses(d, key, paths[s], True, scratch)
            spare.period_defaults[lane, :] = 0
            settle_path(plan, lane, n, scratch.loan, scratch.month, scratch.ead, scratch.rec, paid, keys,
                        k_of_row, year_guarantor, loan_default_month, firm_subsidy, spare, False)
            stop = spare.stop_month[lane]
            r = offsets[s]
            for k in range(n):
                i = scratch.loan[k]
                if stop >= 0 and plan.start[i] > stop:
                    continue  # never made: the waterfall skipped it
                if r == offsets[s + 1]:
                    raise RuntimeError("a path drawn again has more defaults than on the first pass")
                loans[r] = i
                kept = 1.0 - scratch.rec[k]
                losses[r, 0] = scratch.ead[k] * kept
                for q in range(paid.shape[1]):
                    losses[r, q + 1] = paid[k, q] * kept
                r += 1
            if r != offsets[s + 1]:
                raise RuntimeError("a path drawn again has fewer defaults than on the first pass")


def default_losses(plan: Plan, key: np.uint64, paths: np.ndarray, n_defaults: np.ndarray,
                   n_lanes: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The defaults of `paths` (indices, any order) drawn again: (offsets, loans, losses), path j's
    defaults at rows offsets[j]:offsets[j + 1]; loans are plan loan indices, losses (yuan) have the
    gross loss in column 0 and party q's net loss in column q + 1. `n_defaults` is each path's
    default count from the first pass (checked: a mismatch raises RuntimeError)."""
    paths = np.ascontiguousarray(paths, np.int64)
    offsets = np.zeros(paths.size + 1, np.int64)
    np.cumsum(np.asarray(n_defaults, np.int64), out=offsets[1:])
    loans = np.empty(offsets[-1], np.int64)
    losses = np.empty((offsets[-1], 1 + len(plan.shares[0])))
    spare = allocate_outputs(max(1, int(n_lanes)), plan.horizon // plan.period_months)
    run_lanes(_default_losses_lane, n_lanes, paths.size, plan, key, paths, offsets, loans, losses, spare)
    return offsets, loans, losses
