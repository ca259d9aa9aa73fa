"""Credit allocation and scheme sizing: a scenario MILP in which the budget
buys pool, guarantor capital and a reserve, and every public payer is funded
at the tail.

The simulation gives, per equally likely scenario path w = 1..S and per yuan
lent to segment s under sharing option k, what each party pays.  This module
takes those arrays (it never runs a simulation) and chooses how much credit
to place where, which sharing option each group of segments adopts, and how
the budget is split.

Sets and data (money in yuan; "per yuan" means per yuan of credit lent)
------------------------------------------------------------------------
    s in segments, g in groups (g(s) the group of segment s), k in options, w = 1..S
    c^P[w,s,k]  pool claims per yuan                     (pool_claims)
    c^G[w,s,k]  guarantor payouts per yuan               (guarantor_claims)
    c^j[w,s,k]  payouts of capped payer j per yuan       (capped_claims[j]: re-guarantor, insurer, appraiser)
    c^F[w,s,k]  pay-as-you-go public costs per yuan      (public_costs: the government's direct share,
                interest subsidies, guarantee compensation, bank rewards)
    l[w,s,k]    bank retained loss per yuan              (bank_loss)
    g[s,k]      share of principal guaranteed            (guarantee_share)
    D[s] demand cap, M[s] minimum credit, m[s] bank margin per yuan, n[s] firms per yuan
    B budget, C0 guarantor capital today, K_j capital of capped payer j, lev_G, lev_P leverages,
    X total-credit cap, L loss budget, alpha tail level; bars P_max, dC_max, R_max on the levers
    mean_w(.) = (1/S) sum_w (.)

Variables
---------
    x[s,k] >= 0        credit to segment s under option k, yuan        credit(s,k)
    y[g,k] in {0,1}    group g adopts option k                         option(g,k)
    0 <= P <= P_max    risk-compensation pool, yuan                    pool_size
    0 <= dC <= dC_max  capital injected into the guarantor, yuan       capital_injection
    0 <= R <= R_max    reserve for pay-as-you-go public costs, yuan    reserve
    zeta_t >= 0, u_t[w] >= 0   CVaR auxiliaries of tail t              <t>_var, <t>_excess(w)

Model
-----
    maximise    sum_{s,k} x[s,k]  (or firms: sum n[s] x[s,k])  +  tie-breaks (below)
    subject to
      one_option(g)       sum_k y[g,k] = 1
      demand(s,k)         x[s,k] <= D[s] y[g(s),k]
      min_credit(s)       sum_k x[s,k] >= M[s]
      bank participation  x[s,k] = 0   if  mean_w l[w,s,k] > m[s]   (an upper bound of 0)
      budget              P + dC + R <= B
      pool_cvar           CVaR_alpha(sum c^P x) <= P
      guarantor_cvar      CVaR_alpha(sum c^G x) <= C0 + dC
      guarantor_leverage  sum g x <= lev_G (C0 + dC)                        (lev_G finite)
      <j>_cvar            CVaR_alpha(sum c^j x) <= K_j                      (each capped payer)
      public_costs_cvar   CVaR_alpha(sum c^F x) <= R
      loss_budget         sum mean_w(c^P + c^G + sum_j c^j + c^F) x <= L   (L finite)
      pool_leverage       sum x <= lev_P P                                  (lev_P finite)
      max_credit          sum x <= X                                        (X finite)

Each CVaR row is the Rockafellar-Uryasev pair
    zeta_t + sum_w u_t[w] / ((1 - alpha_t) S) <= limit_t,   u_t[w] >= claims_t[w] . x - zeta_t,
with claims_t scaled by a factor tail_scale[t] >= 1 and alpha_t = tail_alpha[t]
(default 1 and alpha): the back-off of a verified plan tightens a row this way.
Bounding zeta below by 0 loses nothing (claims are non-negative, so the
minimising zeta, the VaR, is too) and keeps a cutting-plane master bounded.
A payer with unlimited capital and no budget line would be a free lunch: the
problem refuses one (`unfunded_payers`), and the scenario glue says which key
to set.

Tie-breaks, worth at most 1e-6 of the objective per yuan: more firms (or,
for the firms objective, more credit), then the smallest levers P + dC + R
that carry the plan, so that each lever is what its rows need rather than
whatever the budget leaves.  The reported objective is credit (and firms).

Solving: with one group the K option binaries take K values, so the MILP is
solved exactly by solving the K LPs with y fixed and keeping the best.  With
several groups HiGHS solves the MILP; the LP with the binaries fixed at the
optimum then gives the duals.  A shadow price is d credit / d rhs (the
solver minimises -objective so HiGHS and CBC report duals alike); the price
of guarantor capital today, d credit / d C0, is that of guarantor_cvar plus
lev_G times that of guarantor_leverage.

Methods: "full" writes every scenario row; "cutting_plane" starts from the
worst ceil((1 - alpha) S) scenarios of each option at full demand and adds
the tail rows that the current plan violates most until every CVaR limit
holds over all S scenarios (the restricted problem is a relaxation, so that
plan is optimal for the full one); "auto" picks "full" up to 10 000 scenarios.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pulp
import xarray as xr

from sim.risk import estimators

__all__ = [
    "AllocationProblem",
    "AllocationResult",
    "OptimizationError",
    "empirical_cvar",
    "frontier",
    "solve",
]

FULL_METHOD_MAX_SCENARIOS = 10_000
METHODS = ("auto", "full", "cutting_plane")
SOLVERS = ("highs", "cbc")
OBJECTIVES = ("credit", "firms")
CAPPED_PAYERS = ("reguarantor", "insurer", "appraiser")
LEVERS = ("pool", "capital_injection", "reserve")

# A cutting-plane plan is accepted once its CVaR over all scenarios exceeds
# the limit by at most this fraction, so it matches the full LP's optimum
# to well within the 1e-6 relative that results are quoted to.
_FEASIBILITY_RTOL = 1e-8
_BINDING_RTOL = 1e-7
_TIE_BREAK = 1e-6
# Options whose optima differ by less than this are tied; the first listed wins.
_OPTION_TIE_RTOL = 1e-9
_LP_UNSAFE = re.compile(r"[^\w.|]")


class OptimizationError(ValueError):
    """No allocation was found; `status` says why ("infeasible", "unbounded", "not_solved", "unfunded")."""

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
    are equally likely paths.  `capped_claims` and `capped_capital` give the
    re-guarantor, insurer and appraiser (whichever an option uses) with their
    finite capital.  `groups` and `group_of` (group index of each segment)
    say which segments must share one option; by default all do.  Infinite
    leverages, caps, loss budget and lever bounds disable their rows.
    `firms_weight` is firms per yuan (the firms objective and the tie-break).
    `tail_scale` and `tail_alpha` tighten tail rows (see the module docstring).
    Arrays are copied and made read-only.
    """

    segments: tuple[str, ...]
    options: tuple[str, ...]
    pool_claims: np.ndarray
    guarantor_claims: np.ndarray
    bank_loss: np.ndarray
    public_costs: np.ndarray
    guarantee_share: np.ndarray
    demand: np.ndarray
    bank_margin: np.ndarray
    budget: float
    alpha: float = 0.99
    guarantor_capital: float = 0.0
    guarantor_leverage: float = math.inf
    pool_leverage: float = math.inf
    capped_claims: dict[str, np.ndarray] = field(default_factory=dict)
    capped_capital: dict[str, float] = field(default_factory=dict)
    max_pool: float = math.inf
    max_capital_injection: float = math.inf
    max_reserve: float = math.inf
    loss_budget: float = math.inf
    max_credit: float = math.inf
    groups: tuple[str, ...] = ("scheme",)
    group_of: np.ndarray | None = None
    objective: str = "credit"
    firms_weight: np.ndarray | None = None
    min_credit: np.ndarray | None = None
    tail_scale: dict[str, float] = field(default_factory=dict)
    tail_alpha: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        put = object.__setattr__
        segments = _labels("segments", self.segments)
        options = _labels("options", self.options)
        put(self, "segments", segments)
        put(self, "options", options)
        n_seg, n_opt = len(segments), len(options)
        shape = np.shape(self.pool_claims)
        if len(shape) != 3 or shape[0] < 1 or shape[1:] != (n_seg, n_opt):
            raise ValueError(f"pool_claims must have shape (n_scenarios >= 1, n_segments={n_seg}, "
                             f"n_options={n_opt}), got {shape}")
        cube = f"per yuan lent, shape (n_scenarios, n_segments, n_options) = {shape}"
        for name in ("pool_claims", "guarantor_claims", "bank_loss", "public_costs"):
            put(self, name, _array(name, getattr(self, name), shape, cube))
        unknown = set(self.capped_claims) - set(CAPPED_PAYERS)
        if unknown or set(self.capped_claims) != set(self.capped_capital):
            raise ValueError(f"capped_claims and capped_capital must name the same payers among "
                             f"{CAPPED_PAYERS}, got {sorted(self.capped_claims)} and "
                             f"{sorted(self.capped_capital)}")
        put(self, "capped_claims", {j: _array(f"capped_claims[{j}]", c, shape, cube)
                                    for j, c in self.capped_claims.items()})
        put(self, "capped_capital", {j: _scalar(f"capped_capital[{j}]", c, low=0.0, allow_inf=True)
                                     for j, c in self.capped_capital.items()})
        put(self, "guarantee_share", _array("guarantee_share", self.guarantee_share, (n_seg, n_opt),
                                            "share of principal per segment and option", upper=1.0))
        put(self, "demand", _array("demand", self.demand, (n_seg,), "yuan per segment"))
        put(self, "bank_margin", _array("bank_margin", self.bank_margin, (n_seg,),
                                        "bank margin per yuan lent per segment", lower=None))
        for name, what in (("firms_weight", "firms per yuan lent per segment"),
                           ("min_credit", "yuan per segment")):
            if getattr(self, name) is not None:
                put(self, name, _array(name, getattr(self, name), (n_seg,), what))
        groups = _labels("groups", self.groups)
        put(self, "groups", groups)
        group_of = np.zeros(n_seg, np.int64) if self.group_of is None else np.array(self.group_of, np.int64)
        if group_of.shape != (n_seg,) or (group_of < 0).any() or (group_of >= len(groups)).any():
            raise ValueError(f"group_of must give each of the {n_seg} segments a group index in "
                             f"[0, {len(groups)}), got {group_of.tolist()}")
        group_of.setflags(write=False)
        put(self, "group_of", group_of)
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.objective == "firms" and self.firms_weight is None:
            raise ValueError("objective 'firms' needs firms_weight (firms per yuan per segment)")
        put(self, "budget", _scalar("budget", self.budget, low=0.0))
        put(self, "alpha", _scalar("alpha", self.alpha, low=0.0, high=1.0, low_open=True, high_open=True))
        put(self, "guarantor_capital", _scalar("guarantor_capital", self.guarantor_capital, low=0.0,
                                               allow_inf=True))
        for name in ("guarantor_leverage", "pool_leverage"):
            put(self, name, _scalar(name, getattr(self, name), low=0.0, low_open=True, allow_inf=True))
        for name in ("max_pool", "max_capital_injection", "max_reserve", "loss_budget", "max_credit"):
            put(self, name, _scalar(name, getattr(self, name), low=0.0, allow_inf=True))
        for name, scale in self.tail_scale.items():
            _scalar(f"tail_scale[{name}]", scale, low=1.0)
        for name, level in self.tail_alpha.items():
            _scalar(f"tail_alpha[{name}]", level, low=0.0, high=1.0, low_open=True, high_open=True)

    @property
    def n_scenarios(self) -> int:
        return self.pool_claims.shape[0]

    @property
    def n_segments(self) -> int:
        return len(self.segments)

    @property
    def n_options(self) -> int:
        return len(self.options)

    def tails(self) -> dict[str, tuple[np.ndarray, float]]:
        """Each tail row's claims cube and its capital today (yuan; the levers add to pool, guarantor,
        reserve)."""
        tails = {"pool": (self.pool_claims, 0.0),
                 "guarantor": (self.guarantor_claims, self.guarantor_capital)}
        tails.update({j: (c, self.capped_capital[j]) for j, c in self.capped_claims.items()})
        tails["public_costs"] = (self.public_costs, 0.0)
        return tails

    def unfunded_payers(self) -> list[tuple[str, str]]:
        """(option, payer) pairs where the option sends claims to a payer with unlimited capital and
        no budget line: a free lunch, refused before solving."""
        found = []
        for name, (claims, capital) in self.tails().items():
            if math.isfinite(capital):
                continue
            for k in np.flatnonzero(claims.max(axis=(0, 1)) > 0):
                found.append((self.options[k], name))
        return found

    def public_loss(self) -> np.ndarray:
        """(n_segments, n_options): expected public net loss per yuan (every public payer and fiscal item)."""
        total = self.pool_claims + self.guarantor_claims + self.public_costs
        if "reguarantor" in self.capped_claims:  # a state fund; insurer and appraiser are private
            total = total + self.capped_claims["reguarantor"]
        return total.mean(axis=0)


