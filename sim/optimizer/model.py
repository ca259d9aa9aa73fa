"""Credit allocation and pool sizing: a scenario MILP with CVaR limits.

The simulation gives, per equally likely scenario path w = 1..S and per yuan
lent to segment s under sharing option k, what each party pays.  This module
takes those arrays (it never runs a simulation) and chooses how much credit
to place where, which sharing option to adopt and how large a pool to fund.

Sets and data (money in yuan; "per yuan" means per yuan of credit lent)
------------------------------------------------------------------------
    s in segments, k in options, w = 1..S scenarios
    c^P[w,s,k]   pool claims per yuan              (pool_claims)
    c^G[w,s,k]   guarantor payouts per yuan        (guarantor_claims)
    l[w,s,k]     bank retained loss per yuan       (bank_loss)
    f[w,s,k]     other fiscal cost per yuan        (other_fiscal_cost)
    g[s,k]       share of principal guaranteed     (guarantee_share)
    D[s]         demand cap, yuan; M[s] minimum credit, yuan (min_credit)
    m[s]         bank margin per yuan               (bank_margin)
    B budget, C guarantor capital, lev_G guarantor leverage, lev_P pool leverage
    alpha CVaR level; n[s] firms per yuan; eps = 1e-6 / max_s n[s]
    mean_w(.) = (1/S) sum_w (.)

Variables
---------
    x[s,k] >= 0   credit to segment s under option k, yuan      credit(s,k)
    y[k] in {0,1} option k is the scheme adopted                option(k)
    P >= 0        risk-compensation pool, yuan                  pool_size
    zeta >= 0, u[w] >= 0        pool CVaR auxiliaries           pool_var, pool_excess(w)
    zeta_G >= 0, v[w] >= 0      guarantor CVaR auxiliaries      guarantor_var, guarantor_excess(w)

Model
-----
    maximise    sum_{s,k} x[s,k]  +  eps * sum_{s,k} n[s] x[s,k]  -  1e-6 P
    subject to
      one_option          sum_k y[k] = 1
      demand(s,k)         x[s,k] <= D[s] y[k]
      min_credit(s)       sum_k x[s,k] >= M[s]
      bank participation  x[s,k] = 0   if  mean_w l[w,s,k] > m[s]   (an upper bound of 0)
      pool_cvar           zeta + sum_w u[w] / ((1 - alpha) S) <= P
      pool_tail(w)        u[w] >= sum_{s,k} c^P[w,s,k] x[s,k] - zeta
      budget              P + sum_{s,k} mean_w(f[w,s,k]) x[s,k] <= B
      guarantor_cvar      zeta_G + sum_w v[w] / ((1 - alpha) S) <= C        (C finite)
      guarantor_tail(w)   v[w] >= sum_{s,k} c^G[w,s,k] x[s,k] - zeta_G       (C finite)
      guarantor_leverage  sum_{s,k} g[s,k] x[s,k] <= lev_G C               (C, lev_G finite)
      pool_leverage       sum_{s,k} x[s,k] <= lev_P P                      (lev_P finite)

The pool_cvar and pool_tail rows are the Rockafellar-Uryasev form of
CVaR_alpha(pool claims) <= P; likewise for the guarantor.  Bounding zeta
below by 0 loses nothing, because claims are non-negative so the minimising
zeta (the VaR) is too, and it keeps a cutting-plane master problem bounded.
The two tie-breaks are worth at most 1e-6 yuan of credit per yuan, so they
only choose among plans whose credit differs by less than that: more firms
(eps), then the smallest pool that covers the plan, so that P is the CVaR of
its claims (or the pool leverage floor) rather than whatever the budget
leaves.  The reported objective is credit alone.

The only integers are the K option binaries, and sum_k y[k] = 1 leaves them
K values, so the MILP is solved exactly by solving the K LPs with y fixed
and keeping the best; with a handful of options this is much faster than
branch-and-bound over dense scenario rows.  A MILP has no duals: shadow
prices come from the LP with the binaries fixed at their optimal values (the
option choice held constant).  The solver is asked to minimise -(objective)
so that HiGHS and CBC report duals in the same convention; a shadow price
here is d credit / d rhs.

Methods
-------
"full" writes every scenario row.  "cutting_plane" starts from the worst
ceil((1 - alpha) S) scenarios of each option at full demand, solves, and adds
the tail rows of the scenarios that the current plan violates most until the
plan meets CVaR <= limit over all S scenarios; the restricted problem is a
relaxation, so that plan is optimal for the full one.  "auto" picks "full"
up to 10 000 scenarios.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pulp
import xarray as xr

from sim.risk import estimators

__all__ = [
    "AllocationProblem",
    "AllocationResult",
    "ConstraintCheck",
    "OptimizationError",
    "empirical_cvar",
    "evaluate_plan",
    "frontier",
    "solve",
]

FULL_METHOD_MAX_SCENARIOS = 10_000
METHODS = ("auto", "full", "cutting_plane")
SOLVERS = ("highs", "cbc")

# A cutting-plane plan is accepted once its CVaR over all scenarios exceeds
# the limit by at most this fraction, so it matches the full LP's optimum
# to well within the 1e-6 relative that results are quoted to.
_FEASIBILITY_RTOL = 1e-8
_BINDING_RTOL = 1e-7
# Out-of-sample checks compare estimates with limits the LP met only to its
# feasibility tolerance.
_HOLDS_RTOL = 1e-6
_TIE_BREAK = 1e-6
# Options whose optima differ by less than this are tied; the first listed wins.
_OPTION_TIE_RTOL = 1e-9
_REPORTED_ROWS = ("budget", "pool_cvar", "guarantor_cvar", "guarantor_leverage", "pool_leverage")
_LP_UNSAFE = re.compile(r"[^\w.|]")


class OptimizationError(ValueError):
    """No plan was found; `status` says why ("infeasible", "unbounded", "not_solved")."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


