"""Monte Carlo runs and sweeps on a Dask cluster, bit-identical to `sim.run`.

Every path is a pure function of (run key, path index) and `sim.run` keeps
per-path arrays, concatenated in path order, that `sim.results.build_dataset`
summarises afterwards. So a run here computes the same per-path arrays block
by block on Dask workers, places each block at its rows (block order, however
the blocks completed) and calls `build_dataset`: the Dataset is identical to
`sim.run(scenario, n_paths, seed, ...)` for any block size, worker count,
completion order or number of retries.

    plan    = compile_plan(scenario, portfolio, method)          # once, locally
    [plan]  = client.scatter([plan], broadcast=True, hash=False) # once per worker
    blocks  = [submit(_block, plan, key, lo, hi - lo, retries=2) for each block]
    out[lo:hi] = result of each block, in the order they complete
    Dataset = build_dataset(out, plan, scenario, seed, method)

Which cluster (`client_for(scheduler)`):

- ``"local"``: a `LocalCluster` started for the call and closed after it: one
  worker process per usable CPU, one thread each, ``NUMBA_NUM_THREADS=1`` in
  the workers' environment;
- ``"env"``: the scheduler at ``$DASK_SCHEDULER_ADDRESS`` (an error if unset);
- any other string: a scheduler address (``tcp://host:8786``);
- a `distributed.Client` (used as is, not closed) or a cluster object with a
  ``scheduler_address`` (a client is opened on it and closed after; the
  cluster is left running).

`resolve_scheduler(option)` is the rule for command lines: an explicit option
wins, else ``$DASK_SCHEDULER_ADDRESS`` if set, else None (run in-process with
`sim.run`). Remote workers need riskpool (this package) installed.

Blocks are retry-safe: a task is a pure function of its inputs, so a worker
lost mid-run costs only the re-run of its blocks (results identical), and a
block that raises is retried twice (``retries=2``). The plan is scattered with
``broadcast=True``: if every worker that holds it is lost at once it cannot be
recomputed, and the run fails with Dask's lost-data error. It gets a random
key (``hash=False``), not one hashed from its content: a run right after an
identical one would otherwise reuse the key while the scheduler is still
forgetting the earlier copy, and lose it ("Key lost during replication").
Ctrl-C cancels the run's futures and re-raises. Nothing is written to disk here.

Dask is optional: ``pip install riskpool[dask]``; this module imports without it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from models.portfolio import Portfolio
from models.scenario import Scenario
from sim.engine import PathOutputs, allocate_outputs, prepare_run, run_key, simulate_block
from sim.plan import Plan
from sim.results import build_dataset

INSTALL_HINT = "Dask is needed for distributed runs: pip install riskpool[dask]"
ENV_ADDRESS = "DASK_SCHEDULER_ADDRESS"


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - exercised with a patched import
        raise RuntimeError(f"{INSTALL_HINT} ({exc})") from exc
    return distributed


def resolve_scheduler(option: str | None) -> str | None:
    """The scheduler a command line asked for: `option` if given, else
    $DASK_SCHEDULER_ADDRESS if set, else None (run in-process)."""
    if option:
        return option
    return os.environ.get(ENV_ADDRESS) or None


def _local_workers() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def client_for(scheduler: Any) -> Iterator[Any]:
    """A `distributed.Client` for `scheduler` (see the module docstring);
    closes what it started."""
    if scheduler is None:
        raise ValueError(
            "scheduler: None means run in-process (sim.run); give 'local', 'env', "
            "a scheduler address or a distributed.Client"
        )
    distributed = _import_distributed()
    if isinstance(scheduler, distributed.Client):
        yield scheduler
        return
    if not isinstance(scheduler, str):
        address = getattr(scheduler, "scheduler_address", None)
        if not isinstance(address, str):
            raise TypeError(
                f"scheduler: expected 'local', 'env', an address, a Client or a cluster; "
                f"got {type(scheduler).__name__}"
            )
        with distributed.Client(scheduler) as client:
            yield client
        return
    if scheduler == "local":
        cluster = distributed.LocalCluster(
            n_workers=_local_workers(), threads_per_worker=1, processes=True,
            env={"NUMBA_NUM_THREADS": "1"},  # Nanny(env=...): set in each worker process
            dashboard_address=":0",  # any free port: a second local cluster must not clash
        )
        try:
            with distributed.Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    if scheduler == "env":
        address = os.environ.get(ENV_ADDRESS)
        if not address:
            raise ValueError(f"scheduler='env' but ${ENV_ADDRESS} is not set")
    else:
        address = scheduler
    with distributed.Client(address) as client:
        yield client


def _block(plan: Plan, key: np.uint64, first_path: int, n: int) -> PathOutputs:
    """Per-path outputs of paths first_path .. first_path + n - 1 (a pure
    function of its arguments: safe to retry anywhere)."""
    out = allocate_outputs(n, plan.horizon // plan.period_months)
    simulate_block(plan, key, first_path, out, 1)
    return out


def _segment_block(plan: Plan, key: np.uint64, segment: np.ndarray, n_segments: int,
                   first_path: int, n: int) -> np.ndarray:
    """Gross loss per segment of paths first_path .. first_path + n - 1."""
    from sim.segments import segment_gross

    return segment_gross(plan, key, segment, n_segments, first_path, n, threads=1)


def segment_gross_distributed(plan: Plan, key: np.uint64, segment: np.ndarray, n_segments: int,
                              n_paths: int, scheduler, block_size: int = 4096) -> np.ndarray:
    """`sim.segments.segment_gross` for paths 0 .. n_paths - 1, one task per block
    of paths, concatenated in path order: identical to the in-process result."""
    with client_for(scheduler) as client:
        [plan_future] = client.scatter([plan], broadcast=True, hash=False)
        nonce = uuid.uuid4().hex
        futures = [
            client.submit(_segment_block, plan_future, key, segment, n_segments, lo,
                          min(block_size, n_paths - lo), key=f"riskpool-segments-{nonce}-{i}", retries=2)
            for i, lo in enumerate(range(0, n_paths, block_size))
        ]
        try:
            parts = client.gather(futures)
        except BaseException:
            client.cancel(futures, force=True)
            raise
        finally:
            plan_future.release()
    return np.concatenate(parts, axis=0)


class _Job:
    """One run's blocks: submitted futures and the per-path arrays they fill."""

    def __init__(self, client, plan: Plan, n_paths: int, seed: int, block_size: int, tag: str):
        from dask.base import tokenize

        self.plan = plan
        self.n_paths = n_paths
        self.seed = seed
        self.out = allocate_outputs(n_paths, plan.horizon // plan.period_months)
        key = run_key(seed)
        [plan_future] = client.scatter([plan], broadcast=True, hash=False)
        # A nonce per run: a new run must never share task keys with an earlier,
        # possibly still cancelling, run of the same arguments.
        token = tokenize(plan_future.key, int(key), n_paths, block_size, uuid.uuid4().hex)
        self.rows: dict[str, tuple[int, int]] = {}
        self.futures = []
        for i, lo in enumerate(range(0, n_paths, block_size)):
            hi = min(n_paths, lo + block_size)
            future = client.submit(
                _block, plan_future, key, lo, hi - lo,
                key=f"riskpool-block-{tag}-{token}-{i}", retries=2,
            )
            self.rows[future.key] = (lo, hi)
            self.futures.append(future)
        self.plan_future = plan_future

    def place(self, key: str, result) -> int:
        lo, hi = self.rows[key]
        if len(result) != len(self.out) or result[0].shape[0] != hi - lo:
            raise RuntimeError(f"block {key}: expected {hi - lo} paths, got a malformed result")
        for dst, src in zip(self.out, result):
            dst[lo:hi] = src
        return hi - lo


def _run_jobs(client, specs, progress, timeout: float | None) -> list[_Job]:
    """Submit every (plan, n_paths, seed, block_size, tag) run's blocks, then
    gather each block into its run's arrays as blocks complete. On any error,
    timeout or Ctrl-C, cancel everything submitted and re-raise."""
    distributed = _import_distributed()
    jobs: list[_Job] = []
    try:
        for plan, n_paths, seed, block_size, tag in specs:
            jobs.append(_Job(client, plan, n_paths, seed, block_size, tag))
        owner = {f.key: job for job in jobs for f in job.futures}
        futures = [f for job in jobs for f in job.futures]
        for future, result in distributed.as_completed(futures, with_results=True, timeout=timeout):
            if future.status != "finished" or isinstance(result, BaseException):
                raise RuntimeError(f"block {future.key} did not finish ({future.status}): {result!r}")
            n = owner[future.key].place(future.key, result)
            future.release()
            if progress is not None:
                progress(n)
    except BaseException:
        client.cancel([f for job in jobs for f in job.futures], force=True)
        raise
    finally:
        for job in jobs:
            job.plan_future.release()
    return jobs


def run_distributed(
    scenario: Scenario,
    n_paths: int | None = None,
    seed: int | None = None,
    block_size: int | None = None,
    method: str | None = None,
    scheduler: Any = "local",
    progress: Callable[[int], None] | None = None,
    portfolio: Portfolio | None = None,
    *,
    timeout: float | None = None,
) -> xr.Dataset:
    """`sim.run` on a Dask cluster: the same Dataset, bit for bit.

    Arguments as `sim.run` (`threads` has no meaning here: one thread per
    task); `scheduler` as `client_for`; `progress(n)` is called with each
    block's path count as blocks complete; `timeout` (seconds, whole run)
    raises `TimeoutError` and cancels the run instead of waiting forever.
    """
    plan, n_paths, seed, block_size, method = prepare_run(
        scenario, n_paths, seed, block_size, method, portfolio)
    with client_for(scheduler) as client:
        [job] = _run_jobs(client, [(plan, n_paths, seed, block_size, "run")], progress, timeout)
    return build_dataset(job.out, plan, scenario, seed=seed, method=method)


def sweep_distributed(
    scenario: Scenario,
    grid: dict[str, list[Any]] | None = None,
    n_paths: int | None = None,
    seed: int | None = None,
    scheduler: Any = "local",
    progress: Callable[[int], None] | None = None,
    block_size: int | None = None,
    *,
    timeout: float | None = None,
    memory_bytes: int = 2**30,
    store: Path | str | None = None,
) -> xr.Dataset:
    """`sim.sweep.run_sweep` on a Dask cluster (common random numbers), identical
    to `run_sweep` with the same arguments. Points run in waves whose per-path
    arrays fit in `memory_bytes`; each point is reduced to its (small) Dataset
    of estimates as soon as its wave is in, so the sweep's size is bounded by
    the estimates, not by points x paths. With `store`, each point's estimates
    go to their own region of a zarr store as their wave completes, and the
    Dataset returned reads from the store (see sim.sweep_store)."""
    from sim import sweep

    axes = sweep.sweep_axes(scenario, grid or {})
    points = sweep.point_scenarios(scenario, axes)
    seed = scenario.simulation.seed if seed is None else int(seed)
    prepared = [prepare_run(pt, n_paths, seed, block_size, None, None) for pt in points]
    per_point = max(_output_bytes(plan, n) for plan, n, *_ in prepared)
    wave = max(1, int(memory_bytes // per_point))

    def completed_points():
        with client_for(scheduler) as client:
            for first in range(0, len(points), wave):
                batch = range(first, min(len(points), first + wave))
                specs = [(*prepared[i][:4], f"sweep{i}") for i in batch]
                jobs = _run_jobs(client, specs, progress, timeout)
                for job, i in zip(jobs, batch):
                    plan, _, s, _, method = prepared[i]
                    yield i, build_dataset(job.out, plan, points[i], seed=s, method=method)
                del jobs  # the wave's per-path arrays

    return sweep.collect_points(scenario, axes, points, completed_points(), store)


def _output_bytes(plan: Plan, n_paths: int) -> int:
    """Memory of one run's per-path outputs."""
    return sum(a.nbytes for a in allocate_outputs(1, plan.horizon // plan.period_months)) * n_paths
