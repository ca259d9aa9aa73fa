"""Runs of a scenario over the block executor: in process (blocks in order,
each on thread lanes) or on Dask (one task per block), with bit-identical
results, since every path is a pure function of (run key, path index) and
each block is placed at its own rows, in path order, whatever order the
blocks completed in."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import xarray as xr

from models.portfolio import GROUPINGS, Portfolio
from models.scenario import PARTIES, Scenario
from sim.engine.lanes import lanes_for
from sim.engine.outputs import (
    PathOutputs,
    allocate_outputs,
    check_fits,
    chunk_bytes,
    output_bytes,
    place_outputs,
    streaming_bytes,
)
from sim.engine.plan import build_portfolio
from sim.engine.run import RunSpec, path_block, segment_block
from sim.results.dataset import curve_levels, dataset_of, path_values, pool_grid
from sim.results.reduction import RunReduction, expected_kept, reduce_outputs, reduce_paths
from sim.risk.summary import CHUNK
from sim.scale.contributions import ProgressFactory, risk_contributions
from sim.scale.executor import map_blocks, session

Progress = Callable[[int], None]
# Paths per block of a loss-only run when none is asked for: a loss-only path costs ~1 us, so the
# scenario's block size (sized for the waterfall) would spend a visible share starting thread lanes.
LOSS_BLOCK = 65_536


def _spec_block(plans: tuple, j: int, key: np.uint64, first_path: int, n: int, n_lanes: int) -> PathOutputs:
    """Block of run j of a batch of runs (their plans shared once per worker)."""
    return path_block(plans[j], key, first_path, n, n_lanes)


def simulate_runs(specs: Sequence[RunSpec], *, threads: int | None = None, scheduler: Any = None,
                  progress: Progress | None = None, timeout: float | None = None) -> list[PathOutputs]:
    """Per-path outputs of each run, their blocks run together (on Dask: all
    submitted at once); `progress(n)` after each block of n paths."""
    budgets = [s.memory_bytes for s in specs if s.memory_bytes is not None]
    if budgets:  # runs held at once (a sweep's wave) share the smallest budget
        check_fits(sum(output_bytes(s.n_periods, s.n_paths) for s in specs), min(budgets),
                   f"{len(specs)} runs of {sum(s.n_paths for s in specs):,} paths")
    outs = [allocate_outputs(s.n_paths, s.n_periods) for s in specs]
    lanes = lanes_for(threads) if scheduler is None else 1  # one thread per Dask task
    tasks = [(j, s.key, lo, n, lanes) for j, s in enumerate(specs) for lo, n in s.blocks()]
    plans = tuple(s.plan for s in specs)
    for i, block in map_blocks(_spec_block, tasks, shared=plans, scheduler=scheduler, timeout=timeout,
                               name="riskpool-block"):
        j, _, lo, _, _ = tasks[i]
        n = place_outputs(outs[j], lo, block)
        if progress is not None:
            progress(n)
    return outs


def _streamed_chunks(spec: RunSpec, lanes: int, client: Any, timeout: float | None,
                     progress: Progress | None) -> Iterator[tuple[int, PathOutputs]]:
    """(first path, outputs) of every chunk of CHUNK paths in path order, simulated here (on thread
    lanes) or on Dask in waves that fit the memory budget, each wave's chunks handed on in order."""
    firsts = list(range(0, spec.n_paths, CHUNK))
    wave = _wave(spec, client)
    for start in range(0, len(firsts), wave):
        tasks = [(0, spec.key, lo, min(CHUNK, spec.n_paths - lo), lanes if client is None else 1)
                 for lo in firsts[start:start + wave]]
        done = dict(map_blocks(_spec_block, tasks, shared=(spec.plan,), scheduler=client, timeout=timeout,
                               name="riskpool-chunk"))
        for i, (_, _, lo, n, _) in enumerate(tasks):
            yield lo, done.pop(i)
            if progress is not None:
                progress(n)


