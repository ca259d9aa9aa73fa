"""Per-path result arrays of a run: one row per path, written by the lane
kernels and summarised afterwards in path order."""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from models.scenario import PARTIES, ScenarioError
from sim.risk.summary import CHUNK, EDGES

PathOutputs = namedtuple(
    "PathOutputs",
    [
        "gross_loss", "party_loss", "n_defaults", "defaulted_amount", "credit", "n_originated",
        "stop_month", "exhausted", "subsidy", "compensation", "reward", "fiscal_cost",
        "bank_income", "systematic", "period_defaults", "pool_balance", "guarantor_capital", "short",
        "required_pool", "required_capital", "weight",
    ],
)


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
        # a payer could not pay in full on the path: its balance, capital or cumulative cap ran out
        short=np.zeros((n_paths, len(PARTIES)), np.bool_),
        # the smallest initial pool and guarantor capital that pay every claim (sim.engine.waterfall)
        required_pool=f(n_paths), required_capital=f(n_paths),
        # the path's likelihood ratio dP/dQ (1 without importance sampling; sim.engine.importance)
        weight=np.ones(n_paths),
    )


def slice_outputs(out: PathOutputs, lo: int, hi: int) -> PathOutputs:
    """Views of rows lo:hi of every array (a block)."""
    return PathOutputs(*(a[lo:hi] for a in out))


def place_outputs(out: PathOutputs, lo: int, block: PathOutputs) -> int:
    """Copy a block's rows into rows lo.. of `out`; returns the block's path count."""
    n = block.gross_loss.shape[0]
    if len(block) != len(out) or any(b.shape[1:] != a.shape[1:] for a, b in zip(out, block)):
        raise RuntimeError(f"block at path {lo}: malformed per-path outputs")
    for dst, src in zip(out, block):
        dst[lo:lo + n] = src
    return n


def output_bytes(n_periods: int, n_paths: int) -> int:
    """Memory of `n_paths` paths' per-path outputs, bytes."""
    return sum(a.nbytes for a in allocate_outputs(1, n_periods)) * n_paths


def memory_budget(memory_gib: float) -> int:
    """The bytes a run's per-path results may take: `memory_gib` GiB."""
    return int(memory_gib * 2**30)


# What a streamed run's reductions hold besides its kept values: per ranked variable column
# (sim.results.reduction) and bin six sums, and the scratch of one chunk's bin sums.
_BIN_BYTES = 2 * (2 * (EDGES + 2) + 1) * 6 * 8


def chunk_bytes(n_periods: int) -> int:
    """Memory of one chunk of a streamed run's per-path outputs, bytes."""
    return output_bytes(n_periods, CHUNK)


def streaming_bytes(n_periods: int) -> int:
    """Memory a streamed run needs in process whatever its path count, besides the values it
    keeps: a chunk's outputs and the copies its means are reduced from, six chunks' worth with the
    bins (a streamed run of the IP-pledge scenario peaked at about five in tracemalloc)."""
    columns = 4 + len(PARTIES) + n_periods  # the ranked variables' columns (sim.results.reduction)
    return 6 * chunk_bytes(n_periods) + columns * _BIN_BYTES


class MemoryBudgetError(ScenarioError):
    """A run's per-path results would not fit in its memory budget (refused before it starts)."""


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:,.2f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:,.1f} MiB"


def check_fits(n_bytes: int, budget: int, what: str) -> None:
    """Refuse, before anything is allocated, a request of `n_bytes` over `budget`."""
    if n_bytes > budget:
        raise MemoryBudgetError(
            f"{what} needs {_size(n_bytes)}, over the memory budget of {_size(budget)} "
            f"(simulation.memory_gib, --memory-gib; default 2 GiB): use fewer paths, or raise the budget "
            "where the memory is there")