@dataclass(frozen=True, eq=False)
class AllocationResult:
    """An optimal (or, past a time limit, best found) allocation.

    Money in yuan: objective (credit supplied), pool_size, capital_injection,
    reserve, credit (by segment), credit_by_option (n_segments, n_options),
    tail_cvar (each tail's CVaR at its level over all scenarios, at the
    minimising zeta), expected_public_loss.  firms: firms served (at today's
    mean loan per segment).  chosen (group -> option).  shadow_prices are
    d credit / d rhs from the LP with the options fixed, tie-breaks included
    (below 1e-6 per yuan); capital_price is d credit / d C0.  n_cuts counts
    the scenario rows in the final model.  build_seconds is spent writing
    the PuLP model (cuts included), solve_seconds in the solver calls.
    """

    status: str
    objective: float
    firms: float
    pool_size: float
    capital_injection: float
    reserve: float
    credit: dict[str, float]
    credit_by_option: np.ndarray
    chosen: dict[str, str]
    tail_cvar: dict[str, float]
    expected_public_loss: float
    binding: dict[str, bool]
    shadow_prices: dict[str, float]
    capital_price: float
    build_seconds: float
    solve_seconds: float
    n_cuts: int
    method: str
    solver: str
    segments: tuple[str, ...]
    options: tuple[str, ...]
    groups: tuple[str, ...]

    @property
    def chosen_option(self) -> str:
        """The option of the whole scheme, or "by group" when groups differ."""
        picked = set(self.chosen.values())
        return next(iter(picked)) if len(picked) == 1 else "by group"

    @property
    def funding(self) -> float:
        return self.pool_size + self.capital_injection + self.reserve


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

    def __init__(self, form: _Formulation, label: str, claims: np.ndarray, alpha: float,
                 limit: pulp.LpAffineExpression) -> None:
        p = form.problem
        self.form = form
        self.label = label
        self.claims = np.ascontiguousarray(claims.reshape(p.n_scenarios, -1)[:, form.active])
        self.limit = limit
        self.alpha = alpha
        self.weight = 1.0 / ((1.0 - alpha) * p.n_scenarios)
        self.batch = max(1, math.ceil((1.0 - alpha) * p.n_scenarios))
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


