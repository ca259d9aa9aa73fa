"""Monte Carlo runs in process: paths in blocks, each path a pure function of
(run key, path index), per-path results written to arrays and summarised
afterwards in path order, so any thread count or block size gives
bit-identical results. `RunSpec` is what a run is: the compiled plan (with
its sampling measure when a tail event is importance-sampled), its path
count, seed, block size and sampler, resolved against the scenario's
[simulation] settings and checked once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from numba import njit

from models.portfolio import Portfolio
from models.scenario import MAX_PATHS, Scenario, ScenarioError
from models.tail import TailEvent, parse_tail
from sim.engine.importance import TailShift, choose_shift, tilted
from sim.engine.lanes import lanes_for, loss_block, simulate_block
from sim.engine.outputs import (
    PathOutputs,
    allocate_outputs,
    check_fits,
    memory_budget,
    output_bytes,
    slice_outputs,
    streaming_bytes,
)
from sim.engine.plan import Plan, build_portfolio, compile_plan
from sim.engine.sampling import draw_plan, fill_exposures
from sim.engine.waterfall import N_EVENT_TYPES, settle_with_required_pool

METHODS = ("sparse", "dense")


def run_key(seed: int) -> np.uint64:
    """64-bit run key derived from the seed with NumPy's SeedSequence."""
    return np.random.SeedSequence(int(seed)).generate_state(1, dtype=np.uint64)[0]


@dataclass(frozen=True, eq=False)
class RunSpec:
    """A checked run: the compiled plan and how many paths to draw from which seed."""

    plan: Plan
    n_paths: int
    seed: int
    block_size: int
    method: str
    tail: TailEvent | None = None
    sampling: TailShift | None = None
    memory_bytes: int | None = None  # budget of the per-path results (None: unchecked)

    @classmethod
    def resolve(cls, scenario: Scenario, *, n_paths: int | None = None, seed: int | None = None,
                block_size: int | None = None, method: str | None = None,
                portfolio: Portfolio | None = None, importance: bool = True,
                tail_target: float | None = None, loss_only: bool = False) -> RunSpec:
        """Fill what is not given from the scenario's [simulation] settings
        (`portfolio` from its own book), check it and compile the plan; with
        a tail event in `simulation.tail` (and `importance`), choose the
        sampling measure for it (`sim.engine.importance`; `tail_target`: aim
        at the event's score passing its (1 - target) quantile). A
        `loss_only` run keeps one loss a path (plain Monte Carlo), which is
        what its memory budget is checked against."""
        sim = scenario.simulation
        n_paths = sim.n_paths if n_paths is None else int(n_paths)
        seed = sim.seed if seed is None else int(seed)
        block_size = sim.block_size if block_size is None else int(block_size)
        if n_paths < 1 or block_size < 1:
            raise ValueError(f"n_paths and block_size must be >= 1 (got {n_paths}, {block_size})")
        method = sim.method if method is None else method
        if method not in METHODS:
            raise ValueError(f"method must be 'sparse' or 'dense' (got {method!r})")
        if n_paths > MAX_PATHS:
            raise ScenarioError(f"{scenario.source}: {n_paths:,} paths: at most {MAX_PATHS:,} "
                                "(simulation.n_paths, --paths)")
        budget = memory_budget(sim.memory_gib)
        n_periods = sim.horizon_months // sim.period_months
        if loss_only:
            check_fits(8 * n_paths, budget, f"{scenario.source}: {n_paths:,} loss-only paths")
        else:  # past the budget the paths stream, simulated once more for the order statistics
            check_fits(min(output_bytes(n_periods, n_paths), streaming_bytes(n_periods)), budget,
                       f"{scenario.source}: {n_paths:,} paths")
        portfolio = build_portfolio(scenario) if portfolio is None else portfolio
        plan = compile_plan(scenario, portfolio, method)
        tail = parse_tail(sim.tail) if importance and not loss_only else None
        sampling = None if tail is None else choose_shift(plan, tail, seed, tail_target)
        return cls(plan if sampling is None else tilted(plan, sampling), n_paths, seed, block_size, method,
                   tail, sampling, budget)

    @property
    def streamed(self) -> bool:
        """Whether the per-path results exceed the memory budget: the run then streams its paths
        (`sim.scale.runs`), simulating them again for each pass that keeps order statistics."""
        budget = self.memory_bytes
        return budget is not None and output_bytes(self.n_periods, self.n_paths) > budget

    @property
    def key(self) -> np.uint64:
        return run_key(self.seed)

    @property
    def n_periods(self) -> int:
        return self.plan.horizon // self.plan.period_months

    def blocks(self) -> list[tuple[int, int]]:
        """(first path, path count) of each block, in path order."""
        return [(lo, min(self.block_size, self.n_paths - lo))
                for lo in range(0, self.n_paths, self.block_size)]


