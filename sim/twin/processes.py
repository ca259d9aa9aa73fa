"""SimPy operational twin of the risk-sharing scheme: loans, claims, reviews,
recoveries and top-ups as discrete events, month by month.

It is an independent implementation that cross-checks `sim.engine`: it draws
its own random numbers (`numpy.random.Generator(PCG64(seed))`, path after
path) and settles each path with SimPy processes instead of the numba
waterfall. From the compiled `Plan` it reads only inputs (loan arrays,
hazards, stress clock, shares, lags, caps, the guarantor's leverage
admission), never the engine's thresholds or kernels.

Model of one path (time in months, float; `days / 30` for review times)
----------------------------------------------------------------------
Draws: Z ~ N(0, 1), sector factors S_k ~ N(0, 1), eps_i ~ N(0, 1) per loan and,
for the Student-t copula, W = chi2_nu / nu. The latent variable
    X_i = (a Z + b S_k(i) + c eps_i) / sqrt(W)       (sqrt(W) = 1 for Gaussian)
has the copula uniform U_i = Phi(X_i) (or T_nu(X_i)). With the PD curve
F_i(t) = 1 - exp(-lambda_i (C[s_i + t] - C[s_i])) (C the stress clock), loan i
defaults iff U_i <= F_i(life_i), in the first month t with F_i(t) >= U_i.
Exposure: amount (bullet) or amount (1 - (t - 1) / term) (equal principal).
Recovery fraction: mean m_i, in a downturn Phi(Phi^-1(m_i) + k Z); with sd > 0
a Beta with that mean and variance min(sd^2, 0.99 m (1 - m)).

Processes
---------
- `loan_applications`: the bank's desk. Each start month's applications
  arrive at that month and are approved `approval_days` later unless the stop
  rule has halted approvals (then they, and all later ones, are rejected: no
  credit, no default); approved loans are disbursed at once.
- `loan_lifecycle`: a disbursed loan drawn to default (the others are repaid
  in full and need no event) defaults at its drawn month: the bank pays its
  share (plus the guarantor's share when the loan was not admitted under the
  guarantor's leverage) and the government its share; the loan then starts
  the payment processes and its `recovery`.
- `guarantor_payment`: at default + guarantor lag, min(share, per-loan cap,
  capital left).
- `claim_review`: the claim is filed with the pool at default + claim lag,
  waits for a reviewer (a `simpy.Resource(capacity=reviewers)`; unlimited when
  `reviewers` is None), is reviewed for `review_days`, and is then paid from
  what the pool holds: min(share, per-loan cap, cumulative cap left, balance).
  A pool that runs short is not a `Container.get` (that would wait for money):
  the level is checked and what is there is paid; the shortfall goes to the
  bank and the pool counts as exhausted.
- `party_payment`: insurer, appraiser, re-guarantor at default + their lag:
  min(share, per-loan cap, total cap left); shortfalls to the bank.
- `recovery`: the recovery arrives at default + max(recovery lag, lag of every
  party that pays on the loan) and, once every payment on the loan is settled
  (a queued pool claim may still be pending), goes back to each party pro
  rata to what it paid; the pool's and guarantor's parts refill their money.
- `annual_top_up`: at the start of months k * every (k >= 1, up to the
  horizon) "add" adds the amount, "to_target" refills to the initial size.
- `guarantee_compensation_claims`: after each year the guarantor files for
  compensation of that year's payouts, min(rate * payouts, annual cap).
- Stop rule: when cumulative exposure at default, or cumulative pool +
  guarantor payouts, passes its threshold times the credit approved so far,
  approvals halt; the stop month is the month of that event (capped at the
  horizon).

Order of events within a month
------------------------------
SimPy breaks ties by insertion order; the engine settles a month as: top-ups
first, then defaults, guarantor, pool, insurer, appraiser, re-guarantor
payments, recoveries. The twin reproduces this by scheduling each kind of
event at a fixed fraction of its month (`AT_*`, multiples of 1/16 so times stay
exact binary floats): top-ups and approvals at m + 0, defaults at m + 1/16,
guarantor at m + 2/16, pool m + 3/16, insurer 4/16, appraiser 5/16,
re-guarantor 6/16, recoveries at m + 7/16. Events of one kind at one time then
run in the order they were scheduled: earlier default first, and among
defaults of one month, earlier start month, then the loan's portfolio row --
the engine's order too (`plan.claim_rank`); it decides which of two
same-month claims gets a pool's last yuan.
"The month" of an event is floor(time). With the default operational
arguments (unlimited reviewers, no review or approval time) every event lands
in the same month and order as in the engine, and given the same defaults
the twin settles a path exactly as `sim.engine.settle_given_defaults` does
(tested). Review and approval times move events by fractions of months, so
a queued claim may be paid after top-ups or recoveries that the engine
settles later, and a loan approved after a stop in its start month is
rejected.

One rule is read from the waterfall's docstring rather than its code: the
recovery waits for the lags of the parties that pay on the loan (share > 0),
while the engine's code takes the largest lag of all parties, paying or not
(default 3 months each). They differ only when a non-paying party's lag
exceeds the product's recovery lag (none of the seed scenarios).

Outputs per path: party losses (ultimate, events after the horizon are
settled), gross loss, defaults / loans originated, credit supplied, pool
exhaustion, stop month, pool balance at the end of each period (the last
balance before the next month starts), the time-averaged number of claims
waiting for a reviewer in each period, and per pool claim the reimbursement
delay: months from the default to the pool's payment decision (claim lag +
waiting + review), whether or not the pool still had money.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np
import simpy

from models.scenario import PARTIES
from sim.engine.plan import APPRAISER, BANK, GOVERNMENT, GUARANTOR, INSURER, POOL, REGUARANTOR, Plan
from sim.twin.draws import PathDraws

AT_TOP_UP = 0.0
AT_APPROVAL = 0.0
AT_DEFAULT = 1 / 16
AT_PAYMENT = {GUARANTOR: 2 / 16, POOL: 3 / 16, INSURER: 4 / 16, APPRAISER: 5 / 16, REGUARANTOR: 6 / 16}
AT_RECOVERY = 7 / 16
CAPPED = (INSURER, APPRAISER, REGUARANTOR)
N_PARTIES = len(PARTIES)

Event = simpy.events.Event
ProcessGenerator = Generator[Event, object, None]


@dataclass(frozen=True)
class Operations:
    """Operational parameters of the twin (not part of the scenario)."""

    reviewers: int | None  # None: unlimited
    review_months: float
    approval_months: float


@dataclass
class Books:
    """State and running totals of one path."""

    pool: float
    guarantor: float
    loss: list[float] = field(default_factory=lambda: [0.0] * N_PARTIES)
    paid_total: list[float] = field(default_factory=lambda: [0.0] * N_PARTIES)
    originated: float = 0.0
    n_originated: int = 0
    n_defaults: int = 0
    gross: float = 0.0
    cum_ead: float = 0.0
    cum_comp: float = 0.0
    stop_month: int = -1
    exhausted: bool = False
    compensation: float = 0.0
    year_guarantor: dict[int, float] = field(default_factory=dict)
    delays: list[float] = field(default_factory=list)
    pool_times: list[float] = field(default_factory=lambda: [0.0])
    pool_values: list[float] = field(default_factory=list)
    queue_times: list[float] = field(default_factory=lambda: [0.0])
    queue_values: list[int] = field(default_factory=lambda: [0])

    def log_pool(self, now: float) -> None:
        self.pool_times.append(now)
        self.pool_values.append(self.pool)


@dataclass(frozen=True)
class Terms:
    """Plan inputs as Python scalars and lists (fast inside processes)."""

    amount: list[float]
    start: list[int]
    product: list[int]
    guaranteed: list[bool]
    shares: list[list[float]]
    recovery_arrival_lag: list[int]  # per product: max(recovery lag, payers' lags)
    party_lag: list[int]
    cap_per_loan: list[float]
    cap_total: list[float]
    horizon: int
    stop_default_rate: float
    stop_compensation_rate: float


def plan_terms(plan: Plan) -> Terms:
    """The plan's inputs the processes read, with the recovery arrival lag per product."""
    party_lag = [int(x) for x in plan.party_lag]
    shares = plan.shares.tolist()
    arrival = []
    for p, share in enumerate(shares):
        payers = [party_lag[q] for q in (GUARANTOR, POOL, *CAPPED) if share[q] > 0.0]
        arrival.append(max([int(plan.recovery_lag[p]), *payers]))
    return Terms(
        amount=plan.amount.tolist(), start=plan.start.tolist(), product=plan.product.tolist(),
        guaranteed=plan.guaranteed.tolist(), shares=shares, recovery_arrival_lag=arrival,
        party_lag=party_lag, cap_per_loan=plan.cap_per_loan.tolist(), cap_total=plan.cap_total.tolist(),
        horizon=int(plan.horizon), stop_default_rate=float(plan.stop_default_rate),
        stop_compensation_rate=float(plan.stop_compensation_rate),
    )