@dataclass(frozen=True, eq=False)
class _Solution:
    """One solved model read out: objective, credit (n_segments, n_options) and levers in yuan,
    the option index of each group, each tail's CVaR, and the reported rows."""

    choice: tuple[int, ...]
    value: float
    credit: np.ndarray
    levers: dict[str, float]
    tail_cvar: dict[str, float]
    binding: dict[str, bool]
    shadow_prices: dict[str, float]


class _Formulation:
    """One PuLP model of the problem.  goal "credit" is the allocation model;
    "funding" (minimise P + dC + R, budget row dropped, tie-breaks off) explains
    an infeasible budget."""

    def __init__(self, problem: AllocationProblem, goal: str = "credit", all_scenarios: bool = True) -> None:
        started = time.perf_counter()
        self.solve_seconds = 0.0
        p = self.problem = problem
        lp = self.lp = pulp.LpProblem(f"riskpool_{goal}", pulp.LpMinimize)
        segs, opts, grps = _lp_names(p.segments), _lp_names(p.options), _lp_names(p.groups)
        allowed = _bank_participates(p)
        self.x = np.array([[lp.add_variable(f"credit({s},{o})", lowBound=0, upBound=None if ok else 0)
                            for o, ok in zip(opts, row)] for s, row in zip(segs, allowed)], dtype=object)
        self.y = [[lp.add_variable(f"option({g},{o})", cat=pulp.LpBinary) for o in opts] for g in grps]
        bounds = {"pool": p.max_pool, "capital_injection": p.max_capital_injection, "reserve": p.max_reserve}
        self.levers = {name: lp.add_variable(name if name != "pool" else "pool_size", lowBound=0,
                                             upBound=None if math.isinf(b) else b)
                       for name, b in bounds.items()}
        x_flat = self.x.ravel().tolist()
        self.active = np.flatnonzero(allowed.ravel())
        self.x_active = [x_flat[j] for j in self.active]
        lever_pairs = [(v, 1.0) for v in self.levers.values()]
        if goal == "credit":
            firms = (p.firms_weight / p.firms_weight.max()
                     if p.firms_weight is not None and p.firms_weight.max() > 0
                     else np.zeros(p.n_segments))
            main, tie = ((np.ones(p.n_segments), firms) if p.objective == "credit"
                         else (firms, np.ones(p.n_segments)))
            per_yuan = np.repeat(main + _TIE_BREAK * tie, p.n_options)
            lp += pulp.LpAffineExpression([*zip(x_flat, (-per_yuan).tolist()),
                                           *((v, _TIE_BREAK) for v, _ in lever_pairs)],
                                          name=f"negative_{p.objective}")
        else:
            lp += pulp.LpAffineExpression(lever_pairs, name="funding")
        self.rows: dict[str, pulp.LpConstraint] = {}
        self._add_structure(segs, opts, grps, allowed, x_flat)
        if goal == "credit":
            self._add("budget", lever_pairs, pulp.LpConstraintLE, p.budget, "budget")
        self._add_tails(x_flat, all_scenarios)
        self.build_seconds = time.perf_counter() - started

    def _add_structure(self, segs, opts, grps, allowed, x_flat) -> None:
        """Option choice, demand, minimum credit, the credit cap, pool leverage and the loss budget."""
        p, LE = self.problem, pulp.LpConstraintLE
        for g, name in enumerate(grps):
            self._add(f"one_option[{p.groups[g]}]", [(y, 1.0) for y in self.y[g]], pulp.LpConstraintEQ, 1.0,
                      f"one_option({name})")
        for i, s in enumerate(p.segments):
            y = self.y[p.group_of[i]]
            for j, o in enumerate(p.options):
                if allowed[i, j]:
                    self._add(f"demand[{s}][{o}]", [(self.x[i, j], 1.0), (y[j], -p.demand[i])], LE, 0.0,
                              f"demand({segs[i]},{opts[j]})")
            if p.min_credit is not None and p.min_credit[i] > 0:
                self._add(f"min_credit[{s}]", [(v, 1.0) for v in self.x[i]], pulp.LpConstraintGE,
                          p.min_credit[i], f"min_credit({segs[i]})")
        if math.isfinite(p.max_credit):
            self._add("max_credit", [(v, 1.0) for v in x_flat], LE, p.max_credit, "max_credit")
        if math.isfinite(p.pool_leverage):
            self._add("pool_leverage", [*((v, 1.0) for v in x_flat), (self.levers["pool"], -p.pool_leverage)],
                      LE, 0.0, "pool_leverage")
        if math.isfinite(p.loss_budget):
            self._add("loss_budget", list(zip(x_flat, p.public_loss().ravel().tolist())), LE, p.loss_budget,
                      "loss_budget")

    def _add_tails(self, x_flat, all_scenarios: bool) -> None:
        """One CVaR row per payer that any option uses, and the guarantor's leverage."""
        p = self.problem
        self.tails: dict[str, _Tail] = {}
        limits = {"pool": [(self.levers["pool"], 1.0)],
                  "guarantor": [(self.levers["capital_injection"], 1.0)],
                  "public_costs": [(self.levers["reserve"], 1.0)]}
        for name, (claims, capital) in p.tails().items():
            if not claims.any() or math.isinf(capital):
                continue  # unused; an unlimited payer that is used is refused before solving
            limit = pulp.LpAffineExpression(limits.get(name, []), constant=capital)
            scaled = claims * p.tail_scale.get(name, 1.0)
            tail = _Tail(self, name, scaled, p.tail_alpha.get(name, p.alpha), limit)
            self.tails[name] = tail
            self.rows[f"{name}_cvar"] = tail.row
            if all_scenarios:
                tail.add(range(p.n_scenarios))
            else:
                tail.seed()
        if math.isfinite(p.guarantor_leverage) and p.guarantee_share.any():
            pairs = [*zip(x_flat, p.guarantee_share.ravel().tolist()),
                     (self.levers["capital_injection"], -p.guarantor_leverage)]
            self._add("guarantor_leverage", pairs, pulp.LpConstraintLE,
                      p.guarantor_leverage * p.guarantor_capital, "guarantor_leverage")

    def _add(self, label: str, pairs, sense: int, rhs: float, lp_name: str) -> None:
        row = _constraint(pairs, sense, rhs, lp_name)
        self.lp.addConstraint(row)
        self.rows[label] = row

    @property
    def n_cuts(self) -> int:
        return sum(len(tail.excess) for tail in self.tails.values())

    def credit_values(self) -> np.ndarray:
        """(n_segments, n_options) yuan; solvers may return -1e-12 for a zero."""
        values = np.array([[v.varValue or 0.0 for v in row] for row in self.x])
        return np.maximum(values, 0.0)

    def fix_options(self, choice: Sequence[int] | None) -> None:
        """Adopt option choice[g] in each group g (the MILP becomes an LP), or free the binaries (None)."""
        for g, ys in enumerate(self.y):
            for j, y in enumerate(ys):
                if choice is None:
                    y.cat, y.lowBound, y.upBound = pulp.LpBinary, 0, 1
                else:
                    y.cat = pulp.LpContinuous
                    y.lowBound = y.upBound = float(j == choice[g])

    def chosen(self) -> tuple[int, ...]:
        return tuple(int(np.argmax([y.varValue or 0.0 for y in ys])) for ys in self.y)

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
                        with _quiet_stdout():
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
            with _quiet_stdout():
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
            added = sum(tail.separate(x_active) for tail in self.tails.values())
            self.build_seconds += time.perf_counter() - started
            if added == 0:
                return status, used

    def optimise_choices(self, solver: str, deadline: float | None) -> tuple[str, str, _Solution | None]:
        """Solve the MILP: by enumerating the options with one group (tail rows added for one
        option are valid for all, so they carry over), by HiGHS's branch and bound with several
        (then the LP with the options fixed for the duals).  Returns (status, solver, best or None);
        "feasible" when a time limit cut some option short."""
        if len(self.problem.groups) > 1:
            self.fix_options(None)
            status, used = self.optimise(solver, deadline)
            if status != "optimal":
                return status, used, None
            choice = self.chosen()
            self.fix_options(choice)
            status, used = self.optimise(solver, deadline)
            return (status, used, self.snapshot(choice)) if status == "optimal" else (status, used, None)
        statuses, best, used = [], None, solver
        for k in range(self.problem.n_options):
            self.fix_options((k,))
            status, used = self.optimise(solver, deadline)
            statuses.append(status)
            if status == "optimal":
                solution = self.snapshot((k,))
                if best is None or solution.value < best.value - _OPTION_TIE_RTOL * max(1.0, abs(best.value)):
                    best = solution
        if best is None:
            failures = [s for s in statuses if s != "infeasible"]
            return (failures[0] if failures else "infeasible"), used, None
        proven = all(s in ("optimal", "infeasible") for s in statuses)
        return ("optimal" if proven else "feasible"), used, best

    def snapshot(self, choice: tuple[int, ...]) -> _Solution:
        """The solved LP with the options `choice` adopted, read out before another solve overwrites it."""
        p = self.problem
        credit = self.credit_values()
        credit.setflags(write=False)
        x_active = credit.ravel()[self.active]
        rows = {label: label for label in self.rows if not label.startswith(("demand[", "one_option["))}
        for i, s in enumerate(p.segments):
            rows[f"demand[{s}]"] = f"demand[{s}][{p.options[choice[p.group_of[i]]]}]"
        binding, prices = {}, {}
        for label, key in rows.items():
            row = self.rows.get(key)
            binding[label] = row is not None and self._binding(key, x_active)
            # + 0.0 turns the -0.0 of a zero dual into 0.0
            prices[label] = 0.0 if row is None else (math.nan if row.pi is None else -float(row.pi) + 0.0)
        return _Solution(
            choice=choice,
            value=self.lp.objective.value(),
            credit=credit,
            levers={name: max(v.varValue or 0.0, 0.0) for name, v in self.levers.items()},
            tail_cvar={name: tail.cvar(x_active) for name, tail in self.tails.items()},
            binding=binding,
            shadow_prices=prices,
        )

    def _binding(self, label: str, x_active: np.ndarray) -> bool:
        """The row holds with equality, to a tolerance relative to its terms."""
        tail = self.tails.get(label.removesuffix("_cvar")) if label.endswith("_cvar") else None
        if tail is not None:
            return tail.binding(x_active)
        row = self.rows[label]
        excess = row.value() or 0.0
        slack = excess if row.sense == pulp.LpConstraintGE else -excess
        activity = sum(abs(c * (v.varValue or 0.0)) for v, c in row.items())
        return bool(slack <= _BINDING_RTOL * max(1.0, abs(row.constant), activity))


