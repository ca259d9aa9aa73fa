"""A generic block executor: `map_blocks(fn, tasks, shared=...)` calls
`fn(shared, *task)` for every task, in process or on a Dask cluster, and
yields (task index, result) as they complete. It knows nothing of runs,
segments or sweeps: callers place each result by its index, so the outcome
does not depend on where or in which order the tasks ran.

In process the tasks run in order on the calling thread (a task may use
thread lanes of its own). On Dask:

    [shared] = client.scatter([shared], broadcast=True, hash=False)  # once per worker
    futures  = [client.submit(fn, shared, *task, retries=2) for each task]
    yield (index, result) of each future as it completes

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
wins, else ``$DASK_SCHEDULER_ADDRESS`` if set, else None (run in process).
Remote workers need riskpool (this package) installed.

Tasks must be pure functions of their inputs (riskpool's blocks are): a
worker lost mid-run costs only the re-run of its tasks (results identical),
and a task that raises is retried twice (``retries=2``). `shared` is
scattered with ``broadcast=True``: if every worker that holds it is lost at
once it cannot be recomputed, and the call fails with Dask's lost-data error.
It gets a random key (``hash=False``), not one hashed from its content: a
call right after an identical one would otherwise reuse the key while the
scheduler is still forgetting the earlier copy, and lose it ("Key lost
during replication"). Task keys carry a nonce for the same reason.
Ctrl-C, an error or a consumer that stops iterating cancels the futures.
Nothing is written to disk here.

Dask is optional: ``pip install riskpool[dask]``; this module imports without it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

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
            "scheduler: None means run in process; give 'local', 'env', "
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


@contextlib.contextmanager
def session(scheduler: Any) -> Iterator[Any]:
    """`client_for(scheduler)`, or None (run in process) when `scheduler` is None:
    one client for several `map_blocks` calls."""
    if scheduler is None:
        yield None
        return
    with client_for(scheduler) as client:
        yield client


def map_blocks(fn: Callable[..., Any], tasks: Sequence[tuple], *, shared: Any = None, scheduler: Any = None,
               timeout: float | None = None, name: str = "riskpool") -> Iterator[tuple[int, Any]]:
    """Yield (index, fn(shared, *tasks[index])) for every task as it completes.

    `scheduler` None runs the tasks in order here; otherwise as `client_for`
    (a Client passed in is used and left open, so several calls can share
    one). `timeout` (seconds, Dask only) raises `TimeoutError`. On any error,
    timeout, Ctrl-C or a consumer that stops early, every submitted task is
    cancelled."""
    if scheduler is None:
        for i, task in enumerate(tasks):
            yield i, fn(shared, *task)
        return
    distributed = _import_distributed()
    with client_for(scheduler) as client:
        [shared_future] = client.scatter([shared], broadcast=True, hash=False)
        nonce = uuid.uuid4().hex
        futures = [client.submit(fn, shared_future, *task, key=f"{name}-{nonce}-{i}", retries=2)
                   for i, task in enumerate(tasks)]
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for future, result in distributed.as_completed(futures, with_results=True, timeout=timeout):
                if future.status != "finished" or isinstance(result, BaseException):
                    raise RuntimeError(f"task {future.key} did not finish ({future.status}): {result!r}")
                future.release()
                yield index[future.key], result
        except BaseException:
            client.cancel(futures, force=True)
            raise
        finally:
            shared_future.release()
