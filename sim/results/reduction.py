"""What a run's Dataset needs, reduced from its per-path outputs chunk by
chunk (`sim.risk.summary`): the same whether the paths were held in memory
or simulated again for each pass, so a run over its memory budget gives the
bits of one within it.

Pass 1 (`add`, every chunk in path order) merges the means, probability
sums and per-bin sums; `bins_to_keep` then says how many values of which
bins the order statistics need, and each further pass (`collect`, every
chunk again, then `close_pass`) keeps them, until nothing is missing."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from sim.engine.outputs import PathOutputs, check_fits, slice_outputs
from sim.engine.plan import Plan
from sim.risk import estimators
from sim.risk.summary import CHUNK, EDGES, KEPT_BYTES, Moments, Ranked, RankedVariable, Sums

# Per-path means of the Dataset: name -> dims (one column, or one a party / a period).
MEANS = (("gross_loss", ()), ("default_rate", ()), ("default_rate_by_amount", ()),
         ("defaults_by_period", ("period",)), ("loss", ("party",)), ("pool_balance", ("period",)),
         ("guarantor_capital", ("period",)), ("credit_supplied", ()), ("credit_forgone", ()),
         ("fiscal_cost", ()), ("subsidy", ()), ("guarantee_compensation", ()), ("bank_reward", ()),
         ("bank_net_income", ()), ("likelihood_ratio", ()), ("recovered", ()), ("defaulted_amount", ()))
# Ratios of means: name -> (numerator, denominator) among MEANS.
RATIOS = {"recovery_rate": ("recovered", "defaulted_amount"),
          "fiscal_cost_per_credit": ("fiscal_cost", "credit_supplied")}


def _mean_columns(out: PathOutputs, book: float) -> list[np.ndarray]:
    """The per-path values of MEANS, in its order, each (paths, columns)."""
    originated = np.maximum(out.n_originated, 1.0)
    c = lambda a: np.asarray(a, float).reshape(a.shape[0], -1)  # noqa: E731
    return [c(out.gross_loss), c(out.n_defaults / originated),
            c(out.defaulted_amount / np.maximum(out.credit, 1.0)), c(out.period_defaults),
            c(out.party_loss), c(out.pool_balance), c(out.guarantor_capital), c(out.credit),
            c(book - out.credit), c(out.fiscal_cost), c(out.subsidy), c(out.compensation), c(out.reward),
            c(out.bank_income), c(np.ones_like(out.weight)), c(out.defaulted_amount - out.gross_loss),
            c(out.defaulted_amount)]


def _flags(out: PathOutputs) -> np.ndarray:
    """(paths, 2): the pool ran dry, the stop rule fired."""
    return np.column_stack([out.exhausted, out.stop_month >= 0]).astype(float)


def _above_grid(x: np.ndarray, grid: np.ndarray, v: np.ndarray) -> np.ndarray:
    """sum of v over the paths with x > g, for each g of an ascending grid (no paths x grid array)."""
    at = np.searchsorted(grid, x, side="left")  # x > grid[i] for every i < at
    by_count = np.bincount(at, weights=v, minlength=grid.size + 1)
    return np.cumsum(by_count[::-1])[::-1][1:]  # grid point i: the paths with at > i


def _ranked_columns(out: PathOutputs) -> dict[str, np.ndarray]:
    return {"gross_loss": out.gross_loss[:, None], "loss": out.party_loss,
            "fiscal_cost": out.fiscal_cost[:, None], "required_pool": out.required_pool[:, None],
            "pool_balance": out.pool_balance}


def requests(quantiles: np.ndarray, levels: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The ranked variables' tail levels (VaR, ES) and quantile levels (curves, bands)."""
    q, none = np.asarray(quantiles, float), np.zeros(0)
    return {"gross_loss": (q, levels), "loss": (q, levels), "fiscal_cost": (q, none),
            "required_pool": (q, none), "pool_balance": (none, np.concatenate([q, 1.0 - q]))}