def _until(env: simpy.Environment, when: float) -> simpy.Timeout:
    return env.timeout(max(when - env.now, 0.0))


def _check_stop(books: Books, terms: Terms, now: float, cumulative: float, threshold: float) -> None:
    if books.stop_month < 0 and books.originated > 0.0 and cumulative > threshold * books.originated:
        books.stop_month = min(int(now), terms.horizon)


Cohorts = list[tuple[int, list[int]]]  # (start month, loans starting then)


def loan_applications(env: simpy.Environment, terms: Terms, ops: Operations, books: Books,
                      desk: simpy.Resource | None, draws: PathDraws, cohorts: Cohorts) -> ProcessGenerator:
    """The bank's desk: each start month's applications arrive, are approved
    `approval_days` later unless the stop rule has halted approvals (then they
    and all later ones are rejected), and are disbursed; every disbursed loan
    drawn to default goes on in its own `loan_lifecycle` (the others are repaid
    in full and need no further event)."""
    for month, cohort in cohorts:
        yield _until(env, month + AT_APPROVAL + ops.approval_months)
        if books.stop_month >= 0:
            return
        for i in cohort:
            books.originated += terms.amount[i]
            books.n_originated += 1
            if draws.month[i] >= 0:
                env.process(loan_lifecycle(env, terms, ops, books, desk, draws, i))


