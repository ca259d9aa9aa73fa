"""Monte Carlo engine: paths in blocks, each path a pure function of
(run key, path index), per-path results written to arrays and summarised
afterwards in path order, so any thread count or block size gives
bit-identical results.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import xarray as xr
from numba import njit

from models.portfolio import Portfolio
from models.scenario import PARTIES, Scenario
from sim.kernels import (
    draw_factors,
    draw_plan,
    draw_scratch,
    fill_exposures,
    needs_months,
    random_recovery,
    sample_defaults_sparse,
    sample_path_losses,
)
from sim.plan import Plan, build_portfolio, compile_plan
from sim.results import build_dataset
from sim.waterfall import N_EVENT_TYPES, settle_path

PathOutputs = namedtuple(
    "PathOutputs",
    [
        "gross_loss", "party_loss", "n_defaults", "defaulted_amount", "credit", "n_originated",
        "stop_month", "exhausted", "subsidy", "compensation", "reward", "fiscal_cost",
        "bank_income", "systematic", "period_defaults", "pool_balance", "guarantor_capital",
    ],
)
# Paths per unit of work handed to a thread lane.
CHUNK = 64


def allocate_outputs(n_paths: int, n_periods: int) -> PathOutputs:
    """Per-path result arrays (memory ~ paths x (parties + 3 periods) x 8 bytes)."""
    f = lambda *shape: np.zeros(shape, dtype=np.float64)  # noqa: E731
    return PathOutputs(
        gross_loss=f(n_paths), party_loss=f(n_paths, len(PARTIES)),
        n_defaults=np.zeros(n_paths, np.int64), defaulted_amount=f(n_paths), credit=f(n_paths),
        n_originated=f(n_paths), stop_month=np.zeros(n_paths, np.int64),
        exhausted=np.zeros(n_paths, np.bool_), subsidy=f(n_paths), compensation=f(n_paths),
        reward=f(n_paths), fiscal_cost=f(n_paths), bank_income=f(n_paths), systematic=f(n_paths),
        period_defaults=np.zeros((n_paths, n_periods), np.int64),
        pool_balance=f(n_paths, n_periods), guarantor_capital=f(n_paths, n_periods),
    )


def slice_outputs(out: PathOutputs, lo: int, hi: int) -> PathOutputs:
    """Views of rows lo:hi of every array (a block)."""
    return PathOutputs(*(a[lo:hi] for a in out))


@njit(cache=True)
def _settle_given(plan, loans, months, recoveries, out):
    n = loans.size
    ead = np.zeros(max(n, 1))
    fill_exposures(draw_plan(plan), n, loans, months, ead)
    settle_path(plan, 0, n, loans, months, ead, recoveries, np.zeros((max(n, 1), out.party_loss.shape[1])),
                np.zeros(max(n, 1) * N_EVENT_TYPES, np.int64), np.zeros(plan.n_event_years),
                np.full(plan.amount.size, -1, np.int64), np.zeros(max(plan.n_firms, 1)), out)


def settle_given_defaults(plan: Plan, loans, months, recoveries) -> PathOutputs:
    """Settle one path whose defaults are given: portfolio rows of the loans,
    calendar default months (start < month <= start + life) and recovery
    fractions. For hand-worked waterfalls and cross-checks."""
    loans = np.argsort(plan.loan_order)[np.asarray(loans, np.int64)]
    months = np.asarray(months, np.int64)
    recoveries = np.asarray(recoveries, float)
    if not (loans.size == months.size == recoveries.size):
        raise ValueError("loans, months and recoveries must have the same length")
    bad = (months <= plan.start[loans]) | (months > plan.start[loans] + plan.life[loans])
    if bad.any():
        raise ValueError(f"default months outside the loans' lives: {months[bad].tolist()}")
    out = allocate_outputs(1, plan.horizon // plan.period_months)
    _settle_given(plan, loans, months, recoveries, out)
    return out


def run_lanes(lane_kernel, n_lanes: int, n_paths: int, *args) -> None:
    """Call `lane_kernel(*args, lane, n_lanes)` for each lane, each on its own
    thread (the kernels release the GIL). Lane `lane` takes every n_lanes-th
    chunk of CHUNK paths from chunk `lane`; a path's result does not depend on
    which lane computes it. Python threads rather than numba's parallel loops:
    the same speed-up, and a cold start without compiling a parfor."""
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
def _simulate_lane(plan, key, first_path, out, lane, n_lanes):
    n_paths = out.gross_loss.size
    n_loans = plan.amount.size
    scratch = draw_scratch(plan)
    paid = np.empty((n_loans, out.party_loss.shape[1]))
    keys = np.empty(n_loans * N_EVENT_TYPES, np.int64)
    year_guarantor = np.empty(plan.n_event_years)
    loan_default_month = np.full(n_loans, -1, np.int64)
    firm_subsidy = np.zeros(max(plan.n_firms, 1))
    d = draw_plan(plan)
    for c in range(lane, (n_paths + CHUNK - 1) // CHUNK, n_lanes):
        for p in range(c * CHUNK, min(n_paths, (c + 1) * CHUNK)):
            n, z = sample_path_losses(d, key, first_path + p, True, scratch)
            out.systematic[p] = z
            settle_path(plan, p, n, scratch.loan, scratch.month, scratch.ead, scratch.rec, paid, keys,
                        year_guarantor, loan_default_month, firm_subsidy, out)


def simulate_block(plan: Plan, key: np.uint64, first_path: int, out: PathOutputs, n_lanes: int) -> None:
    """Simulate paths first_path .. first_path + len(out) - 1 into `out` rows,
    on `n_lanes` threads."""
    run_lanes(_simulate_lane, n_lanes, out.gross_loss.size, plan, key, first_path, out)


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
                n, _ = sample_path_losses(d, key, path, want_month, scratch)
                for k in range(n):
                    out[p, segment[loans[k]]] += scratch.ead[k] * (1.0 - scratch.rec[k])
                continue
            z, sqrt_w = draw_factors(key, path, d.n_sectors, d.load_sector, d.t_dof, sector_factor)
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


def run_key(seed: int) -> np.uint64:
    """64-bit run key derived from the seed with NumPy's SeedSequence."""
    return np.random.SeedSequence(int(seed)).generate_state(1, dtype=np.uint64)[0]