def _array(name: str, value, shape: tuple[int, ...], what: str, *, lower: float | None = 0.0,
           upper: float | None = None) -> np.ndarray:
    """A read-only float copy of `value`, checked for shape, finiteness and range."""
    try:
        arr = np.array(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of numbers, {what}") from exc
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} ({what}), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite everywhere ({what}); found NaN or inf")
    if lower is not None and arr.size and arr.min() < lower:
        raise ValueError(f"{name} must be >= {lower:g} everywhere ({what}), got a minimum of {arr.min():g}")
    if upper is not None and arr.size and arr.max() > upper:
        raise ValueError(f"{name} must be <= {upper:g} everywhere ({what}), got a maximum of {arr.max():g}")
    arr.setflags(write=False)
    return arr


def _labels(name: str, value) -> tuple[str, ...]:
    labels = tuple(value)
    if not labels:
        raise ValueError(f"{name} must name at least one entry")
    if not all(isinstance(label, str) and label for label in labels):
        raise ValueError(f"{name} must be non-empty strings, got {labels!r}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"{name} must be unique, got {labels!r}")
    return labels


def _scalar(name: str, value, *, low: float, high: float = math.inf, low_open: bool = False,
            high_open: bool = False, allow_inf: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc
    left = "(" if low_open else "["
    right = ")" if high_open or (high == math.inf and not allow_inf) else "]"
    allowed = f"{left}{low:g}, {high:g}{right}"
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(f"{name} must be in {allowed}, got {value!r}")
    if math.isinf(v) and v > 0:
        return v
    if v < low or (low_open and v == low) or v > high or (high_open and v == high):
        raise ValueError(f"{name} must be in {allowed}, got {value!r}")
    return v


@dataclass(frozen=True, eq=False)
class AllocationProblem:
    """Scenario arrays and limits for one allocation decision (money in yuan).

    Per-yuan arrays have shape (n_scenarios, n_segments, n_options); scenarios
    are equally likely paths.  Infinite `guarantor_capital` disables the
    guarantor rows; infinite leverages disable the leverage rows.
    `firms_weight` (firms per yuan) breaks ties in favour of more firms, and
    `min_credit` (yuan per segment) is a floor that can make the problem
    infeasible.  Arrays are copied and made read-only.
    """

    segments: tuple[str, ...]
    options: tuple[str, ...]
    pool_claims: np.ndarray
    guarantor_claims: np.ndarray
    bank_loss: np.ndarray
    other_fiscal_cost: np.ndarray
    guarantee_share: np.ndarray
    demand: np.ndarray
    bank_margin: np.ndarray
    budget: float
    alpha: float = 0.99
    guarantor_capital: float = math.inf
    guarantor_leverage: float = math.inf
    pool_leverage: float = math.inf
    firms_weight: np.ndarray | None = None
    min_credit: np.ndarray | None = None

    def __post_init__(self) -> None:
        put = object.__setattr__
        segments = _labels("segments", self.segments)
        options = _labels("options", self.options)
        put(self, "segments", segments)
        put(self, "options", options)
        n_seg, n_opt = len(segments), len(options)
        shape = np.shape(self.pool_claims)
        if len(shape) != 3 or shape[0] < 1 or shape[1:] != (n_seg, n_opt):
            raise ValueError(
                f"pool_claims must have shape (n_scenarios >= 1, n_segments={n_seg}, n_options={n_opt}), "
                f"got {shape}")
        cube = f"per yuan lent, shape (n_scenarios, n_segments, n_options) = {shape}"
        for name in ("pool_claims", "guarantor_claims", "bank_loss", "other_fiscal_cost"):
            put(self, name, _array(name, getattr(self, name), shape, cube))
        put(self, "guarantee_share", _array("guarantee_share", self.guarantee_share, (n_seg, n_opt),
                                            "share of principal per segment and option", upper=1.0))
        put(self, "demand", _array("demand", self.demand, (n_seg,), "yuan per segment"))
        put(self, "bank_margin", _array("bank_margin", self.bank_margin, (n_seg,),
                                        "bank margin per yuan lent per segment", lower=None))
        if self.firms_weight is not None:
            put(self, "firms_weight", _array("firms_weight", self.firms_weight, (n_seg,),
                                             "firms per yuan lent per segment"))
        if self.min_credit is not None:
            put(self, "min_credit", _array("min_credit", self.min_credit, (n_seg,), "yuan per segment"))
        put(self, "budget", _scalar("budget", self.budget, low=0.0))
        put(self, "alpha", _scalar("alpha", self.alpha, low=0.0, high=1.0, low_open=True, high_open=True))
        put(self, "guarantor_capital", _scalar("guarantor_capital", self.guarantor_capital, low=0.0,
                                               allow_inf=True))
        for name in ("guarantor_leverage", "pool_leverage"):
            put(self, name, _scalar(name, getattr(self, name), low=0.0, low_open=True, allow_inf=True))

    @property
    def n_scenarios(self) -> int:
        return self.pool_claims.shape[0]

    @property
    def n_segments(self) -> int:
        return len(self.segments)

    @property
    def n_options(self) -> int:
        return len(self.options)

    @property
    def has_guarantor_limits(self) -> bool:
        return math.isfinite(self.guarantor_capital)


@dataclass(frozen=True, eq=False)
class AllocationResult:
    """An optimal (or, past a time limit, best found) plan.

    objective, pool_size, credit and pool_cvar are in yuan; credit_by_option
    is (n_segments, n_options) yuan.  pool_cvar is the Rockafellar-Uryasev
    zeta + mean excess over zeta / (1 - alpha) of the plan's pool claims over
    all scenarios, at the minimising zeta: CVaR_alpha, equal to pool_size when
    binding["pool_cvar"] (the LP's own zeta is not unique while the row is
    slack, so it is not what is reported).  shadow_prices are d credit / d rhs
    (yuan of credit per yuan for budget, capital and demand rows) from the LP
    with the option fixed; they include the tie-break weights (below 1e-6 per
    yuan).  n_cuts counts the scenario rows in the final model (all of them
    for "full").  build_seconds is spent writing the PuLP model (cuts
    included), solve_seconds in the solver calls, loading the model into the
    solver included.
    """

    status: str
    objective: float
    pool_size: float
    credit: dict[str, float]
    credit_by_option: np.ndarray
    chosen_option: str
    pool_cvar: float
    binding: dict[str, bool]
    shadow_prices: dict[str, float]
    build_seconds: float
    solve_seconds: float
    n_cuts: int
    method: str
    solver: str
    segments: tuple[str, ...]
    options: tuple[str, ...]


@dataclass(frozen=True)
class ConstraintCheck:
    """One limit re-estimated on fresh scenarios: estimate and its standard error vs the limit, yuan."""

    estimate: float
    standard_error: float
    limit: float
    holds: bool


def empirical_cvar(losses: np.ndarray, alpha: float) -> float:
    """Rockafellar-Uryasev CVaR_alpha of a 1-D sample of equally likely losses (same units as losses)."""
    alpha = _scalar("alpha", alpha, low=0.0, high=1.0, low_open=True, high_open=True)
    arr = np.asarray(losses, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"losses must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("losses must be finite")
    return estimators.cvar_and_var(arr, alpha)[0]


def _bank_participates(problem: AllocationProblem) -> np.ndarray:
    """(n_segments, n_options): the bank's expected retained loss does not exceed its margin."""
    return problem.bank_loss.mean(axis=0) <= problem.bank_margin[:, None]


def _lp_names(labels: Sequence[str]) -> list[str]:
    """Labels made legal in LP files, kept distinct."""
    names = [_LP_UNSAFE.sub("_", label) for label in labels]
    if len(set(names)) < len(names):
        names = [f"{name}_{i}" for i, name in enumerate(names)]
    return names


def _constraint(pairs, sense: int, rhs: float, name: str) -> pulp.LpConstraint:
    """A named row from (variable, coefficient) pairs, zero terms left out so the LP file stays readable."""
    expr = pulp.LpAffineExpression([(v, c) for v, c in pairs if c != 0])
    return pulp.LpConstraint(expr, sense=sense, rhs=rhs, name=name)


class _Tail:
    """The Rockafellar-Uryasev rows for CVaR_alpha(claims . x) <= limit, grown scenario by scenario."""

    def __init__(self, form: _Formulation, label: str, claims: np.ndarray,
                 limit: pulp.LpAffineExpression) -> None:
        p = form.problem
        self.form = form
        self.label = label
        self.claims = np.ascontiguousarray(claims.reshape(p.n_scenarios, -1)[:, form.active])
        self.limit = limit
        self.alpha = p.alpha
        self.weight = 1.0 / ((1.0 - p.alpha) * p.n_scenarios)
        self.batch = max(1, math.ceil((1.0 - p.alpha) * p.n_scenarios))
        self.zeta = form.lp.add_variable(f"{label}_var", lowBound=0)
        self.excess: dict[int, pulp.LpVariable] = {}
        self.row = _constraint([(self.zeta, 1.0)] + [(v, -c) for v, c in limit.items()],
                               pulp.LpConstraintLE, limit.constant, f"{label}_cvar")
        form.lp.addConstraint(self.row)

    def add(self, scenarios) -> None:
        lp, x_active = self.form.lp, self.form.x_active
        for w in scenarios:
            w = int(w)
            u = lp.add_variable(f"{self.label}_excess({w})", lowBound=0)
            row = self.claims[w]
            nz = np.flatnonzero(row)
            pairs = [(u, 1.0), (self.zeta, 1.0)]
            pairs.extend(zip([x_active[j] for j in nz], (-row[nz]).tolist()))
            lp.addConstraint(pulp.LpConstraint(pulp.LpAffineExpression(pairs), sense=pulp.LpConstraintGE,
                                               rhs=0.0, name=f"{self.label}_tail({w})"))
            self.row.expr[u] = self.weight
            self.excess[w] = u

    def seed(self) -> None:
        """Rows for the worst scenarios of each option when every segment gets its full demand."""
        p = self.form.problem
        plans = np.zeros((p.n_options, p.n_segments, p.n_options))
        for k in range(p.n_options):
            plans[k, :, k] = p.demand
        chosen: set[int] = set()
        for plan in plans.reshape(p.n_options, -1)[:, self.form.active]:
            losses = self.claims @ plan
            worst = np.argsort(losses)[::-1][: self.batch]
            chosen.update(int(w) for w in worst if losses[w] > 0)
        self.add(sorted(chosen))

    def cvar(self, x_active: np.ndarray) -> float:
        """CVaR_alpha of the claims under plan x over all scenarios (zeta at its minimiser), yuan."""
        return estimators.cvar_and_var(self.claims @ x_active, self.alpha)[0]

    def binding(self, x_active: np.ndarray) -> bool:
        """The plan's CVaR reaches the limit (the LP's own zeta can leave the row tight when it is not)."""
        limit = self.limit.value() or 0.0
        return bool(self.cvar(x_active) >= limit - _BINDING_RTOL * max(1.0, abs(limit)))

    def separate(self, x_active: np.ndarray) -> int:
        """Add the rows the plan violates most at the LP's zeta; 0 when its CVaR meets the limit."""
        limit = self.limit.value() or 0.0
        if self.cvar(x_active) <= limit + _FEASIBILITY_RTOL * max(1.0, abs(limit)):
            return 0
        violation = self.claims @ x_active - (self.zeta.varValue or 0.0)
        violation[list(self.excess)] = -math.inf
        candidates = np.flatnonzero(violation > 0)
        worst = candidates[np.argsort(violation[candidates])[::-1][: self.batch]]
        self.add(np.sort(worst))
        return worst.size


class _Formulation:
    """One PuLP model of the problem.

    goal "credit" is the allocation model; "fiscal_outlay" (minimise
    P + expected other fiscal cost, budget row dropped) and
    "guarantor_capital" (minimise the capital the guarantor rows need) serve
    to explain infeasibility.
    """

    def __init__(self, problem: AllocationProblem, goal: str = "credit",
                 relax: frozenset[str] = frozenset(), all_scenarios: bool = True) -> None:
        started = time.perf_counter()
        self.solve_seconds = 0.0
        p = self.problem = problem
        lp = self.lp = pulp.LpProblem(f"riskpool_{goal}", pulp.LpMinimize)
        segs, opts = _lp_names(p.segments), _lp_names(p.options)
        allowed = _bank_participates(p)
        self.x = np.array([[lp.add_variable(f"credit({s},{o})", lowBound=0, upBound=None if ok else 0)
                            for o, ok in zip(opts, row)] for s, row in zip(segs, allowed)], dtype=object)
        self.y = [lp.add_variable(f"option({o})", cat=pulp.LpBinary) for o in opts]
        self.pool = lp.add_variable("pool_size", lowBound=0)
        x_flat = self.x.ravel().tolist()
        self.active = np.flatnonzero(allowed.ravel())
        self.x_active = [x_flat[j] for j in self.active]
        expected_cost = p.other_fiscal_cost.mean(axis=0).ravel()

        self.capital: pulp.LpVariable | None = None
        if goal == "credit":
            per_yuan = np.ones(p.n_segments)
            if p.firms_weight is not None and p.firms_weight.max() > 0:
                per_yuan = per_yuan + _TIE_BREAK * p.firms_weight / p.firms_weight.max()
            objective = [*zip(x_flat, (-np.repeat(per_yuan, p.n_options)).tolist()), (self.pool, _TIE_BREAK)]
        elif goal == "fiscal_outlay":
            objective = [(self.pool, 1.0), *zip(x_flat, expected_cost.tolist())]
        else:
            self.capital = lp.add_variable("guarantor_capital", lowBound=0)
            objective = [(self.capital, 1.0)]
        lp += pulp.LpAffineExpression(objective, name=f"negative_{goal}" if goal == "credit" else goal)

        self.rows: dict[str, pulp.LpConstraint] = {}
        self._add("one_option", [(y, 1.0) for y in self.y], pulp.LpConstraintEQ, 1.0, "one_option")
        for i, s in enumerate(p.segments):
            for j, o in enumerate(p.options):
                if allowed[i, j]:
                    self._add(f"demand[{s}][{o}]", [(self.x[i, j], 1.0), (self.y[j], -p.demand[i])],
                              pulp.LpConstraintLE, 0.0, f"demand({segs[i]},{opts[j]})")
            if p.min_credit is not None and p.min_credit[i] > 0:
                self._add(f"min_credit[{s}]", [(v, 1.0) for v in self.x[i]], pulp.LpConstraintGE,
                          p.min_credit[i], f"min_credit({segs[i]})")
        if "budget" not in relax:
            self._add("budget", [(self.pool, 1.0), *zip(x_flat, expected_cost.tolist())],
                      pulp.LpConstraintLE, p.budget, "budget")
        if math.isfinite(p.pool_leverage):
            self._add("pool_leverage", [*((v, 1.0) for v in x_flat), (self.pool, -p.pool_leverage)],
                      pulp.LpConstraintLE, 0.0, "pool_leverage")

        self.tails = [_Tail(self, "pool", p.pool_claims, pulp.LpAffineExpression([(self.pool, 1.0)]))]
        self.rows["pool_cvar"] = self.tails[0].row
        self.tail_rows = {"pool_cvar": self.tails[0]}
        if p.has_guarantor_limits and "guarantor" not in relax:
            if self.capital is None:
                capital = pulp.LpAffineExpression(constant=p.guarantor_capital)
            else:
                capital = pulp.LpAffineExpression([(self.capital, 1.0)])
            self.tails.append(_Tail(self, "guarantor", p.guarantor_claims, capital))
            self.rows["guarantor_cvar"] = self.tails[1].row
            self.tail_rows["guarantor_cvar"] = self.tails[1]
            if math.isfinite(p.guarantor_leverage):
                pairs = [*zip(x_flat, p.guarantee_share.ravel().tolist()),
                         *((v, -p.guarantor_leverage * c) for v, c in capital.items())]
                self._add("guarantor_leverage", pairs, pulp.LpConstraintLE,
                          p.guarantor_leverage * capital.constant, "guarantor_leverage")
        for tail in self.tails:
            if all_scenarios:
                tail.add(range(p.n_scenarios))
            else:
                tail.seed()
        self.build_seconds = time.perf_counter() - started

    def _add(self, label: str, pairs, sense: int, rhs: float, lp_name: str) -> None:
        row = _constraint(pairs, sense, rhs, lp_name)
        self.lp.addConstraint(row)
        self.rows[label] = row

    @property
    def n_cuts(self) -> int:
        return sum(len(tail.excess) for tail in self.tails)

    def credit_values(self) -> np.ndarray:
        """(n_segments, n_options) yuan; solvers may return -1e-12 for a zero."""
        values = np.array([[v.varValue or 0.0 for v in row] for row in self.x])
        return np.maximum(values, 0.0)

    def fix_option(self, k: int) -> None:
        """Adopt option k: the MILP becomes the LP in the remaining variables."""
        for j, y in enumerate(self.y):
            y.cat = pulp.LpContinuous
            y.lowBound = y.upBound = float(j == k)

    def solve(self, solver: str, deadline: float | None) -> tuple[str, str]:
        """(status, solver used) after one solve; CBC steps in when HiGHS is missing or fails."""
        started = time.perf_counter()
        try:
            left = _remaining(deadline)
            if left is not None and left <= 0:
                return "not_solved", solver
            if solver == "highs":
                highs = pulp.HiGHS(msg=False, timeLimit=left)
                if highs.available():
                    try:
                        self.lp.solve(highs)
                    except pulp.PulpSolverError:
                        pass
                    else:
                        if self.lp.status != pulp.LpStatusNotSolved:
                            return _status(self.lp), "HiGHS"
                left = _remaining(deadline)
                if left is not None and left <= 0:
                    return "not_solved", solver
            # Pinned to PuLP < 4, where the bundled CBC is the documented fallback.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                cbc = pulp.PULP_CBC_CMD(msg=False, timeLimit=left)
            self.lp.solve(cbc)
            return _status(self.lp), "CBC"
        finally:
            self.solve_seconds += time.perf_counter() - started

    def optimise(self, solver: str, deadline: float | None) -> tuple[str, str]:
        """Solve, adding violated tail rows until the plan meets every CVaR limit over all scenarios."""
        while True:
            status, used = self.solve(solver, deadline)
            if status != "optimal":
                return status, used
            started = time.perf_counter()
            x_active = self.credit_values().ravel()[self.active]
            added = sum(tail.separate(x_active) for tail in self.tails)
            self.build_seconds += time.perf_counter() - started
            if added == 0:
                return status, used

    def optimise_over_options(self, solver: str, deadline: float | None) -> tuple[str, str, _Solution | None]:
        """Solve the MILP by enumerating its binaries (see the module docstring).

        Returns (status, solver used, best solution or None).  Tail rows added
        for one option are valid for all, so they carry over.  The status is
        "optimal" when every option was solved or proven infeasible,
        "feasible" when some were cut short by the time limit, else the first
        failure's.
        """
        statuses, best, used = [], None, solver
        for k in range(self.problem.n_options):
            self.fix_option(k)
            status, used = self.optimise(solver, deadline)
            statuses.append(status)
            if status == "optimal":
                solution = self.snapshot(k)
                if best is None or solution.value < best.value - _OPTION_TIE_RTOL * max(1.0, abs(best.value)):
                    best = solution
        if best is None:
            failures = [s for s in statuses if s != "infeasible"]
            return (failures[0] if failures else "infeasible"), used, None
        proven = all(s in ("optimal", "infeasible") for s in statuses)
        return ("optimal" if proven else "feasible"), used, best

    def snapshot(self, k: int) -> _Solution:
        """The solved LP with option k adopted, read out before the next option overwrites it."""
        p = self.problem
        credit = self.credit_values()
        credit.setflags(write=False)
        x_active = credit.ravel()[self.active]
        rows = {name: name for name in _REPORTED_ROWS if name in self.rows}
        for s in p.segments:
            rows[f"demand[{s}]"] = f"demand[{s}][{p.options[k]}]"
            if f"min_credit[{s}]" in self.rows:
                rows[f"min_credit[{s}]"] = f"min_credit[{s}]"
        binding, prices = {}, {}
        for label, key in rows.items():
            row = self.rows.get(key)
            binding[label] = row is not None and self._binding(key, x_active)
            # + 0.0 turns the -0.0 of a zero dual into 0.0
            prices[label] = 0.0 if row is None else (math.nan if row.pi is None else -float(row.pi) + 0.0)
        return _Solution(
            option=k,
            value=self.lp.objective.value(),
            credit=credit,
            pool=self.pool.varValue or 0.0,
            capital=None if self.capital is None else self.capital.varValue or 0.0,
            pool_cvar=self.tails[0].cvar(x_active),
            binding=binding,
            shadow_prices=prices,
        )

    def _binding(self, label: str, x_active: np.ndarray) -> bool:
        """The row holds with equality, to a tolerance relative to its terms."""
        if label in self.tail_rows:
            return self.tail_rows[label].binding(x_active)
        row = self.rows[label]
        excess = row.value() or 0.0
        slack = excess if row.sense == pulp.LpConstraintGE else -excess
        activity = sum(abs(c * (v.varValue or 0.0)) for v, c in row.items())
        return bool(slack <= _BINDING_RTOL * max(1.0, abs(row.constant), activity))


@dataclass(frozen=True, eq=False)
class _Solution:
    """One option's LP optimum: solver objective, credit (n_segments, n_options) and pool in yuan,
    the capital the guarantor rows needed (goal "guarantor_capital"), and the reported rows."""

    option: int
    value: float
    credit: np.ndarray
    pool: float
    capital: float | None
    pool_cvar: float
    binding: dict[str, bool]
    shadow_prices: dict[str, float]


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.perf_counter()


def _status(lp: pulp.LpProblem) -> str:
    """Every model handed to a solver is an LP (the option is fixed), so an answer short of
    optimal -- a time limit -- carries no usable plan."""
    if lp.status == pulp.LpStatusOptimal:
        return "optimal" if lp.sol_status == pulp.LpSolutionOptimal else "not_solved"
    return {pulp.LpStatusInfeasible: "infeasible", pulp.LpStatusUnbounded: "unbounded",
            pulp.LpStatusUndefined: "undefined"}.get(lp.status, "not_solved")


def _resolve_method(method: str, n_scenarios: int) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "auto":
        return "full" if n_scenarios <= FULL_METHOD_MAX_SCENARIOS else "cutting_plane"
    return method


def _unreachable_floor(problem: AllocationProblem) -> str | None:
    """Why min_credit cannot be met whatever the money, read off the data; None if it can be."""
    if problem.min_credit is None:
        return None
    floor, segs = problem.min_credit, problem.segments
    for i in np.flatnonzero(floor > problem.demand):
        return (f"min_credit for segment {segs[i]!r} is {floor[i]:.4g} yuan, above its demand cap "
                f"of {problem.demand[i]:.4g} yuan")
    needed = floor > 0
    allowed = _bank_participates(problem)
    if needed.any() and not allowed[needed].all(axis=0).any():
        mean_loss = problem.bank_loss.mean(axis=0)
        why = []
        for k, option in enumerate(problem.options):
            i = int(np.flatnonzero(needed & ~allowed[:, k])[0])
            why.append(f"under option {option!r} the bank's mean retained loss on segment {segs[i]!r} is "
                       f"{mean_loss[i, k]:.4g} per yuan, above its margin of {problem.bank_margin[i]:.4g}")
        return ("the bank participation rule leaves no sharing option under which the bank lends to every "
                "segment with a minimum credit: " + "; ".join(why))
    return None


def _relaxed_optimum(problem: AllocationProblem, goal: str, relax: frozenset[str], method: str,
                     solver: str, deadline: float | None) -> tuple[str, _Solution | None]:
    form = _Formulation(problem, goal=goal, relax=relax, all_scenarios=method == "full")
    status, _, best = form.optimise_over_options(solver, deadline)
    return status, best


def _explain_infeasible(problem: AllocationProblem, method: str, solver: str,
                        deadline: float | None) -> OptimizationError:
    """Name the constraint set that makes the problem infeasible, by re-solving relaxations."""
    alpha = f"CVaR_{problem.alpha:g}"
    reasons = []
    status, outlay = _relaxed_optimum(problem, "fiscal_outlay", frozenset({"budget"}), method, solver,
                                      deadline)
    statuses = [status]
    if outlay is not None:
        total = outlay.pool + float((outlay.credit * problem.other_fiscal_cost.mean(axis=0)).sum())
        levered = " and the pool leverage limit" if outlay.binding.get("pool_leverage") else ""
        floor = problem.min_credit.sum() if problem.min_credit is not None else 0.0
        reasons.append(
            f"budget {problem.budget:.4g} yuan is below the smallest fiscal outlay that lends the minimum "
            f"credit of {floor:.4g} yuan: {total:.4g} yuan, i.e. a pool of {outlay.pool:.4g} yuan (enough "
            f"for {alpha} of pool claims{levered}) plus {total - outlay.pool:.4g} yuan of expected other "
            f"fiscal cost")
    if problem.has_guarantor_limits:
        # With the budget met, only the guarantor rows can be at fault; without it, they may be as well.
        relax = frozenset() if outlay is not None else frozenset({"budget"})
        status, capital = _relaxed_optimum(problem, "guarantor_capital", relax, method, solver, deadline)
        statuses.append(status)
        if capital is not None and capital.capital > problem.guarantor_capital:
            leverage = (f" and guarantees within {problem.guarantor_leverage:g} x capital"
                        if math.isfinite(problem.guarantor_leverage) else "")
            reasons.append(
                f"guarantor capital {problem.guarantor_capital:.4g} yuan is below the {capital.capital:.4g} "
                f"yuan needed to carry the minimum credit ({alpha} of guarantor payouts{leverage})")
    if not reasons:
        why = ("the time limit ran out before the cause was found" if "not_solved" in statuses
               else "no single constraint set (budget, guarantor limits) explains it")
        return OptimizationError(f"the solver reports the problem infeasible, but {why}", "infeasible")
    return OptimizationError("no plan meets the minimum credit: " + "; alternatively, ".join(reasons),
                             "infeasible")


def _raise_unless_solved(status: str, problem: AllocationProblem, method: str, solver: str,
                         deadline: float | None, time_limit: float | None) -> None:
    if status in ("optimal", "feasible"):
        return
    if status == "infeasible":
        raise _explain_infeasible(problem, method, solver, deadline)
    if status == "unbounded":
        raise OptimizationError("the solver reports the problem unbounded, which finite demand and budget "
                                "rule out: check the scenario arrays for extreme values", status)
    within = f" within time_limit={time_limit:g} s" if time_limit is not None else ""
    raise OptimizationError(f"no plan found{within}: the solver stopped with status {status!r}", status)


def solve(problem: AllocationProblem, method: str = "auto", solver: str = "highs",
          time_limit: float | None = None) -> AllocationResult:
    """Maximise credit supplied (yuan) subject to the model in the module docstring.

    method: "full", "cutting_plane" or "auto"; solver: "highs" (CBC if HiGHS
    is unavailable or fails) or "cbc"; time_limit: seconds for the whole
    call, checked between solves and passed to the solver (building the
    model and loading it into the solver are not interrupted, so a call can
    overrun by about one load).  Raises OptimizationError when no plan is
    found, naming the constraint set responsible when it is infeasible.
    """
    method = _resolve_method(method, problem.n_scenarios)
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if time_limit is not None:
        time_limit = _scalar("time_limit", time_limit, low=0.0, low_open=True)
    deadline = None if time_limit is None else time.perf_counter() + time_limit
    reason = _unreachable_floor(problem)
    if reason is not None:
        raise OptimizationError("no plan meets the minimum credit: " + reason, "infeasible")

    form = _Formulation(problem, all_scenarios=method == "full")
    status, used, best = form.optimise_over_options(solver, deadline)
    _raise_unless_solved(status, problem, method, solver, deadline, time_limit)
    return AllocationResult(
        status=status,
        objective=float(best.credit.sum()),
        pool_size=best.pool,
        credit={s: float(c) for s, c in zip(problem.segments, best.credit.sum(axis=1))},
        credit_by_option=best.credit,
        chosen_option=problem.options[best.option],
        pool_cvar=best.pool_cvar,
        binding=best.binding,
        shadow_prices=best.shadow_prices,
        build_seconds=form.build_seconds,
        solve_seconds=form.solve_seconds,
        n_cuts=form.n_cuts,
        method=method,
        solver=used,
        segments=problem.segments,
        options=problem.options,
    )


def _holds(estimate: float, limit: float) -> bool:
    return bool(estimate <= limit + _HOLDS_RTOL * max(1.0, abs(limit))) if math.isfinite(limit) else True


def _tail_check(losses: np.ndarray, alpha: float, limit: float) -> ConstraintCheck:
    """CVaR_alpha of the plan's losses with its standard error (sim.risk.estimators.cvar) vs `limit`."""
    cvar, se = estimators.cvar(losses, alpha)
    return ConstraintCheck(cvar, se, limit, _holds(cvar, limit))


def evaluate_plan(result: AllocationResult,
                  problem_out_of_sample: AllocationProblem) -> dict[str, ConstraintCheck]:
    """Re-check a plan on fresh scenarios (another seed), yuan.

    Keys: "pool_cvar" (CVaR_alpha of pool claims vs the pool size),
    "guarantor_cvar" (CVaR_alpha of guarantor payouts vs its capital; holds
    trivially when capital is infinite) and "budget" (pool plus expected other
    fiscal cost vs the budget, with standard error sd / sqrt(n)).  `holds`
    compares the point estimate with the limit.
    """
    p = problem_out_of_sample
    if p.segments != result.segments or p.options != result.options:
        raise ValueError("problem_out_of_sample must have the plan's segments and options "
                         f"({result.segments}, {result.options}), got ({p.segments}, {p.options})")
    x = result.credit_by_option.ravel()
    n = p.n_scenarios
    mean_cost, cost_se = estimators.mean(result.pool_size + p.other_fiscal_cost.reshape(n, -1) @ x)
    return {
        "pool_cvar": _tail_check(p.pool_claims.reshape(n, -1) @ x, p.alpha, result.pool_size),
        "guarantor_cvar": _tail_check(p.guarantor_claims.reshape(n, -1) @ x, p.alpha, p.guarantor_capital),
        "budget": ConstraintCheck(float(mean_cost), float(cost_se), p.budget, _holds(mean_cost, p.budget)),
    }


def frontier(problem: AllocationProblem, budgets: Sequence[float], method: str = "auto",
             solver: str = "highs") -> xr.Dataset:
    """Optimal plans over a range of budgets (yuan), labelled by `budget` and `segment`.

    Budgets with no plan keep NaN values, their status ("infeasible", ...) and
    an empty chosen_option.
    """
    values = np.asarray(budgets, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("budgets must be a non-empty 1-D sequence of yuan amounts, "
                         f"got shape {values.shape}")
    n = values.size
    supplied, pool, cvar, price = (np.full(n, np.nan) for _ in range(4))
    credit = np.full((n, problem.n_segments), np.nan)
    status, chosen = [""] * n, [""] * n
    for i, budget in enumerate(values):
        try:
            result = solve(dataclasses.replace(problem, budget=budget), method=method, solver=solver)
        except OptimizationError as exc:
            status[i] = exc.status
            continue
        status[i], chosen[i] = result.status, result.chosen_option
        supplied[i], pool[i], cvar[i] = result.objective, result.pool_size, result.pool_cvar
        price[i] = result.shadow_prices["budget"]
        credit[i] = [result.credit[s] for s in problem.segments]
    yuan = {"units": "yuan"}
    return xr.Dataset(
        {
            "credit_supplied": ("budget", supplied, {**yuan, "long_name": "total credit supplied"}),
            "pool_size": ("budget", pool, {**yuan, "long_name": "risk-compensation pool"}),
            "pool_cvar": ("budget", cvar, {**yuan, "long_name": f"CVaR_{problem.alpha:g} of pool claims"}),
            "budget_shadow_price": ("budget", price, {"units": "yuan credit per yuan budget",
                                                      "long_name": "d credit / d budget"}),
            "credit": (("budget", "segment"), credit, {**yuan, "long_name": "credit by segment"}),
            "status": ("budget", np.array(status, dtype=str)),
            "chosen_option": ("budget", np.array(chosen, dtype=str)),
        },
        coords={"budget": ("budget", values, yuan), "segment": list(problem.segments)},
        attrs={"alpha": problem.alpha, "method": method, "n_scenarios": problem.n_scenarios,
               "description": "credit supplied against fiscal budget"},
    )