def loan_lifecycle(env: simpy.Environment, terms: Terms, ops: Operations, books: Books,
                   desk: simpy.Resource | None, draws: PathDraws, i: int) -> ProcessGenerator:
    """A disbursed loan that defaults: the default at its drawn month, the bank's
    and government's shares at once, then the other parties' payments and the
    recovery as their own processes."""
    month = int(draws.month[i])
    yield _until(env, month + AT_DEFAULT)
    exposure = float(draws.exposure[i])
    rec = float(draws.recovery[i])
    share = terms.shares[terms.product[i]]
    paid = [0.0] * N_PARTIES
    books.n_defaults += 1
    books.gross += exposure * (1.0 - rec)
    carried = share[BANK] + (0.0 if terms.guaranteed[i] else share[GUARANTOR])
    for party, amount in ((BANK, carried * exposure), (GOVERNMENT, share[GOVERNMENT] * exposure)):
        paid[party] += amount
        books.loss[party] += amount
    books.cum_ead += exposure
    _check_stop(books, terms, env.now, books.cum_ead, terms.stop_default_rate)

    owed = [share[q] * exposure for q in range(N_PARTIES)]
    payments = []
    if terms.guaranteed[i] and owed[GUARANTOR] > 0.0:
        payments.append(env.process(guarantor_payment(env, terms, books, month, owed[GUARANTOR], paid)))
    if owed[POOL] > 0.0:
        payments.append(env.process(claim_review(env, terms, ops, books, desk, month, owed[POOL], paid)))
    for party in CAPPED:
        if owed[party] > 0.0:
            payments.append(env.process(party_payment(env, terms, books, party, month, owed[party], paid)))
    arrival = month + terms.recovery_arrival_lag[terms.product[i]] + AT_RECOVERY
    env.process(recovery(env, books, arrival, rec, paid, payments))