def _blocks(n_paths: int, block_size: int, progress: Callable[[int], None] | None):
    """(lo, hi) of each block of paths in order; `progress(hi - lo)` once a block is done."""
    for lo in range(0, n_paths, block_size):
        hi = min(n_paths, lo + block_size)
        yield lo, hi
        if progress is not None:
            progress(hi - lo)


def simulate_paths(
    plan: Plan,
    n_paths: int,
    seed: int,
    block_size: int,
    threads: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> PathOutputs:
    """Run all paths block by block; `progress(n)` is called after each block."""
    out = allocate_outputs(n_paths, plan.horizon // plan.period_months)
    key = run_key(seed)
    lanes = lanes_for(threads)
    for lo, hi in _blocks(n_paths, block_size, progress):
        simulate_block(plan, key, lo, slice_outputs(out, lo, hi), lanes)
    return out


def simulate_losses(
    plan: Plan,
    n_paths: int,
    seed: int,
    block_size: int = 65_536,
    threads: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Loss-only run: the per-path gross loss (yuan) that `simulate_paths` gives
    with the same plan and seed (the same defaults, so equal path for path up
    to the rounding of a sum taken in another order), without settling the
    waterfall; default months are drawn only when exposures amortise."""
    out = np.zeros((n_paths, 1))
    key = run_key(seed)
    lanes = lanes_for(threads)
    segment = np.zeros(plan.amount.size, np.int64)
    for lo, hi in _blocks(n_paths, block_size, progress):
        loss_block(plan, key, lo, segment, out[lo:hi], lanes)
    return out[:, 0]


def prepare_run(scenario: Scenario, n_paths: int | None, seed: int | None, block_size: int | None,
                method: str | None, portfolio: Portfolio | None) -> tuple[Plan, int, int, int, str]:
    """Resolve a run's arguments against the scenario's [simulation] settings,
    check them, and compile the plan."""
    sim = scenario.simulation
    n_paths = sim.n_paths if n_paths is None else int(n_paths)
    seed = sim.seed if seed is None else int(seed)
    block_size = sim.block_size if block_size is None else int(block_size)
    if n_paths < 1 or block_size < 1:
        raise ValueError(f"n_paths and block_size must be >= 1 (got {n_paths}, {block_size})")
    method = sim.method if method is None else method
    if method not in ("sparse", "dense"):
        raise ValueError(f"method must be 'sparse' or 'dense' (got {method!r})")
    portfolio = build_portfolio(scenario) if portfolio is None else portfolio
    return compile_plan(scenario, portfolio, method), n_paths, seed, block_size, method


def run(
    scenario: Scenario,
    n_paths: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
    block_size: int | None = None,
    method: str | None = None,
    progress: Callable[[int], None] | None = None,
    portfolio: Portfolio | None = None,
) -> xr.Dataset:
    """Simulate a scenario and return its labelled results (see sim.results).

    `n_paths`, `seed`, `block_size` and `method` default to the scenario's
    [simulation] settings; `threads` to numba's default; `portfolio` to the
    scenario's own (generated or loaded from its file).
    """
    plan, n_paths, seed, block_size, method = prepare_run(scenario, n_paths, seed, block_size, method, portfolio)
    out = simulate_paths(plan, n_paths, seed, block_size, threads, progress)
    return build_dataset(out, plan, scenario, seed=seed, method=method)


def run_losses(
    scenario: Scenario,
    n_paths: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
    method: str | None = None,
    portfolio: Portfolio | None = None,
) -> np.ndarray:
    """Loss-only run of a scenario: the gross loss (yuan) of each path, with the
    same defaults, exposures and recoveries as `run` and the same seed, without
    settling who pays. Every loan of the book counts: a stop rule, which only
    the waterfall applies, is not (with none, this is `run`'s gross_loss path
    for path, up to summation rounding). Arguments as `run`."""
    plan, n_paths, seed, _, _ = prepare_run(scenario, n_paths, seed, None, method, portfolio)
    return simulate_losses(plan, n_paths, seed, threads=threads)