def expected_kept(n_paths: int, quantiles: np.ndarray, levels: np.ndarray, n_parties: int,
                  n_periods: int) -> int:
    """Values a run of n paths is expected to keep: three bins a tail level (the VaR and its SE
    band's ends), one a quantile level, each bin holding n / EDGES values (atoms keep nothing, and
    bins the statistics share are kept once: in practice about half of this)."""
    columns = {"gross_loss": 1, "loss": n_parties, "fiscal_cost": 1, "required_pool": 1,
               "pool_balance": n_periods}
    bins = sum(columns[name] * (3 * t.size + p.size) for name, (t, p) in requests(quantiles, levels).items())
    return int(min(bins * -(-n_paths // EDGES), sum(columns.values()) * n_paths))


class RunReduction:
    """The reductions of one run's paths (dims as the Dataset's: parties, periods, the pool grid)."""

    def __init__(self, plan: Plan, n_paths: int, quantiles: np.ndarray, levels: np.ndarray,
                 grid: np.ndarray, first: PathOutputs):
        self.n = int(n_paths)
        self.book = float(plan.originated_cum[-1])  # the book's credit (yuan), every loan made
        self.grid = np.asarray(grid, float)
        if np.any(np.diff(self.grid) <= 0):
            raise ValueError("pool grid: sizes must be strictly ascending")
        self.levels = np.asarray(levels, float)
        self.requests = requests(quantiles, levels)
        columns = _mean_columns(first, self.book)
        widths = [a.shape[1] for a in columns]
        self.slices = dict(zip((name for name, _ in MEANS), _slices(widths)))
        k = sum(widths)
        # each ratio's shift r0 (its first chunk's value): the moments of x - r0 y keep its SE exact
        means = {name: float((columns[i][:, 0] * first.weight).sum()) for i, (name, _) in enumerate(MEANS)}
        self.shifts = [means[a] / means[b] if means[b] != 0.0 else 0.0 for a, b in RATIOS.values()]
        self.moments = Moments(k + len(RATIOS), [(k + i, self.slices[b].start)
                                                  for i, (_, b) in enumerate(RATIOS.values())])
        self.flags = Sums(4)
        self.above_grid = Sums((2, self.grid.size))  # sums of w, of w^2 over the paths R > x
        self.weights = Sums(2)
        self.plain = True  # every weight exactly 1 (no importance sampling)
        sample = _ranked_columns(first)
        self.ranked = {name: Ranked(x[:CHUNK], tails=self.requests[name][0].size > 0)
                       for name, x in sample.items()}
        self.variables: dict[str, RankedVariable] = {}

    def add(self, out: PathOutputs) -> None:
        """Pass 1: merge a chunk of paths (in path order)."""
        w = out.weight
        self.plain = self.plain and bool((w == 1.0).all())
        values = np.concatenate(_mean_columns(out, self.book), axis=1) * w[:, None]
        shifted = [values[:, self.slices[a].start] - r0 * values[:, self.slices[b].start]
                   for (a, b), r0 in zip(RATIOS.values(), self.shifts)]
        self.moments.add(np.column_stack([values, *shifted]))
        f, w2 = _flags(out), w * w
        self.flags.add(np.concatenate([f * w[:, None], f * w2[:, None]], axis=1))
        self.above_grid.add(np.stack([_above_grid(out.required_pool, self.grid, v) for v in (w, w2)])[None])
        self.weights.add(np.column_stack([w, w2]))
        for name, x in _ranked_columns(out).items():
            self.ranked[name].add(x, w)

    def bins_to_keep(self) -> int:
        """Mark the bins the order statistics need; the number of values still to keep."""
        if not self.variables:
            self.variables = {name: RankedVariable(r, self.n, not self.plain, *self.requests[name])
                              for name, r in self.ranked.items()}
        missing = 0
        for name, variable in self.variables.items():
            for j, bins in enumerate(variable.bins_needed()):
                self.ranked[name].want(j, bins)
            missing += self.ranked[name].missing()
        return missing

    def collect(self, out: PathOutputs, first_path: int) -> None:
        """A further pass: keep the wanted values of a chunk starting at path `first_path`."""
        for name, x in _ranked_columns(out).items():
            self.ranked[name].collect(x, out.weight, first_path)

    def close_pass(self) -> None:
        for r in self.ranked.values():
            r.close_pass()

    # what the Dataset reads
    def mean(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        m, se = self.moments.estimate()
        s = self.slices[name]
        return m[s], se[s]

    def ratio(self, name: str) -> estimators.Estimate:
        i = list(RATIOS).index(name)
        return self.moments.ratio(self.slices[RATIOS[name][0]].start, i, self.shifts[i])

    def probabilities(self) -> list[estimators.Estimate]:
        """P(pool ran dry), P(stop rule fired), then P(required pool > x) for x on the grid."""
        s, (g, g2) = self.flags.total, self.above_grid.total
        hits = [(s[0], s[2]), (s[1], s[3]), *zip(g, g2)]
        return [estimators.probability_from_sums(h, h2, self.n, not self.plain) for h, h2 in hits]

    def tail_table(self, name: str, column: int = 0) -> np.ndarray:
        return self.variables[name].tail_table(column)

    def quantiles(self, name: str) -> np.ndarray:
        return self.variables[name].quantiles()

    def effective_paths(self) -> float:
        total, squares = self.weights.total
        return total * total / squares if total > 0.0 else 0.0

    @staticmethod
    def kept_bytes(n_values: int) -> int:
        return KEPT_BYTES * n_values

    def kept_values(self) -> int:
        """Values kept so far, over every variable."""
        return sum(r.kept_values() for r in self.ranked.values())


def _slices(widths: list[int]) -> list[slice]:
    ends = np.cumsum(widths)
    return [slice(int(e - w), int(e)) for e, w in zip(ends, widths)]


def reduce_paths(plan: Plan, n_paths: int, quantiles: np.ndarray, levels: np.ndarray, grid: np.ndarray,
                 chunks: Callable[[], Iterator[tuple[int, PathOutputs]]], kept_budget: int | None = None,
                 passes: Callable[[int], None] | None = None) -> RunReduction:
    """Reduce a run's paths: `chunks()` yields (first path, outputs) of consecutive chunks of CHUNK
    paths in path order, each call the same paths again; `passes(k)` is told before each further
    pass how many values it keeps. The values kept may take `kept_budget` bytes (refused past it)."""
    reduction = None
    for _, out in chunks():
        if reduction is None:
            reduction = RunReduction(plan, n_paths, quantiles, levels, grid, out)
        reduction.add(out)
    while (missing := reduction.bins_to_keep()) > 0:
        kept = missing + reduction.kept_values()
        if kept_budget is not None:
            check_fits(RunReduction.kept_bytes(kept), kept_budget, f"{n_paths:,} paths streamed: the "
                       f"{kept:,} values kept for the order statistics (in what the budget leaves "
                       "besides the streamed chunks)")
        if passes is not None:
            passes(missing)
        for first, out in chunks():
            reduction.collect(out, first)
        reduction.close_pass()
    return reduction


def reduce_outputs(out: PathOutputs, plan: Plan, quantiles: np.ndarray, levels: np.ndarray,
                   grid: np.ndarray) -> RunReduction:
    """Reduce per-path outputs held in memory (the same bits as simulating them chunk by chunk)."""
    n = out.gross_loss.size

    def chunks() -> Iterator[tuple[int, PathOutputs]]:
        for lo in range(0, n, CHUNK):
            yield lo, slice_outputs(out, lo, min(n, lo + CHUNK))
    return reduce_paths(plan, n, quantiles, levels, grid, chunks)