def guarantor_payment(env: simpy.Environment, terms: Terms, books: Books, month: int, owed: float,
                      paid: list[float]) -> ProcessGenerator:
    """The guarantor's compensatory payment, limited by its per-loan cap and capital left."""
    yield _until(env, month + terms.party_lag[GUARANTOR] + AT_PAYMENT[GUARANTOR])
    pay = max(min(owed, terms.cap_per_loan[GUARANTOR], books.guarantor), 0.0)
    books.guarantor -= pay
    year = (int(env.now) - 1) // 12
    books.year_guarantor[year] = books.year_guarantor.get(year, 0.0) + pay
    _settle(books, GUARANTOR, owed, pay, paid)
    books.cum_comp += pay
    _check_stop(books, terms, env.now, books.cum_comp, terms.stop_compensation_rate)


def claim_review(env: simpy.Environment, terms: Terms, ops: Operations, books: Books,
                 desk: simpy.Resource | None, month: int, owed: float, paid: list[float]) -> ProcessGenerator:
    """A pool claim: filed, queued for a reviewer, reviewed, paid from what the pool holds."""
    lag = terms.party_lag[POOL]
    yield _until(env, month + lag + AT_PAYMENT[POOL])
    filed = env.now
    if desk is not None:
        with desk.request() as request:
            books.queue_times.append(env.now)
            books.queue_values.append(len(desk.queue))
            yield request
            books.queue_times.append(env.now)
            books.queue_values.append(len(desk.queue))
            if ops.review_months > 0.0:
                yield env.timeout(ops.review_months)
    elif ops.review_months > 0.0:
        yield env.timeout(ops.review_months)
    pay = min(owed, terms.cap_per_loan[POOL], terms.cap_total[POOL] - books.paid_total[POOL])
    if pay > books.pool:  # the pool runs short: pay what is there
        books.exhausted = True
        pay = books.pool
    pay = max(pay, 0.0)
    books.pool -= pay
    books.log_pool(env.now)
    _settle(books, POOL, owed, pay, paid)
    books.delays.append(lag + env.now - filed)
    books.cum_comp += pay
    _check_stop(books, terms, env.now, books.cum_comp, terms.stop_compensation_rate)


def party_payment(env: simpy.Environment, terms: Terms, books: Books, party: int, month: int, owed: float,
                  paid: list[float]) -> ProcessGenerator:
    """Insurer, appraiser or re-guarantor: its share up to the per-loan and total caps."""
    yield _until(env, month + terms.party_lag[party] + AT_PAYMENT[party])
    pay = max(min(owed, terms.cap_per_loan[party], terms.cap_total[party] - books.paid_total[party]), 0.0)
    _settle(books, party, owed, pay, paid)


def _settle(books: Books, party: int, owed: float, pay: float, paid: list[float]) -> None:
    paid[party] += pay
    books.paid_total[party] += pay
    books.loss[party] += pay
    paid[BANK] += owed - pay
    books.loss[BANK] += owed - pay


def recovery(env: simpy.Environment, books: Books, arrival: float, rec: float, paid: list[float],
             payments: list[simpy.Process]) -> ProcessGenerator:
    """The recovered amount, returned pro rata to what each party paid."""
    yield _until(env, arrival)
    pending = [p for p in payments if p.is_alive]
    if pending:  # a queued pool claim must be settled before the split is known
        yield env.all_of(pending)
    for q in range(N_PARTIES):
        books.loss[q] -= paid[q] * rec
    books.guarantor += paid[GUARANTOR] * rec
    if paid[POOL] > 0.0:
        books.pool += paid[POOL] * rec
        books.log_pool(env.now)