def _wave(spec: RunSpec, scheduler: Any) -> int:
    """Chunks a streamed run has in flight at once: one in process, on Dask as many as an eighth of
    the memory budget holds."""
    return 1 if scheduler is None else max(1, spec.memory_bytes // (8 * chunk_bytes(spec.n_periods)))


def run_reduction(spec: RunSpec, quantiles: np.ndarray, *, threads: int | None = None, scheduler: Any = None,
                  progress: Progress | None = None, redraw_progress: ProgressFactory | None = None,
                  timeout: float | None = None) -> tuple[RunReduction, PathOutputs | None]:
    """A run's reduction (`sim.results.reduction`), and its per-path outputs when they fit in the
    memory budget (None when the run streamed: its paths simulated once for the sums, then again
    for each pass that keeps values for the order statistics; `redraw_progress(n_paths)` gives the
    callable told each chunk of such a pass)."""
    grid = pool_grid(spec.plan)
    levels = curve_levels(spec.n_paths)
    if not spec.streamed:
        [out] = simulate_runs([spec], threads=threads, scheduler=scheduler, progress=progress,
                              timeout=timeout)
        return reduce_outputs(out, spec.plan, quantiles, levels, grid), out
    in_flight = 0 if scheduler is None else _wave(spec, scheduler) * chunk_bytes(spec.n_periods)
    reserved = streaming_bytes(spec.n_periods) + in_flight
    kept = expected_kept(spec.n_paths, quantiles, levels, len(PARTIES), spec.n_periods)
    check_fits(reserved + RunReduction.kept_bytes(kept), spec.memory_bytes,
               f"{spec.n_paths:,} paths streamed (with the values expected to be kept for the order "
               "statistics)")
    lanes = lanes_for(threads)
    with session(scheduler) as client:
        tell = [progress]

        def again(n_kept: int) -> None:
            tell[0] = None if redraw_progress is None else redraw_progress(spec.n_paths)

        def chunks() -> Iterator[tuple[int, PathOutputs]]:
            return _streamed_chunks(spec, lanes, client, timeout, tell[0])
        return reduce_paths(spec.plan, spec.n_paths, quantiles, levels, grid, chunks,
                            kept_budget=spec.memory_bytes - reserved, passes=again), None


def run(
    scenario: Scenario,
    *,
    n_paths: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
    block_size: int | None = None,
    method: str | None = None,
    portfolio: Portfolio | None = None,
    scheduler: Any = None,
    progress: Progress | None = None,
    timeout: float | None = None,
    tail_target: float | None = None,
    contributions: Sequence[str] = (),
    contributions_progress: ProgressFactory | None = None,
    redraw_progress: ProgressFactory | None = None,
) -> xr.Dataset:
    """Simulate a scenario and return its labelled results (kind "run").

    Parameters
    ----------
    scenario : Scenario
        A validated scenario (`sim.load_scenario`).
    n_paths, seed, block_size, method : optional
        Monte Carlo paths, seed, paths per block and sampler ("sparse" or
        "dense"); default the scenario's [simulation] settings.
    threads : int, optional
        Thread lanes in process (default NUMBA_NUM_THREADS); results do not
        depend on it.
    portfolio : Portfolio, optional
        The book to simulate; default the scenario's own (generated or read
        from its file).
    scheduler : optional
        None runs in process; "local", "env", an address or a
        `distributed.Client` runs the blocks on Dask (same results, bit for bit).
    progress : callable, optional
        Called with each finished block's path count.
    timeout : float, optional
        Seconds for the whole run on Dask; `TimeoutError` past it.
    tail_target : float, optional
        With a tail event in `simulation.tail` (importance sampling), aim
        the sampling at the event's score passing its (1 - tail_target)
        quantile rather than at the event itself (`sim.size` uses it).
    contributions : sequence of str, optional
        Groupings of the book (of "segment", "sector", "stage", "product",
        "loan") to add Euler risk contributions by: ES and VaR
        contributions of the gross loss and of each party's loss at the
        scenario's quantiles (`sim.scale.contributions`; the tail paths are
        drawn again in process, whatever the scheduler).
    contributions_progress : callable, optional
        Called with the number of paths drawn again for the contributions;
        returns the callable told each batch's path count.
    redraw_progress : callable, optional
        A run whose per-path results exceed `simulation.memory_gib` streams
        its paths and simulates them again for the order statistics: called
        with the path count of each such pass, it returns the callable told
        each chunk's path count.

    Returns
    -------
    xarray.Dataset
        Dims `party`, `quantile`, `period`, `level`, `pool_grid` (and `path`:
        per-path values for paired comparisons, up to 1e6 paths held in
        memory); the same numbers, bit for bit, streamed or not; money in
        yuan; every estimate with its standard error, weighted by the
        paths' likelihood ratios under importance sampling (read it with
        `ds.riskpool`).
    """
    unknown = sorted(set(contributions) - set(GROUPINGS))
    if unknown:
        raise ValueError(f"contributions by {', '.join(unknown)}: unknown; allowed: {', '.join(GROUPINGS)}")
    if contributions and portfolio is None:
        portfolio = build_portfolio(scenario)  # the same book for the run and its groups
    spec = RunSpec.resolve(scenario, n_paths=n_paths, seed=seed, block_size=block_size, method=method,
                           portfolio=portfolio, tail_target=tail_target)
    if contributions:  # their tail paths are chosen from the per-path losses held in memory
        check_fits(output_bytes(spec.n_periods, spec.n_paths), spec.memory_bytes,
                   f"{scenario.source}: risk contributions over {spec.n_paths:,} paths")
    red, out = run_reduction(spec, np.asarray(scenario.simulation.quantiles, float), threads=threads,
                             scheduler=scheduler, progress=progress, redraw_progress=redraw_progress,
                             timeout=timeout)
    ds = dataset_of(red, spec.plan, scenario, seed=spec.seed, method=spec.method)
    if out is None:
        return ds
    ds = ds.merge(path_values(out))
    if not contributions:
        return ds
    parts = risk_contributions(spec, out, portfolio, list(dict.fromkeys(contributions)),
                               ds["quantile"].values, scenario.optimize.score_bands, threads=threads,
                               progress=contributions_progress)
    merged = ds.merge(parts)
    merged.attrs = {**ds.attrs, **parts.attrs}
    return merged


def segment_losses_by_path(spec: RunSpec, segment: np.ndarray, n_segments: int, *, threads: int | None = None,
                           scheduler: Any = None, progress: Progress | None = None) -> np.ndarray:
    """Gross loss (yuan) of each path and segment, shape (paths, segments);
    `segment` gives each plan loan's segment. No waterfall."""
    out = np.zeros((spec.n_paths, n_segments))
    lanes = lanes_for(threads) if scheduler is None else 1
    segment = np.ascontiguousarray(segment, np.int64)
    tasks = [(spec.key, segment, n_segments, lo, n, lanes) for lo, n in spec.blocks()]
    for i, block in map_blocks(segment_block, tasks, shared=spec.plan, scheduler=scheduler,
                               name="riskpool-segments"):
        lo = tasks[i][3]
        out[lo:lo + block.shape[0]] = block
        if progress is not None:
            progress(block.shape[0])
    return out


def run_losses(
    scenario: Scenario,
    *,
    n_paths: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
    block_size: int | None = None,
    method: str | None = None,
    portfolio: Portfolio | None = None,
    scheduler: Any = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Loss-only run of a scenario: the gross loss (yuan) of each path.

    The same defaults, exposures and recoveries as `run` with the same seed
    (plain Monte Carlo: `simulation.tail` is not used), without settling
    who pays. Every loan of the book counts: a stop rule, which only the
    waterfall applies, is not (with none, this is `run`'s per-path gross
    loss, up to summation rounding).

    Parameters
    ----------
    As `run`; `block_size` defaults to 65 536 paths here (a loss-only path is cheap).

    Returns
    -------
    numpy.ndarray
        Shape (n_paths,), yuan.
    """
    spec = RunSpec.resolve(scenario, n_paths=n_paths, seed=seed, method=method, portfolio=portfolio,
                           block_size=LOSS_BLOCK if block_size is None else block_size, loss_only=True)
    segment = np.zeros(spec.plan.amount.size, np.int64)
    return segment_losses_by_path(spec, segment, 1, threads=threads, scheduler=scheduler,
                                  progress=progress)[:, 0]
