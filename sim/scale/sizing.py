"""Pool sizing from one run: the smallest initial pool that runs dry with
probability at most a target, for a scenario or every point of a grid.

A path's required pool R is the smallest initial pool that never runs dry
on it (`sim.engine.waterfall`), so P(runs dry | pool x) = P(R > x) for every
x, and the smallest pool meeting a target t is the (1 - t) quantile of R:
the Dataset's `required_pool_quantile` at that level, with its standard
error, and the whole curve `pool_dry_by_size`. With `simulation.tail =
"pool_dry"` the paths are importance-sampled towards R passing that quantile.
"""

from __future__ import annotations

from typing import Any

import xarray as xr

from models.portfolio import Portfolio
from models.scenario import Scenario, scenario_from_mapping
from sim.scale.runs import Progress, run
from sim.scale.sweep import run_sweep


def sizing_scenario(scenario: Scenario, target: float, tail: str | None = None) -> Scenario:
    """The scenario with the level 1 - `target` among its quantiles (and
    `simulation.tail` set to `tail` when given)."""
    if not 0.0 < target < 1.0:
        raise ValueError(f"target must be a probability in (0, 1), got {target!r}")
    raw = scenario.model_dump(mode="python")
    sim = raw["simulation"]
    sim["quantiles"] = sorted({*sim["quantiles"], 1.0 - target})
    if tail is not None:
        sim["tail"] = tail
    sized = scenario_from_mapping(raw, source=scenario.source)
    sized._source = scenario.source
    return sized


def size_pool(
    scenario: Scenario,
    *,
    target: float,
    n_paths: int | None = None,
    seed: int | None = None,
    grid: dict[str, list[Any]] | None = None,
    threads: int | None = None,
    block_size: int | None = None,
    method: str | None = None,
    portfolio: Portfolio | None = None,
    scheduler: Any = None,
    progress: Progress | None = None,
) -> xr.Dataset:
    """The smallest pool that runs dry with probability at most `target`.

    Parameters
    ----------
    scenario : Scenario
        A validated scenario; its `simulation.tail` ("off" or "pool_dry")
        says whether to importance-sample.
    target : float
        The largest acceptable probability that the pool runs dry, in (0, 1).
    grid : dict, optional
        {dotted key: [values]}: size the pool at every point of this grid
        (a sweep, e.g. {"default.rho_systematic": [0.12, 0.2]}).
    n_paths, seed, threads, block_size, method, portfolio, scheduler, progress :
        As `sim.run` (`method` and `portfolio` only without a grid).

    Returns
    -------
    xarray.Dataset
        A run's (or a sweep's) Dataset whose quantiles include 1 - target;
        `ds.riskpool.required_pool()` reads the answer and its SE, attrs
        `sizing_target` holds the target.
    """
    sized = sizing_scenario(scenario, target)
    tail_target = target if sized.simulation.tail != "off" else None
    if grid:
        ds = run_sweep(sized, grid, n_paths=n_paths, seed=seed, threads=threads, block_size=block_size,
                       scheduler=scheduler, progress=progress, tail_target=tail_target)
    else:
        ds = run(sized, n_paths=n_paths, seed=seed, threads=threads, block_size=block_size, method=method,
                 portfolio=portfolio, scheduler=scheduler, progress=progress, tail_target=tail_target)
    ds.attrs["sizing_target"] = float(target)
    return ds