def annual_top_up(env: simpy.Environment, plan: Plan, books: Books) -> ProcessGenerator:
    """Pool top-ups at the start of months every, 2 every, ... up to the horizon."""
    month = plan.top_up_every
    while month <= plan.horizon:
        yield _until(env, month + AT_TOP_UP)
        if plan.top_up_mode == 1:
            books.pool += plan.top_up_amount
        else:
            books.pool = max(books.pool, plan.pool_size)
        books.log_pool(env.now)
        month += plan.top_up_every


def guarantee_compensation_claims(env: simpy.Environment, plan: Plan, books: Books,
                                  n_years: int) -> ProcessGenerator:
    """After each year the guarantor claims compensation for that year's payouts."""
    for year in range(n_years):
        yield _until(env, 12 * (year + 1) + 1)
        payouts = books.year_guarantor.get(year, 0.0)
        books.compensation += min(plan.compensation_rate * payouts, plan.compensation_cap)


# ----------------------------------------------------------------------------- one path

@dataclass(frozen=True)
class PathResult:
    party_loss: np.ndarray
    gross_loss: float
    default_rate: float
    credit: float
    exhausted: bool
    stop_month: int
    compensation: float
    pool_balance: np.ndarray  # per period
    queue_length: np.ndarray  # per period, time-averaged
    delays: list[float]


def _step_average(times: np.ndarray, values: np.ndarray, lo: float, hi: float) -> float:
    """Time average over [lo, hi) of the right-continuous step function (times, values)."""
    edges = np.clip(np.append(times, np.inf), lo, hi)
    return float(np.sum(values * np.diff(edges)) / (hi - lo))


def simulate_path(plan: Plan, terms: Terms, ops: Operations, draws: PathDraws,
                  cohorts: Cohorts) -> PathResult:
    """Run one path's events to the end (claims and recoveries after the horizon included)."""
    env = simpy.Environment()
    books = Books(pool=plan.pool_size, guarantor=plan.guarantor_capital, pool_values=[plan.pool_size])
    desk = simpy.Resource(env, capacity=ops.reviewers) if ops.reviewers is not None else None
    if plan.top_up_mode > 0:
        env.process(annual_top_up(env, plan, books))
    if plan.compensation_rate > 0.0:
        last = plan.horizon + int(plan.party_lag[GUARANTOR])
        env.process(guarantee_compensation_claims(env, plan, books, (last - 1) // 12 + 1))
    env.process(loan_applications(env, terms, ops, books, desk, draws, cohorts))
    env.run()

    ends = (np.arange(plan.horizon // plan.period_months) + 1) * plan.period_months
    times = np.asarray(books.pool_times)
    balance = np.asarray(books.pool_values)[np.searchsorted(times, ends + 1.0, side="left") - 1]
    q_times = np.asarray(books.queue_times)
    q_values = np.asarray(books.queue_values, float)
    queue = np.array([_step_average(q_times, q_values, e - plan.period_months + 1.0, e + 1.0) for e in ends])
    return PathResult(
        party_loss=np.asarray(books.loss), gross_loss=books.gross,
        default_rate=books.n_defaults / max(books.n_originated, 1), credit=books.originated,
        exhausted=books.exhausted, stop_month=books.stop_month, compensation=books.compensation,
        pool_balance=balance, queue_length=queue, delays=books.delays,
    )


def start_cohorts(plan: Plan) -> Cohorts:
    """(start month, loan indices) for every month in which loans start within the horizon."""
    loans = np.flatnonzero(plan.start < plan.horizon)
    loans = loans[np.argsort(plan.claim_rank[loans], kind="stable")]  # start month, then portfolio row
    months, first = np.unique(plan.start[loans], return_index=True)
    return [(int(m), part.tolist()) for m, part in zip(months, np.split(loans, first[1:]))]
