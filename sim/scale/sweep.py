"""Sweeps: every point of a grid of scenario keys run with common random
numbers (one seed for every point), returned as one Dataset whose dimensions
are the swept keys (see `sim.scale.grid` for the grid's grammar)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from models.scenario import Scenario
from sim.engine.outputs import memory_budget, output_bytes
from sim.engine.run import RunSpec
from sim.results.dataset import build_dataset, dataset_of
from sim.scale.executor import session
from sim.scale.grid import combine_points, point_scenarios, sweep_axes
from sim.scale.runs import run_reduction, simulate_runs
from sim.scale.sweep_store import write_sweep


def run_sweep(
    scenario: Scenario,
    grid: dict[str, list[Any]] | None = None,
    *,
    n_paths: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
    block_size: int | None = None,
    scheduler: Any = None,
    progress: Callable[[int], None] | None = None,
    timeout: float | None = None,
    store: Path | str | None = None,
    memory_bytes: int | None = None,
    tail_target: float | None = None,
) -> xr.Dataset:
    """Run every point of the grid with the same seed (kind "sweep").

    Parameters
    ----------
    scenario : Scenario
        The base scenario; its [sweep.grid] gives the axes.
    grid : dict, optional
        {dotted key: [values]} replacing or adding axes (`sharing` takes
        names of [sweep.sharing] options).
    n_paths, seed, threads, block_size, scheduler, progress, timeout, tail_target :
        As `sim.run`, for every point (under importance sampling each point
        chooses its own sampling measure).
    store : path, optional
        A path that does not exist yet: each point is written to its own
        region of a zarr store there as soon as it is done, and the Dataset
        returned reads from the store (see `sim.scale.sweep_store`).
    memory_bytes : int, optional
        On Dask, points run in waves whose per-path arrays fit in this
        (default the scenario's `simulation.memory_gib`); each point is
        reduced to its (small) Dataset of estimates as soon as its wave is
        in. In process, one point at a time; a point whose per-path arrays
        alone exceed its budget streams (`sim.run`).

    Returns
    -------
    xarray.Dataset
        Dims: the swept keys' short names (`pool_size`, `sharing`) and a
        run's dims; identical in process and on Dask.
    """
    axes = sweep_axes(scenario, grid or {})
    points = point_scenarios(scenario, axes)
    seed = scenario.simulation.seed if seed is None else int(seed)

    def completed_points():
        with session(scheduler) as client:
            specs: dict[int, RunSpec] = {}
            wave = 1
            if client is not None:
                specs = {i: _spec(pt, n_paths, seed, block_size, tail_target) for i, pt in enumerate(points)}
                per_point = max(output_bytes(s.n_periods, s.n_paths) for s in specs.values())
                budget = memory_bytes or memory_budget(scenario.simulation.memory_gib)
                wave = max(1, int(budget // per_point))
            for first in range(0, len(points), wave):
                batch = range(first, min(len(points), first + wave))
                todo = [specs.get(i) or _spec(points[i], n_paths, seed, block_size, tail_target)
                        for i in batch]
                for i, spec in zip(batch, todo):  # past their memory budget the paths stream
                    if spec.streamed:
                        red, _ = run_reduction(spec, np.asarray(points[i].simulation.quantiles, float),
                                               threads=threads, scheduler=client, progress=progress,
                                               timeout=timeout)
                        yield i, dataset_of(red, spec.plan, points[i], seed=spec.seed, method=spec.method)
                held = [(i, spec) for i, spec in zip(batch, todo) if not spec.streamed]
                outs = simulate_runs([spec for _, spec in held], threads=threads, scheduler=client,
                                     progress=progress, timeout=timeout) if held else []
                for (i, spec), out in zip(held, outs):
                    yield i, build_dataset(out, spec.plan, points[i], seed=spec.seed, method=spec.method)
                del outs  # the wave's per-path arrays

    return collect_points(scenario, axes, points, completed_points(), store)


def _spec(point: Scenario, n_paths: int | None, seed: int, block_size: int | None,
          tail_target: float | None) -> RunSpec:
    return RunSpec.resolve(point, n_paths=n_paths, seed=seed, block_size=block_size, tail_target=tail_target)


def collect_points(scenario: Scenario, axes: dict[str, list[Any]], points: list[Scenario],
                   results: Iterable[tuple[int, xr.Dataset]], store: Path | str | None = None) -> xr.Dataset:
    """The sweep's Dataset from its points' (index, Dataset) pairs, in any
    order: combined in memory, or written one by one to a zarr store at
    `store` (sim.scale.sweep_store.write_sweep)."""
    if store is None:
        by_index = dict(results)
        return combine_points(scenario, axes, [by_index[i] for i in range(len(points))])
    return write_sweep(store, scenario, axes, points, results)