@contextlib.contextmanager
def _quiet_stdout():
    """Silence the process's stdout (file descriptor 1) for a solver call: HiGHS prints its banner
    from C, past Python's sys.stdout, even with msg=False."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # no real stdout (captured): nothing reaches it anyway
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.perf_counter()


def _status(lp: pulp.LpProblem) -> str:
    """An answer short of optimal -- a time limit -- carries no usable plan."""
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
    if floor.sum() > problem.max_credit:
        return (f"the minimum credit of {floor.sum():.4g} yuan is above max_credit "
                f"{problem.max_credit:.4g} yuan")
    needed = floor > 0
    allowed = _bank_participates(problem)
    for g, group in enumerate(problem.groups):
        rows = needed & (problem.group_of == g)
        if rows.any() and not allowed[rows].all(axis=0).any():
            mean_loss = problem.bank_loss.mean(axis=0)
            why = []
            for k, option in enumerate(problem.options):
                i = int(np.flatnonzero(rows & ~allowed[:, k])[0])
                why.append(f"under option {option!r} the bank's mean retained loss on segment "
                           f"{segs[i]!r} is {mean_loss[i, k]:.4g} per yuan, above its margin of "
                           f"{problem.bank_margin[i]:.4g}")
            return (f"the bank participation rule leaves group {group!r} no sharing option under which the "
                    "bank lends to every segment with a minimum credit: " + "; ".join(why))
    return None


def _explain_infeasible(problem: AllocationProblem, method: str, solver: str,
                        deadline: float | None) -> OptimizationError:
    """Say whether the budget is short (and by how much) or the payers' capital and caps rule the
    floor out."""
    form = _Formulation(problem, goal="funding", all_scenarios=method == "full")
    status, _, least = form.optimise_choices(solver, deadline)
    floor = problem.min_credit.sum() if problem.min_credit is not None else 0.0
    if least is not None:
        lv = least.levers
        return OptimizationError(
            f"no plan meets the minimum credit: budget {problem.budget:.4g} yuan is below the smallest "
            f"funding that lends the minimum credit of {floor:.4g} yuan: {sum(lv.values()):.4g} yuan, "
            f"i.e. a pool of {lv['pool']:.4g}, a capital injection of {lv['capital_injection']:.4g} "
            f"and a reserve of {lv['reserve']:.4g} yuan (CVaR_{problem.alpha:g} of each payer's claims)",
            "infeasible")
    if status == "not_solved":
        return OptimizationError("the solver reports the problem infeasible, but the time limit ran out "
                                 "before the cause was found", "infeasible")
    return OptimizationError(
        f"no plan meets the minimum credit of {floor:.4g} yuan whatever the budget: the lever bounds "
        "(max_pool, max_capital_injection, max_reserve), the capped payers' capital, the guarantor's "
        "leverage or the loss budget rule it out", "infeasible")


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
    """Maximise credit supplied (or firms served) subject to the model in the module docstring.

    method: "full", "cutting_plane" or "auto"; solver: "highs" (CBC if HiGHS
    is unavailable or fails) or "cbc"; time_limit: seconds for the whole
    call, checked between solves and passed to the solver.  Raises
    OptimizationError when no allocation is found (naming why when it is
    infeasible) or when an option sends claims to an unlimited payer
    (status "unfunded").
    """
    method = _resolve_method(method, problem.n_scenarios)
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    unfunded = problem.unfunded_payers()
    if unfunded:
        raise OptimizationError("options send losses to payers with unlimited capital and no budget line: "
                                + ", ".join(f"option {o!r} to the {p}" for o, p in unfunded), "unfunded")
    if time_limit is not None:
        time_limit = _scalar("time_limit", time_limit, low=0.0, low_open=True)
    deadline = None if time_limit is None else time.perf_counter() + time_limit
    reason = _unreachable_floor(problem)
    if reason is not None:
        raise OptimizationError("no plan meets the minimum credit: " + reason, "infeasible")

    form = _Formulation(problem, all_scenarios=method == "full")
    status, used, best = form.optimise_choices(solver, deadline)
    _raise_unless_solved(status, problem, method, solver, deadline, time_limit)
    prices = best.shadow_prices
    capital_price = prices.get("guarantor_cvar", 0.0)
    if "guarantor_leverage" in prices:
        capital_price += problem.guarantor_leverage * prices["guarantor_leverage"]
    firms = (float((best.credit.sum(axis=1) * problem.firms_weight).sum())
             if problem.firms_weight is not None else math.nan)
    return AllocationResult(
        status=status,
        objective=float(best.credit.sum()),
        firms=firms,
        pool_size=best.levers["pool"],
        capital_injection=best.levers["capital_injection"],
        reserve=best.levers["reserve"],
        credit={s: float(c) for s, c in zip(problem.segments, best.credit.sum(axis=1))},
        credit_by_option=best.credit,
        chosen={g: problem.options[k] for g, k in zip(problem.groups, best.choice)},
        tail_cvar=best.tail_cvar,
        expected_public_loss=float((best.credit * problem.public_loss()).sum()),
        binding=best.binding,
        shadow_prices=prices,
        capital_price=float(capital_price),
        build_seconds=form.build_seconds,
        solve_seconds=form.solve_seconds,
        n_cuts=form.n_cuts,
        method=method,
        solver=used,
        segments=problem.segments,
        options=problem.options,
        groups=problem.groups,
    )


def frontier(problem: AllocationProblem, budgets: Sequence[float], method: str = "auto",
             solver: str = "highs") -> tuple[xr.Dataset, list[AllocationResult | None]]:
    """Optimal allocations over a range of budgets (yuan), labelled by `budget` and `segment`, and
    the results themselves (None where no allocation exists).

    Budgets with no allocation keep NaN values, their status ("infeasible", ...)
    and an empty chosen_option.  marginal_credit is the credit added per extra
    budget yuan between neighbouring points.
    """
    values = np.asarray(budgets, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"budgets must be a non-empty 1-D sequence of yuan amounts, "
                         f"got shape {values.shape}")
    n = values.size
    supplied, pool, injection, reserve, price = (np.full(n, np.nan) for _ in range(5))
    credit = np.full((n, problem.n_segments), np.nan)
    status, chosen = [""] * n, [""] * n
    results: list[AllocationResult | None] = [None] * n
    for i, budget in enumerate(values):
        try:
            result = solve(dataclasses.replace(problem, budget=budget), method=method, solver=solver)
        except OptimizationError as exc:
            status[i] = exc.status
            continue
        results[i] = result
        status[i], chosen[i] = result.status, result.chosen_option
        supplied[i], pool[i] = result.objective, result.pool_size
        injection[i], reserve[i] = result.capital_injection, result.reserve
        price[i] = result.shadow_prices["budget"]
        credit[i] = [result.credit[s] for s in problem.segments]
    marginal = np.full(n, np.nan)
    if n > 1:
        marginal[1:] = np.diff(supplied) / np.where(np.diff(values) > 0, np.diff(values), np.nan)
    yuan = {"units": "yuan"}
    ds = xr.Dataset(
        {
            "credit_supplied": ("budget", supplied, {**yuan, "long_name": "total credit supplied"}),
            "pool_size": ("budget", pool, {**yuan, "long_name": "risk-compensation pool"}),
            "capital_injection": ("budget", injection,
                                  {**yuan, "long_name": "capital injected into the guarantor"}),
            "reserve": ("budget", reserve, {**yuan, "long_name": "reserve for pay-as-you-go public costs"}),
            "budget_shadow_price": ("budget", price, {"units": "yuan credit per yuan budget",
                                                      "long_name": "d credit / d budget"}),
            "marginal_credit": ("budget", marginal, {"units": "yuan credit per yuan budget",
                                                     "long_name": "credit added per budget yuan "
                                                                  "since the last point"}),
            "credit": (("budget", "segment"), credit, {**yuan, "long_name": "credit by segment"}),
            "status": ("budget", np.array(status, dtype=str)),
            "chosen_option": ("budget", np.array(chosen, dtype=str)),
        },
        coords={"budget": ("budget", values, yuan), "segment": list(problem.segments)},
        attrs={"alpha": problem.alpha, "method": method, "n_scenarios": problem.n_scenarios,
               "description": "credit supplied against fiscal budget"},
    )
    return ds, results
