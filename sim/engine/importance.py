"""Importance sampling (IS) for far tails: which sampling measure Q a run
draws its paths from, and how it is chosen for a named event
(`models.tail`: pool runs dry, guarantor's capital runs out, a loss >= x).

Sampling measure. G draws the copula's factors x = (Z, S_1..S_K) from
N(mu, I) instead of N(0, I) and, for the Student-t copula, the mixing
variable chi2_nu times a scale s instead of chi2_nu; conditionally on the
factors every default, exposure and recovery is drawn exactly as under P
(`sim.engine.sampling`). The paths are drawn from the defensive mixture
Q = lambda P + (1 - lambda) G (Hesterberg, Technometrics 1995; lambda =
`DEFENSIVE`), each path's component chosen by its own uniform draw. A
path's likelihood ratio is that of its factor draws alone:

    dG/dP(x) = exp(mu.x - |mu|^2 / 2) * s^(-nu/2) exp(-chi2 (1/s - 1) / 2),
    w = dP/dQ = 1 / (lambda + (1 - lambda) dG/dP(x)) <= 1 / lambda,

chi2 the path's (scaled) draw. The bound is why the mixture is there: with
G alone, log w is normal with variance |mu|^2, so for the shifts a 1e-4
event needs (|mu| ~ 3.5) the weights' variance is ~e^12 and the body's
estimates (means, the mean weight itself) and their standard errors are
unreliable at any practical path count; with it every weight is at most
10 and the tail loses at most 1 - lambda of its paths. Every estimate is
the weighted one of
`sim.risk.estimators` -- e.g. P(A) = (1/n) sum_i w_i 1{A_i}, E[X] = (1/n)
sum_i w_i X_i, VaR and ES from the weighted tail distribution -- which is
unbiased under Q for any mu and s, so the shift changes the variance only;
the standard errors are the weighted ones and the effective paths
(sum w)^2 / sum w^2 say how far the weights spread.

This is the first of Glasserman and Li's two steps ("Importance Sampling
for Portfolio Credit Risk", Management Science 2005): the mean shift of the
factors towards the event. Their second step, exponential twisting of the
conditional default probabilities given the factors, is left out on
purpose: it pays only where the conditional loss given the factors still
has a large variance (small or weakly correlated books), Glasserman and Li
show it is asymptotically unnecessary as the book grows, and here it would
cost the sparse sampler its speed (its candidate bounds are tabulated for
P's conditional probabilities, and a twisted path's likelihood ratio needs
every loan's probability, a cost ~ loans per path). For the t copula tail
events come from a small chi2 (every latent variable large together, as
Bassamboo, Juneja and Zeevi, Operations Research 2008, use): scaling the
chi2 draw down does that part.

Choosing mu and s: a cross-entropy pilot (Rubinstein and Kroese; de Boer,
Kroese, Mannor and Rubinstein 2005) on an independent key, because the
events are defined through the whole waterfall (lags, caps, top-ups,
recoveries, the stop rule) and no closed form of P(event | factors), which
a large-deviation choice of mu would need, exists for them. Each round
runs `PILOT_PATHS` paths under the current (mu, s); the elite are the
event's paths when at least `ELITE_SHARE` of them hit it, otherwise the
`ELITE_SHARE` with the highest score (the required pool or capital, or the
loss; those at the sample's lowest score left out); the cross-entropy update of a Gaussian mean is the elite's
likelihood-weighted mean factor, of the chi2 scale its weighted mean chi2
over nu. Two rounds in a row at the event itself, or `MAX_ROUNDS`, end it. The
pilot is a pure function of (plan, event, seed): the same seed gives the
same shift and, with it, the same results on any threads, blocks or Dask
workers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from models.parties import PARTIES
from models.tail import TailEvent
from sim.engine.lanes import lanes_for, simulate_block
from sim.engine.outputs import PathOutputs, allocate_outputs
from sim.engine.plan import Plan
from sim.engine.sampling import draw_factors
from sim.risk import estimators

DEFENSIVE = 0.1  # share of plain-Monte-Carlo paths in the sampling mixture
PILOT_PATHS = 2048
ELITE_SHARE = 0.05
MIN_ELITE = 20  # paths an elite needs to move the shift
MAX_ROUNDS = 12
# The chi2 scale stays in these bounds (a numerical guard; the pilot moves it within a few rounds).
MIXING_RANGE = (1e-3, 1.0e3)
_PILOT_TAG = 0x7A11  # keys the pilot's streams apart from the run's


@dataclass(frozen=True)
class TailShift:
    """A sampling measure Q: G's factor mean shifts (systematic, then one per
    sector) and chi2 scale, and the defensive share; `rounds` pilot rounds
    chose it, `reached` says whether the pilot's paths hit the event itself."""

    shift: tuple[float, ...]
    mixing: float = 1.0
    defensive: float = DEFENSIVE
    rounds: int = 0
    reached: bool = True


