"""A run's statistics reduced chunk by chunk, so that memory does not grow
with the path count: the estimators of `sim.risk.estimators` (their
definitions and formulas, and the same ranks) computed from per-chunk sums
and a few kept values instead of the whole sorted sample.

Paths are reduced in fixed chunks of CHUNK paths in path order, whatever the
block size, thread count or scheduler that produced them, so every floating
sum has one order and a run gives the same bits however it ran -- and the
same whether its per-path arrays were held in memory or simulated twice.

- Means and their SEs: each chunk's mean and sum of squared deviations,
  merged in path order by Chan, Golub and LeVeque's update
  (delta = m_b - m_a, m = m_a + delta n_b / n, M2 = M2_a + M2_b + delta^2 n_a n_b / n),
  with the cross terms a ratio's delta-method SE needs.
- Probabilities: sums of w 1{A} and w^2 1{A} (exact counts without weights).
- Order statistics (VaR, its SE band, quantiles) and tails (ES, its SE):
  the first chunk's values set EDGES cut points per variable; a value falls
  in bin 2i + 1 when it equals cut i, else in the open interval below the
  first cut above it (bins 0, 2, ..., 2 EDGES), so equal values share a bin
  and an atom (a loss of exactly 0, a pool never touched) sits in a bin of
  its own. The first pass counts each bin and sums w, w^2, w d, w^2 d and
  w^2 d^2 with d = x - r, r the bin's reference point (its lower cut; its
  only value for a cut's bin). The bin holding a wanted rank (or, with
  weights, the tail mass 1 - q: the lowest bin whose mass strictly above
  is <= n (1 - q)) follows from the counts; a second pass keeps the values
  of those bins only (with weights and path indices, sorted as a stable
  sort would) and the order statistic is read off them. The sums of the
  bins above give the tail's excess exactly as the sorted sample would, to
  rounding: sum w (x - v) = sum (w d) + (r - v) sum w, and
  sum w^2 (x - v)^2 = sum w^2 d^2 + 2 (r - v) sum w^2 d + (r - v)^2 sum w^2.
  With weights, the VaR's SE band q -+ sd(w 1{x > VaR}) / sqrt(n) is known
  only once the VaR is; the bins it may reach are bounded from the bin sums
  beforehand, and any bin still missing is collected in one more pass.

Against the sorted sample: order statistics equal to the bit (with weights
too, except where the weight above a value equals n (1 - q) to the last
bit, when the two summation orders' rounding decides), ES and SEs to
rounding; an infinite VaR gives an infinite ES (the sorted sample's
inf - inf is NaN).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from sim.risk import estimators
from sim.risk.binning import add_to_bins, rows_in_bins

CHUNK = 16_384  # paths per reduction chunk: fixes the order of every floating sum
EDGES = 8_192  # cut points per ranked variable, from the first chunk's values
# Bytes a kept value takes at the peak of a pass (its bin, value, weight and path index as collected,
# then the sort's order and sorted copies, field by field); about 17 once sorted (value and weight).
KEPT_BYTES = 64  # 56 measured with tracemalloc


class Moments:
    """Running count, mean and sum of squared deviations of k columns, and
    the cross terms of chosen column pairs, merged chunk by chunk."""

    def __init__(self, k: int, pairs: Iterable[tuple[int, int]] = ()):
        self.n = 0
        self.mean = np.zeros(k)
        self.m2 = np.zeros(k)
        self.pairs = list(pairs)
        self.cross = np.zeros(len(self.pairs))

    def add(self, x: np.ndarray) -> None:
        """Merge the rows of `x` (chunk, k)."""
        nb = x.shape[0]
        if nb == 0:
            return
        with np.errstate(invalid="ignore"):  # unlimited capital (inf): mean inf, no SE
            mb = x.mean(axis=0)
            dev = x - mb
            m2b = (dev * dev).sum(axis=0)
            cb = np.array([(dev[:, i] * dev[:, j]).sum() for i, j in self.pairs])
            if self.n == 0:
                self.mean, self.m2, self.cross = mb, m2b, cb if self.pairs else self.cross
            else:
                n = self.n + nb
                delta = mb - self.mean
                scale = self.n * nb / n
                # an infinite mean (unlimited capital) merges as a weighted sum: inf stays inf
                finite = np.isfinite(delta)
                self.mean = np.where(finite, self.mean + delta * (nb / n),
                                     self.mean * (self.n / n) + mb * (nb / n))
                self.m2 = np.where(finite, self.m2 + m2b + delta * delta * scale, np.nan)
                if self.pairs:
                    di, dj = (list(c) for c in zip(*self.pairs))
                    self.cross = self.cross + cb + delta[di] * delta[dj] * scale
        self.n += nb

    def estimate(self) -> tuple[np.ndarray, np.ndarray]:
        """Means and their standard errors (NaN SE with one path)."""
        if self.n < 2:
            return self.mean, np.full_like(self.mean, np.nan)
        with np.errstate(invalid="ignore"):
            return self.mean, np.sqrt(self.m2 / (self.n - 1)) / math.sqrt(self.n)

    def ratio(self, x: int, pair: int, r0: float) -> estimators.Estimate:
        """mean(x) / mean(y) and its delta-method SE sd(x - r y) / (sqrt(n) mean(y)) (NaN when
        mean(y) is 0), `pair` being the columns (z, y) with z = x - r0 y for a ratio r0 near r:
        Var(x - r y) = Var(z - (r - r0) y) without x cancelling against r y."""
        iz, iy = self.pairs[pair]
        my = float(self.mean[iy])
        if my == 0.0:
            return estimators.Estimate(math.nan, math.nan)
        r = float(self.mean[x]) / my
        if self.n < 2:
            return estimators.Estimate(r, math.nan)
        s = r - r0
        m2 = self.m2[iz] - 2.0 * s * self.cross[pair] + s * s * self.m2[iy]
        return estimators.Estimate(r, math.sqrt(max(float(m2), 0.0) / (self.n - 1)) / math.sqrt(self.n) / my)


class Sums:
    """Running column sums, added chunk by chunk (exact for counts)."""

    def __init__(self, shape: int | tuple[int, ...]):
        self.total = np.zeros(shape)

    def add(self, x: np.ndarray) -> None:
        """Add the rows (axis 0) of a chunk."""
        self.total = self.total + x.sum(axis=0)


def cut_points(sample: np.ndarray) -> np.ndarray:
    """Up to EDGES distinct cut points at equal-count positions of a sample's finite values, and
    -inf and inf (so that infinite values, unlimited capital, sit in bins of their own)."""
    s = np.sort(sample[np.isfinite(sample)])
    cuts = np.unique(np.concatenate([s[::max(1, s.size // EDGES)], s[-1:]])) if s.size else np.zeros(1)
    return np.concatenate([[-np.inf], cuts, [np.inf]])


def references(cuts: np.ndarray) -> np.ndarray:
    """Each bin's reference point: a cut's bin its cut; an interval its finite end, the lower one
    where both are (0 past both infinite cuts)."""
    lower = np.concatenate([[np.nan], cuts])  # interval 2 i lies between cuts i - 1 and i
    upper = np.concatenate([cuts, [np.nan]])
    interval = np.where(np.isfinite(lower), lower, np.where(np.isfinite(upper), upper, 0.0))
    ref = np.empty(2 * cuts.size + 1)
    ref[0::2], ref[1::2] = interval, cuts
    return ref


class Ranked:
    """Per-bin sums of k columns for exact order statistics and tails, and
    the values kept of the bins wanted (see the module docstring)."""

    FIELDS = ("w", "w2", "wd", "w2d", "w2d2")

    def __init__(self, sample: np.ndarray, tails: bool = True):
        """Cut points from `sample` (rows: paths); without `tails` only the weight of each bin is
        summed (quantiles need no more)."""
        self.cuts = [cut_points(sample[:, j]) for j in range(sample.shape[1])]
        self.refs = [references(c) for c in self.cuts]
        self.count = [np.zeros(2 * c.size + 1, np.int64) for c in self.cuts]
        self.fields = len(self.FIELDS) if tails else 1
        self.sums = [np.zeros((self.fields, 2 * c.size + 1)) for c in self.cuts]
        self.wanted = [np.zeros(2 * c.size + 1, np.bool_) for c in self.cuts]
        self.collected = [np.zeros(2 * c.size + 1, np.bool_) for c in self.cuts]
        # per column, the parts kept by a pass: bins, values, weights, path indices
        self._kept: list[tuple[list[np.ndarray], ...]] = [([], [], [], []) for _ in self.cuts]
        self.kept: list[dict[int, tuple[np.ndarray, np.ndarray]]] = [{} for _ in self.cuts]  # bin -> (x, w)

    @property
    def k(self) -> int:
        return len(self.cuts)

    def add(self, x: np.ndarray, w: np.ndarray) -> None:
        """First pass: count and sum the rows of `x` (chunk, k) with weights `w` into their bins (the
        chunk's sums first, then added to the running ones)."""
        w = np.ascontiguousarray(w, dtype=np.float64)
        for j in range(self.k):
            count, sums = np.zeros_like(self.count[j]), np.zeros_like(self.sums[j])
            add_to_bins(self.cuts[j], self.refs[j], np.ascontiguousarray(x[:, j]), w, count, sums)
            self.count[j] += count
            self.sums[j] += sums

    def want(self, j: int, bins: Iterable[int]) -> None:
        for b in bins:
            if b % 2 == 0:  # a cut's bin holds one value: nothing to keep
                self.wanted[j][b] = True

    def missing(self) -> int:
        """Values still to keep (counts of wanted bins not yet collected)."""
        return int(sum(c[w & ~k].sum() for c, w, k in zip(self.count, self.wanted, self.collected)))

    def kept_values(self) -> int:
        return int(sum(c[k].sum() for c, k in zip(self.count, self.collected)))

    def collect(self, x: np.ndarray, w: np.ndarray, first_path: int) -> None:
        """A further pass: keep the values of wanted bins not yet collected."""
        for j in range(self.k):
            todo = self.wanted[j] & ~self.collected[j]
            if not todo.any():
                continue
            rows, b = rows_in_bins(self.cuts[j], todo, np.ascontiguousarray(x[:, j]))
            if rows.size:
                for part, v in zip(self._kept[j], (b, x[rows, j], w[rows], first_path + rows)):
                    part.append(v)

    def close_pass(self) -> None:
        """After a collecting pass: sort what was kept into each bin's values."""
        for j in range(self.k):
            todo = self.wanted[j] & ~self.collected[j]
            parts, self._kept[j] = self._kept[j], ([], [], [], [])
            if parts[0]:
                b, x, path = (_joined(p) for p in (parts[0], parts[1], parts[3]))  # one field at a time
                order = np.lexsort((path, x, b))
                del path
                b, x, w = b[order], x[order], _joined(parts[2])[order]
                del order
                starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
                for s, e in zip(starts, np.r_[starts[1:], b.size]):
                    self.kept[j][int(b[s])] = (x[s:e], w[s:e])
            self.collected[j] |= todo

    def values(self, j: int, b: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The sorted values and weights of bin b of column j (a cut's bin: its value once, weight
        None); raises KeyError if the bin was not kept."""
        if b % 2 == 1:
            return self.cuts[j][b // 2: b // 2 + 1], None
        if self.count[j][b] == 0:
            return np.zeros(0), np.zeros(0)
        return self.kept[j][b]


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """The parts concatenated, the list emptied (so that its arrays are freed as soon as possible)."""
    out = np.concatenate(parts)
    parts.clear()
    return out


class RankedVariable:
    """Order statistics and tails of the k columns of one variable over n paths, from its `Ranked`
    sums: at the tail levels (VaR, ES and their SEs) and the quantile levels (no SE)."""

    def __init__(self, ranked: Ranked, n: int, weighted: bool, tails: np.ndarray, levels: np.ndarray):
        self.r, self.n, self.weighted = ranked, n, weighted
        self.tails, self.levels = np.asarray(tails, float), np.asarray(levels, float)
        # the bins' counts and weights are final once pass 1 is over: their running sums, once
        # (above[j][b]: the weight strictly above bin b of column j)
        self.cum = [np.cumsum(c) for c in ranked.count]
        self.above = [np.concatenate([np.cumsum(s[0][::-1])[::-1][1:], [0.0]]) for s in ranked.sums]

    def _rank_bin(self, j: int, rank: int) -> tuple[int, int]:
        """(bin, position in it) of the value of ascending rank `rank` in column j."""
        cum = self.cum[j]
        b = int(np.searchsorted(cum, rank, side="right"))
        return b, rank - int(cum[b] - self.r.count[j][b])

    def _mass_bin(self, j: int, level: float) -> int:
        """The bin of the weighted (tail-form) quantile at `level`: the lowest non-empty bin whose
        weight strictly above is <= n (1 - level)."""
        ok = (self.r.count[j] > 0) & (self.above[j] / self.n <= 1.0 - level)
        return int(np.argmax(ok))

    def _value_at(self, j: int, level: float) -> float:
        """The weighted quantile at `level` (tail form, as `estimators._tail_rank`)."""
        b = self._mass_bin(j, level)
        x, w = self.r.values(j, b)
        if w is None:
            return float(x[0])
        return float(x[estimators._tail_rank(w, level, self.n, float(self.above[j][b]))])

    def _order_stat(self, j: int, rank: int) -> float:
        b, i = self._rank_bin(j, rank)
        x, w = self.r.values(j, b)
        return float(x[0] if w is None else x[i])

    def _excess_above(self, j: int, b: int, v: float) -> np.ndarray:
        """Sums over the bins above b of w, w^2, w (x - v) and w^2 (x - v)^2."""
        w, w2, wd, w2d, w2d2 = self.r.sums[j][:, b + 1:]
        s = self.r.refs[j][b + 1:] - v
        with np.errstate(invalid="ignore"):  # an empty bin at an infinite cut adds nothing
            e = np.where(w > 0, wd + s * w, 0.0)
            e2 = np.where(w2 > 0, w2d2 + 2.0 * s * w2d + s * s * w2, 0.0)
        return np.array([w.sum(), w2.sum(), e.sum(), e2.sum()])

    def _band_bound(self, j: int, b: int) -> float:
        """The SE band sd(w 1{x > VaR}) / sqrt(n) of a VaR in bin b, with and without the bin's own
        paths above it, the larger (in practice a bound; the collecting loop covers the rest)."""
        above = self._excess_above(j, b, 0.0)[:2]
        with_bin = above + self.r.sums[j][:2, b]
        return max(_band(f, f2, self.n) for f, f2 in (above, with_bin))

    def bins_needed(self) -> list[set[int]]:
        """Per column, the bins whose values the estimates need, given what is kept so far."""
        need: list[set[int]] = [set() for _ in range(self.r.k)]
        for j in range(self.r.k):
            if not self.weighted:
                ranks = [r for q in self.tails for r in estimators.plain_tail_ranks(self.n, q)]
                ranks += [estimators.quantile_rank(self.n, p) for p in self.levels]
                need[j] |= {self._rank_bin(j, r)[0] for r in ranks}
                continue
            need[j] |= {self._mass_bin(j, p) for p in self.levels}
            for q in self.tails:
                b = self._mass_bin(j, q)
                need[j].add(b)
                # the band's ends: exact once the VaR's bin is kept, else bounded (a bin the exact
                # band then reaches and that is not kept yet is kept in one more pass)
                known = b % 2 == 1 or self.r.collected[j][b]
                band = self._weighted_tail(j, q)[1] if known else 1.01 * self._band_bound(j, b)
                need[j] |= {self._mass_bin(j, max(q - band, 0.0)), self._mass_bin(j, min(q + band, 1.0))}
        return need

    def _plain_tail(self, j: int, q: float) -> tuple[float, float, float, float]:
        n = self.n
        idx, lo, hi = estimators.plain_tail_ranks(n, q)
        b, i = self._rank_bin(j, idx)
        x, w = self.r.values(j, b)
        var = float(x[0] if w is None else x[i])
        top = np.zeros(0) if w is None else x[i:] - var  # a cut's bin: every value is the VaR
        _, _, s1, s2 = self._excess_above(j, b, var) + np.array([0.0, 0.0, top.sum(), (top * top).sum()])
        t = n - idx
        tail_var = max((s2 - s1 * s1 / t) / (t - 1), 0.0) if t > 1 else 0.0
        es = var + s1 / (n * (1.0 - q))
        es_se = math.sqrt((tail_var + q * (es - var) ** 2) / (n * (1.0 - q)))
        return var, (self._order_stat(j, hi) - self._order_stat(j, lo)) / 2.0, es, es_se

    def _weighted_tail(self, j: int, q: float) -> tuple[float, float, float, float]:
        """(VaR, SE band sd(w 1{x > VaR}) / sqrt(n), ES, ES SE) of column j at level q."""
        n = self.n
        b = self._mass_bin(j, q)
        var = self._value_at(j, q)
        x, w = self.r.values(j, b)
        f, f2, e, e2 = self._excess_above(j, b, var)
        if w is not None:
            over = x > var
            ex = w[over] * (x[over] - var)
            f, f2 = f + w[over].sum(), f2 + (w[over] * w[over]).sum()
            e, e2 = e + ex.sum(), e2 + (ex * ex).sum()
        es = var + e / (n * (1.0 - q))
        es_se = math.sqrt(max((e2 - e * e / n) / (n - 1), 0.0) / n) / (1.0 - q) if n > 1 else math.nan
        return var, _band(f, f2, n), es, es_se

    def tail_table(self, j: int) -> np.ndarray:
        """(4, tail levels): VaR, VaR SE, ES, ES SE of column j (as `estimators.tail_table`)."""
        if not self.weighted:
            return np.array([self._plain_tail(j, q) for q in self.tails]).reshape(-1, 4).T
        rows = []
        for q in self.tails:
            var, band, es, es_se = self._weighted_tail(j, q)
            var_se = (self._value_at(j, min(q + band, 1.0)) - self._value_at(j, max(q - band, 0.0))) / 2.0
            rows.append((var, var_se, es, es_se))
        return np.array(rows).reshape(-1, 4).T

    def quantiles(self) -> np.ndarray:
        """(levels, k): the quantiles of every column (as `estimators.quantiles`)."""
        if self.weighted:
            values = [[self._value_at(j, p) for j in range(self.r.k)] for p in self.levels]
        else:
            values = [[self._order_stat(j, estimators.quantile_rank(self.n, p)) for j in range(self.r.k)]
                      for p in self.levels]
        return np.array(values, dtype=float).reshape(self.levels.size, self.r.k)


def _band(f: float, f2: float, n: int) -> float:
    """sd(w 1{x > VaR}) / sqrt(n) from the sums of w and w^2 over the paths above the VaR."""
    return math.sqrt(max((f2 - f * f / n) / (n - 1), 0.0)) / math.sqrt(n) if n > 1 else 0.0
