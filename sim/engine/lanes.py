"""Thread lanes: the numba kernels that simulate the paths of one block, each
lane taking every n_lanes-th chunk of CHUNK paths, and the Python calls that
run them on threads (the kernels release the GIL). A path's result does not
depend on which lane computes it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit

from sim.engine.outputs import PathOutputs, allocate_outputs
from sim.engine.plan import Plan
from sim.engine.sampling import (
    draw_factors,
    draw_plan,
    draw_scratch,
    needs_months,
    random_recovery,
    sample_defaults_sparse,
    sample_path_losses,
)
from sim.engine.waterfall import settle_scratch, settle_with_required_pool

# Paths per unit of work handed to a thread lane.
CHUNK = 64


def run_lanes(lane_kernel, n_lanes: int, n_paths: int, *args) -> None:
    """Call `lane_kernel(*args, lane, n_lanes)` for each lane, each on its own
    thread. Python threads rather than numba's parallel loops: the same
    speed-up, and a cold start without compiling a parfor."""
    n_lanes = max(1, min(int(n_lanes), (n_paths + CHUNK - 1) // CHUNK))
    if n_lanes == 1:
        lane_kernel(*args, 0, 1)
        return
    with ThreadPoolExecutor(n_lanes, thread_name_prefix="riskpool-lane") as pool:
        for future in [pool.submit(lane_kernel, *args, lane, n_lanes) for lane in range(n_lanes)]:
            future.result()


def default_threads() -> int:
    """Threads used when a run does not say: NUMBA_NUM_THREADS (all CPUs unless set)."""
    return int(numba.config.NUMBA_NUM_THREADS)


def lanes_for(threads: int | None) -> int:
    """Thread lanes for a run asking for `threads`: at most NUMBA_NUM_THREADS,
    since each lane holds loan-sized scratch and more lanes than CPUs only
    oversubscribe them."""
    return default_threads() if threads is None else max(1, min(int(threads), default_threads()))


@njit(cache=True, nogil=True)
def _simulate_lane(plan, key, first_path, out, spare, lane, n_lanes):
    n_paths = out.gross_loss.size
    scratch = draw_scratch(plan)
    paid, keys, k_of_row, year_guarantor, loan_default_month, firm_subsidy = settle_scratch(
        plan, out.party_loss.shape[1])
    d = draw_plan(plan)
    for c in range(lane, (n_paths + CHUNK - 1) // CHUNK, n_lanes):
        for p in range(c * CHUNK, min(n_paths, (c + 1) * CHUNK)):
            n, z, log_ratio = sample_path_losses(d, key, first_path + p, True, scratch)
            out.systematic[p] = z
            out.weight[p] = np.exp(log_ratio)
            settle_with_required_pool(plan, p, n, scratch.loan, scratch.month, scratch.ead, scratch.rec,
                                      paid, keys, k_of_row, year_guarantor, loan_default_month, firm_subsidy,
                                      out, spare, lane)


def simulate_block(plan: Plan, key: np.uint64, first_path: int, out: PathOutputs, n_lanes: int) -> None:
    """Simulate paths first_path .. first_path + len(out) - 1 into `out` rows,
    on `n_lanes` threads."""
    spare = allocate_outputs(max(1, int(n_lanes)), out.pool_balance.shape[1])  # a row per lane
    run_lanes(_simulate_lane, n_lanes, out.gross_loss.size, plan, key, first_path, out, spare)


@njit(cache=True, nogil=True)
def _loss_lane(plan, key, first_path, want_month, segment, out, lane, n_lanes):
    n_paths, n_segments = out.shape
    scratch = draw_scratch(plan)
    d = draw_plan(plan)
    # A sparse plan with bullet exposures and fixed recoveries: a default's
    # loss is the loan's own constant, so a path needs its defaults only, from
    # the sparse sampler called here directly (a loop that also holds the
    # dense sampler's code runs W1 ~3 % slower).
    fixed = d.sparse and not want_month
    for p in range(d.recovery_sd.size):
        fixed &= not random_recovery(d.recovery_sd, d.recovery_downturn, p)
    fixed_loss = d.amount * (1.0 - d.recovery_mean)
    sector_factor, loans = scratch.sector_factor, scratch.loan
    for c in range(lane, (n_paths + CHUNK - 1) // CHUNK, n_lanes):
        for p in range(c * CHUNK, min(n_paths, (c + 1) * CHUNK)):
            path = first_path + p
            if not fixed:
                n, _, _ = sample_path_losses(d, key, path, want_month, scratch)
                for k in range(n):
                    out[p, segment[loans[k]]] += scratch.ead[k] * (1.0 - scratch.rec[k])
                continue
            z, sqrt_w, _ = draw_factors(key, path, d.n_sectors, d.load_sector, d.t_dof, d.tail, sector_factor)
            n = sample_defaults_sparse(d, key, path, z, sector_factor, sqrt_w, False, loans, scratch.month,
                                       scratch.batch)
            if n_segments == 1:  # a local sum: adding to out[p, 0] per default costs 0.2 us a W1 path
                total = 0.0
                for k in range(n):
                    total += fixed_loss[loans[k]]
                out[p, 0] += total
            else:
                for k in range(n):
                    out[p, segment[loans[k]]] += fixed_loss[loans[k]]


def loss_block(plan: Plan, key: np.uint64, first_path: int, segment: np.ndarray, out: np.ndarray,
               n_lanes: int) -> None:
    """Add to out[p, s] the gross loss (yuan: exposure at default less
    recovery) of segment s on path first_path + p, for every row p of `out`
    (zeros on entry); `segment` gives each plan loan's segment. The same
    defaults, exposures and recoveries as `simulate_block`, without the
    waterfall."""
    run_lanes(_loss_lane, n_lanes, out.shape[0], plan, key, first_path, needs_months(plan),
              np.ascontiguousarray(segment, np.int64), out)
