"""Simulations off the page's event loop, newest first: every change submits a job; a job that a
newer one supersedes stops at its next block of paths and its result is never shown."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
Progress = Callable[[int], None]


class Superseded(Exception):
    """A newer job was submitted: this one's result would be stale."""


class LatestRunner:
    """Runs jobs one at a time on a worker thread (the engine uses the machine's cores itself);
    each job is told a `progress` callable that raises `Superseded` once a newer job exists."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="riskpool-page")
        self._lock = threading.Lock()
        self._latest = 0

    @property
    def latest(self) -> int:
        """The number of the newest job submitted."""
        return self._latest

    def _ticket(self) -> int:
        with self._lock:
            self._latest += 1
            return self._latest

    def cancel(self) -> None:
        """Supersede every job submitted so far (their results will not be shown)."""
        self._ticket()

    def _checker(self, ticket: int) -> Progress:
        def progress(n: int) -> None:  # called by the engine after each block of n paths
            if ticket != self._latest:
                raise Superseded()
        return progress

    def _call(self, ticket: int, job: Callable[[Progress], T]) -> T:
        self._checker(ticket)(0)  # superseded while it waited in the queue: do not start
        return job(self._checker(ticket))

    async def submit(self, job: Callable[[Progress], Any]) -> tuple[bool, Any]:
        """Run `job(progress)` on the worker thread; (True, its result) when it is still the newest job
        on completion, (False, None) when a newer one superseded it; the newest job's exceptions are
        raised here."""
        ticket = self._ticket()
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._executor, self._call, ticket, job)
        except Superseded:
            return False, None
        except Exception:
            if ticket != self._latest:  # a stale job's failure is as stale as its result
                return False, None
            raise
        return ticket == self._latest, result if ticket == self._latest else None

    def shutdown(self) -> None:
        """Stop the worker thread once its current job ends."""
        self._executor.shutdown(wait=False, cancel_futures=True)