def path_block(plan: Plan, key: np.uint64, first_path: int, n: int, n_lanes: int = 1) -> PathOutputs:
    """Per-path outputs of paths first_path .. first_path + n - 1 (a pure
    function of its arguments: safe to retry anywhere)."""
    out = allocate_outputs(n, plan.horizon // plan.period_months)
    simulate_block(plan, key, first_path, out, n_lanes)
    return out


def segment_block(plan: Plan, key: np.uint64, segment: np.ndarray, n_segments: int, first_path: int,
                  n: int, n_lanes: int = 1) -> np.ndarray:
    """Gross loss (yuan) per segment of paths first_path .. first_path + n - 1
    (`segment` gives each plan loan's segment), shape (paths, segments)."""
    out = np.zeros((n, n_segments))
    loss_block(plan, key, first_path, segment, out, n_lanes)
    return out


def _blocks(n_paths: int, block_size: int,
            progress: Callable[[int], None] | None) -> Iterator[tuple[int, int]]:
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
    """Run all paths block by block in place; `progress(n)` is called after each block."""
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


@njit(cache=True)
def _settle_given(plan, loans, months, recoveries, out, spare):
    n = loans.size
    ead = np.zeros(max(n, 1))
    fill_exposures(draw_plan(plan), n, loans, months, ead)
    settle_with_required_pool(plan, 0, n, loans, months, ead, recoveries,
                              np.zeros((max(n, 1), out.party_loss.shape[1])),
                              np.zeros(max(n, 1) * N_EVENT_TYPES, np.int64),
                              np.zeros(plan.amount.size, np.int64), np.zeros(plan.n_event_years),
                              np.full(plan.amount.size, -1, np.int64), np.zeros(max(plan.n_firms, 1)), out,
                              spare, 0)


def settle_given_defaults(plan: Plan, loans, months, recoveries) -> PathOutputs:
    """Settle one path whose defaults are given: portfolio rows of the loans,
    calendar default months (start < month <= start + life) and recovery
    fractions. For hand-worked waterfalls and cross-checks."""
    loans = np.argsort(plan.loan_order)[np.asarray(loans, np.int64)]
    months = np.asarray(months, np.int64)
    recoveries = np.asarray(recoveries, float)
    if not (loans.size == months.size == recoveries.size):
        raise ValueError("loans, months and recoveries must have the same length")
    if np.unique(loans).size != loans.size:
        raise ValueError("a loan defaults at most once on a path: the loans must differ")
    bad = (months <= plan.start[loans]) | (months > plan.start[loans] + plan.life[loans])
    if bad.any():
        raise ValueError(f"default months outside the loans' lives: {months[bad].tolist()}")
    out = allocate_outputs(1, plan.horizon // plan.period_months)
    spare = allocate_outputs(1, plan.horizon // plan.period_months)  # the unlimited-pool settle's row
    _settle_given(plan, loans, months, recoveries, out, spare)
    return out