def tilted(plan: Plan, q: TailShift) -> Plan:
    """The plan whose paths are drawn under `q`."""
    return plan._replace(tail_shift=np.asarray(q.shift, float), tail_mixing=float(q.mixing),
                         tail_defensive=float(q.defensive))


def event_score(event: TailEvent, out: PathOutputs, plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """Per path: a score that grows towards the event (yuan) and the event's flag."""
    if event.quantity == "pool_dry":
        return out.required_pool, out.exhausted
    if event.quantity == "guarantor_dry":
        return out.required_capital, out.required_capital > plan.guarantor_capital
    if event.quantity == "gross_loss":
        score = out.gross_loss
    elif event.quantity == "fiscal_cost":
        score = out.fiscal_cost
    else:
        score = out.party_loss[:, PARTIES.index(event.quantity)]
    return score, score >= event.amount


@njit(cache=True)
def _factor_draws(plan, key, paths, factors, chi2):
    """The factors (rows: paths; columns: Z, S_1..S_K) and chi2 draws of `paths`."""
    sector = np.zeros(max(plan.n_sectors, 1))
    for j in range(paths.size):
        z, sqrt_w, _ = draw_factors(key, paths[j], plan.n_sectors, plan.load_sector, plan.t_dof,
                                    (plan.tail_shift, plan.tail_mixing, plan.tail_defensive), sector)
        factors[j, 0] = z
        factors[j, 1:] = sector[:plan.n_sectors]
        chi2[j] = plan.t_dof * sqrt_w * sqrt_w


def _pilot_key(seed: int, round_: int) -> np.uint64:
    return np.random.SeedSequence([int(seed), _PILOT_TAG, round_]).generate_state(1, dtype=np.uint64)[0]


def _elite(score: np.ndarray, hit: np.ndarray) -> tuple[np.ndarray, bool]:
    """The pilot's elite paths (possibly none) and whether they are the event's own."""
    n_elite = max(2, int(ELITE_SHARE * score.size))
    if int(hit.sum()) >= n_elite:
        return np.flatnonzero(hit), True
    # the highest scores, ties broken by path index so the choice is reproducible
    top = np.sort(np.argsort(-score, kind="stable")[:n_elite])
    # a score with ties (a count of defaults) would keep the level where it is: the paths strictly
    # above the boundary, when there are enough of them, move it on
    above = np.flatnonzero(score > score[top].min())
    elite = above if above.size >= MIN_ELITE else top
    # paths at the lowest score say nothing of the way to the event
    return elite[score[elite] > score.min()], False


def _update(plan: Plan, key: np.uint64, elite: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, float]:
    """The cross-entropy update from the elite paths: (factor means, chi2 scale)."""
    factors = np.zeros((elite.size, 1 + plan.n_sectors))
    chi2 = np.zeros(elite.size)
    _factor_draws(plan, key, elite.astype(np.int64), factors, chi2)
    w = weight[elite] / weight[elite].sum()
    shift = w @ factors
    if plan.load_sector == 0.0:
        shift[1:] = 0.0  # sector factors move nothing: leave them unshifted
    mixing = 1.0
    if plan.t_dof > 0.0:
        mixing = float(np.clip(w @ chi2 / plan.t_dof, *MIXING_RANGE))
    return shift, mixing


def choose_shift(plan: Plan, event: TailEvent, seed: int, target: float | None = None) -> TailShift:
    """The sampling measure for `event`, from a cross-entropy pilot (module
    doc). With a `target` probability the pilot aims instead at the event's
    score passing its (1 - target) quantile (estimated anew each round from
    the weighted pilot paths): the pool that runs dry with probability
    `target`, when sizing the pool."""
    q = TailShift(tuple(np.zeros(1 + plan.n_sectors)))
    at_event = 0
    for round_ in range(1, MAX_ROUNDS + 1):
        key = _pilot_key(seed, round_)
        out = allocate_outputs(PILOT_PATHS, plan.horizon // plan.period_months)
        drawn = tilted(plan, q)
        simulate_block(drawn, key, 0, out, lanes_for(None))
        score, hit = event_score(event, out, plan)
        if target is not None:
            hit = score >= estimators.quantiles(score, np.array([1.0 - target]), out.weight)[0]
        elite, reached = _elite(score, hit)
        if elite.size == 0:
            return TailShift(q.shift, q.mixing, q.defensive, round_, False)  # no path moves towards it
        shift, mixing = _update(drawn, key, elite, out.weight)
        q = TailShift(tuple(float(v) for v in shift), mixing, DEFENSIVE, round_, reached)
        at_event = at_event + 1 if reached else 0
        if at_event == 2:  # two rounds in a row at the event itself
            break
    return q

