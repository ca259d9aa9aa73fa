"""Numba kernel that settles one path's defaults between the parties, in time
order, with the pool's balance and the guarantor's capital as state.

Rules (months are calendar months; a default in month tau):
- At tau the bank pays its share, the government its share, and the bank
  also carries the guarantor's share when the loan was not admitted under the
  guarantor's leverage limit.
- The guarantor pays at tau + its lag: min(share, per-loan cap, capital left).
- The pool pays at tau + claim lag: min(share, per-loan cap, balance,
  cumulative cap left); a claim cut by the balance marks the pool exhausted.
  A payer that cannot pay what it owes (per-loan cap applied) because its
  balance, capital or cumulative cap is spent is marked short on the path.
- Insurer, appraiser, re-guarantor pay at tau + their lag: min(share,
  per-loan cap, total cap left). Whatever a party cannot pay falls to the bank.
- The recovery arrives at tau + max(recovery lag, every payer's lag) and goes
  back to each party pro rata to what it paid (the pool's and guarantor's
  parts refill their money).
- Pool top-ups arrive at the start of months k * every (k >= 1, up to the
  horizon): "add" adds the amount, "to_target" refills to the initial size.
- Order within a month: defaults, then the guarantor's, pool's, insurer's,
  appraiser's and re-guarantor's payments, then recoveries; events of one kind
  in one month as claims arriving together are taken: the earlier-disbursed
  loan first, then the book's order (portfolio row), not the sampler's.
- Stop rule: once cumulative exposure at default / credit originated so far,
  or cumulative pool + guarantor payouts / credit originated so far, passes its
  threshold in month m, loans starting after m are never originated: their
  defaults, credit and income are dropped.
Events after the horizon (claims, recoveries) are still settled: losses are
ultimate, while balances are reported per period within the horizon.

Required pool and capital. Until its first short claim a pool of initial
size P0 holds P0 + g(t), where g (recoveries and "add" top-ups in, claims
out, and "to_target" top-ups g <- max(g, 0)) does not depend on P0: a
finite pool behaves like an unlimited one until it first runs dry. So the
path's required pool R = max(0, max over pool claims of (claim - g before
it)) is the smallest P0 that never runs dry, and the pool runs dry on the
path exactly when P0 < R. A settle with `unlimited_pool` (P0 = 0, claims
never cut, the balance may go negative) gives R on every path; a finite
settle gives it wherever the pool did not run dry. The guarantor's
required capital is the same maximum for its payouts (exact where its
capital did not run out; beyond, a lower bound above the capital).

Fiscal cost = net losses of the pool, the government and the (state)
re-guarantor + interest subsidies + guarantee compensation + bank rewards.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from models.policy import bank_reward, firm_capped, guarantee_compensation, interest_subsidy
from sim.engine.plan import (
    APPRAISER,
    BANK,
    GOVERNMENT,
    GUARANTOR,
    INSURER,
    POOL,
    REGUARANTOR,
    balance_months,
)

_interest_subsidy = njit(cache=True)(interest_subsidy)
_firm_capped = njit(cache=True)(firm_capped)
_guarantee_compensation = njit(cache=True)(guarantee_compensation)
_bank_reward = njit(cache=True)(bank_reward)

EV_DEFAULT = 0
EV_RECOVERY = 6
# Payment events 1..5, in the order they settle within a month.
EVENT_PARTY = np.array([-1, GUARANTOR, POOL, INSURER, APPRAISER, REGUARANTOR, -1], dtype=np.int64)
N_EVENT_TYPES = 7
_MONTH_SHIFT = 36
_TYPE_SHIFT = 32
_LOW32 = (1 << 32) - 1


@njit(cache=True)
def _advance(month, pool, slack, guarantor, next_top_up, next_period, horizon, period_months, top_up_mode,
             top_up_amount, top_up_every, pool_size, pool_row, guarantor_row):
    """Apply top-ups (to the pool and its slack g) and record period-end pool
    balance and guarantor capital (into this path's rows) for every period
    that ends before `month`. Scalars and rows rather than the plan: this
    runs once per event."""
    n_periods = pool_row.size
    while True:
        period_end = (next_period + 1) * period_months
        top_up_due = top_up_mode > 0 and next_top_up <= min(month, horizon)
        if top_up_due and (next_period >= n_periods or next_top_up <= period_end):
            if top_up_mode == 1:
                pool += top_up_amount
                slack += top_up_amount
            else:
                pool = max(pool, pool_size)
                slack = max(slack, 0.0)
            next_top_up += top_up_every
        elif next_period < n_periods and period_end < month:
            pool_row[next_period] = pool
            guarantor_row[next_period] = guarantor
            next_period += 1
        else:
            return pool, slack, next_top_up, next_period


@njit(cache=True, inline="always")
def _event_keys(n_def, def_loan, def_month, rec, product, shares, guaranteed, recovery_lag, party_lag,
                claim_rank, paid, keys, k_of_row):
    """Write into `keys` the events of the `n_def` defaults, zero their rows of `paid` and note in
    `k_of_row` each defaulted loan's default index by its claim rank; returns the count."""
    # One sortable key per event, only for events that move money: month, then event type, then
    # the loan's claim rank (plan.claim_rank: start month, then portfolio row).
    n_keys = 0
    for k in range(n_def):
        i = def_loan[k]
        t = def_month[k]
        row = claim_rank[i]
        k_of_row[row] = k
        lag_rec = recovery_lag[product[i]]
        share = shares[product[i]]
        keys[n_keys] = (t << _MONTH_SHIFT) | row
        n_keys += 1
        for e in range(1, 6):
            party = EVENT_PARTY[e]
            if share[party] > 0.0 and (party != GUARANTOR or guaranteed[i]):
                lag = party_lag[party]
                keys[n_keys] = ((t + lag) << _MONTH_SHIFT) | (e << _TYPE_SHIFT) | row
                n_keys += 1
                lag_rec = max(lag_rec, lag)  # the recovery waits for every payer
        if rec[k] > 0.0:
            keys[n_keys] = ((t + lag_rec) << _MONTH_SHIFT) | (EV_RECOVERY << _TYPE_SHIFT) | row
            n_keys += 1
        for q in range(paid.shape[1]):
            paid[k, q] = 0.0
    return n_keys


@njit(cache=True, inline="always")
def _pay_at_default(k, share, guaranteed, exposure, paid, loss):
    """Book default k's cost at once (yuan): the bank's share, an unguaranteed guarantor's, the state's."""
    carried = share[BANK] + (0.0 if guaranteed else share[GUARANTOR])
    for q, amount in ((BANK, carried * exposure), (GOVERNMENT, share[GOVERNMENT] * exposure)):
        paid[k, q] += amount
        loss[q] += amount


@njit(cache=True, inline="always")
def _lost_margin(margin_full, rate, spread, elapsed, term, amortizing, amount):
    """Margin (yuan) that a loan no longer earns once it defaults `elapsed` months after its start."""
    return margin_full - (rate - spread) * balance_months(elapsed - 1.0, term, amortizing, amount) / 12.0


@njit(cache=True, inline="always")
def _stop_passed(stop_month, cumulative, rate, originated):
    """Does `cumulative` (yuan) pass `rate` x the credit `originated` (yuan), the stop rule not yet hit?"""
    return stop_month < 0 and originated > 0 and cumulative > rate * originated


@njit(cache=True, inline="always")
def _take_back_recovery(k, recovered, paid, loss):
    """Take off each party's loss the `recovered` fraction of what it paid on default k; returns
    what goes back to the pool and to the guarantor's capital (yuan)."""
    for q in range(paid.shape[1]):
        back = paid[k, q] * recovered
        loss[q] -= back
    return paid[k, POOL] * recovered, paid[k, GUARANTOR] * recovered


@njit(cache=True, inline="always")
def _book_payment(k, party, owed, pay, paid, paid_total, loss):
    """Book `pay` (yuan) of `party` on default k; the bank carries what is `owed` beyond it."""
    paid[k, party] += pay
    paid_total[party] += pay
    loss[party] += pay
    paid[k, BANK] += owed - pay
    loss[BANK] += owed - pay


@njit(cache=True, inline="always")
def _total_compensation(year_guarantor, rate, cap):
    """Guarantee compensation (yuan) over the years of the guarantor's payouts (yuan a year)."""
    compensation = 0.0
    if rate > 0.0:
        for y in range(year_guarantor.size):
            compensation += _guarantee_compensation(year_guarantor[y], rate, cap)
    return compensation


@njit(cache=True, inline="always")
def _total_reward(originated_cum, horizon, limit, step, amount):
    """Bank rewards (yuan) for the credit originated (yuan, cumulative by month) each year up to `limit`."""
    reward = 0.0
    if amount > 0.0:
        for y in range((horizon + 11) // 12):
            first = 12 * y
            if first > limit:
                break
            before = originated_cum[first - 1] if first > 0 else 0.0
            reward += _bank_reward(originated_cum[min(first + 11, limit)] - before, step, amount)
    return reward


@njit(cache=True, inline="always")
def _total_subsidy(start, term, rate, amount, amortizing, product, firm, horizon, limit, share, cap_principal,
                   cap_firm, loan_default_month, firm_subsidy):
    """Interest subsidies (yuan) of the loans started by month `limit`, after the per-firm cap."""
    subsidy = 0.0
    if share > 0.0:
        for i in range(amount.size):
            if start[i] > limit or start[i] >= horizon:
                continue
            months = term[i]
            if loan_default_month[i] >= 0:
                months = loan_default_month[i] - start[i] - 1
            interest = rate[i] * balance_months(float(months), term[i], amortizing[product[i]],
                                                amount[i]) / 12.0
            firm_subsidy[firm[i]] += _interest_subsidy(interest, amount[i], share, cap_principal)
        for f in range(firm_subsidy.size):
            subsidy += _firm_capped(firm_subsidy[f], cap_firm)
            firm_subsidy[f] = 0.0
    return subsidy


@njit(cache=True, inline="always")
def _forget_default_months(n_def, def_loan, loan_default_month):
    """Reset the default months of the path's defaulted loans (scratch) to -1."""
    for k in range(n_def):
        loan_default_month[def_loan[k]] = -1


@njit(cache=True, inline="always")
def _write_outputs(plan, p, out, limit, stop_month, exhausted, n_defaults, defaulted_amount, gross, loss,
                   lost_margin, subsidy, compensation, reward, required):
    """Write path row `p` of `out` (money in yuan) from the settled path's totals."""
    out.required_pool[p], out.required_capital[p] = required
    out.gross_loss[p] = gross
    out.party_loss[p, :] = loss
    out.n_defaults[p] = n_defaults
    out.defaulted_amount[p] = defaulted_amount
    out.credit[p] = plan.originated_cum[limit]
    out.n_originated[p] = plan.count_cum[limit]
    out.stop_month[p] = stop_month
    out.exhausted[p] = exhausted
    out.subsidy[p] = subsidy
    out.compensation[p] = compensation
    out.reward[p] = reward
    # the provincial re-guarantor is a state fund: its losses are fiscal too
    out.fiscal_cost[p] = loss[POOL] + loss[GOVERNMENT] + loss[REGUARANTOR] + subsidy + compensation + reward
    out.bank_income[p] = plan.margin_cum[limit] - lost_margin - loss[BANK] + reward


@njit(cache=True, inline="always")
def _close_path(plan, p, out, stop_month, exhausted, n_defaults, defaulted_amount, gross, loss, lost_margin,
                year_guarantor, n_def, def_loan, loan_default_month, firm_subsidy, required):
    """The path's fiscal flows once every event is settled (yuan), its outputs, and the scratch reset."""
    horizon = plan.horizon
    limit = horizon if stop_month < 0 else min(stop_month, horizon)
    compensation = _total_compensation(year_guarantor, plan.compensation_rate, plan.compensation_cap)
    reward = _total_reward(plan.originated_cum, horizon, limit, plan.reward_step, plan.reward_amount)
    subsidy = _total_subsidy(plan.start, plan.term, plan.rate, plan.amount, plan.amortizing, plan.product,
                             plan.firm, horizon, limit, plan.subsidy_share, plan.subsidy_cap_principal,
                             plan.subsidy_cap_firm, loan_default_month, firm_subsidy)
    _forget_default_months(n_def, def_loan, loan_default_month)
    _write_outputs(plan, p, out, limit, stop_month, exhausted, n_defaults, defaulted_amount, gross, loss,
                   lost_margin, subsidy, compensation, reward, required)


@njit(cache=True, inline="always")
def _pay_from_balance(pay, balance, slack, need, cut):
    """A claim `pay` (yuan) on a `balance` whose slack (balance less the
    initial money) is `slack`: (what is paid, balance and slack left, the
    largest claim over slack so far, short), cut to the balance when `cut`."""
    need = max(need, pay - slack)
    short = cut and pay > balance
    if short:
        pay = balance
    return pay, balance - pay, slack - pay, need, short


@njit(cache=True)
def settle_scratch(plan, n_parties):
    """Scratch arrays `settle_path` needs for one lane of paths: (paid, keys, k_of_row, year_guarantor,
    loan_default_month, firm_subsidy)."""
    n_loans = plan.amount.size
    return (np.empty((n_loans, n_parties)), np.empty(n_loans * N_EVENT_TYPES, np.int64),
            np.empty(n_loans, np.int64), np.empty(plan.n_event_years), np.full(n_loans, -1, np.int64),
            np.zeros(max(plan.n_firms, 1)))


@njit(cache=True)
def settle_path(plan, p, n_def, def_loan, def_month, ead, rec, paid, keys, k_of_row, year_guarantor,
                loan_default_month, firm_subsidy, out, unlimited_pool):
    """Settle the `n_def` defaults of path row `p` and write its outputs. `ead` and `rec` hold each
    default's exposure (yuan) and recovery fraction; the other arrays are scratch of at least the
    sizes the plan implies. With `unlimited_pool` the pool starts empty and pays every claim in
    full (then only out.required_pool[p] is meant to be read)."""
    horizon = plan.horizon
    pool0 = 0.0 if unlimited_pool else plan.pool_size
    # g (module doc) of pool and guarantor, and the largest claim over it (yuan); finite for infinite money
    pool_slack, capital_slack, pool_need, capital_need = 0.0, 0.0, 0.0, 0.0
    n_keys = _event_keys(n_def, def_loan, def_month, rec, plan.product, plan.shares, plan.guaranteed,
                         plan.recovery_lag, plan.party_lag, plan.claim_rank, paid, keys, k_of_row)
    order = np.sort(keys[:n_keys])
    pool_row, guarantor_row = out.pool_balance[p], out.guarantor_capital[p]
    loss, paid_total = np.zeros(paid.shape[1]), np.zeros(paid.shape[1])  # yuan by party
    pool, guarantor, next_top_up, next_period = pool0, plan.guarantor_capital, plan.top_up_every, 0
    stop_month, n_defaults, exhausted = -1, 0, False
    # cum_ead, cum_comp: what the stop rule compares with the credit originated
    cum_ead, cum_comp, gross, defaulted_amount, lost_margin = 0.0, 0.0, 0.0, 0.0, 0.0
    year_guarantor[:] = 0.0

    for key in order:
        month = key >> _MONTH_SHIFT
        typ = (key >> _TYPE_SHIFT) & 0xF
        k = k_of_row[key & _LOW32]
        i = def_loan[k]
        if stop_month >= 0 and plan.start[i] > stop_month:
            continue
        pool, pool_slack, next_top_up, next_period = _advance(
            month, pool, pool_slack, guarantor, next_top_up, next_period, horizon, plan.period_months,
            plan.top_up_mode, plan.top_up_amount, plan.top_up_every, pool0, pool_row, guarantor_row)
        share = plan.shares[plan.product[i]]
        exposure = ead[k]
        originated = plan.originated_cum[min(month, horizon)]  # credit (yuan) originated by `month`
        if typ == EV_DEFAULT:
            n_defaults += 1
            out.period_defaults[p, (month - 1) // plan.period_months] += 1
            _pay_at_default(k, share, plan.guaranteed[i], exposure, paid, loss)
            gross += exposure * (1.0 - rec[k])
            defaulted_amount += exposure
            lost_margin += _lost_margin(plan.margin_full[i], plan.rate[i], plan.spread, month - plan.start[i],
                                        plan.term[i], plan.amortizing[plan.product[i]], plan.amount[i])
            loan_default_month[i] = month
            cum_ead += exposure
            if _stop_passed(stop_month, cum_ead, plan.stop_default_rate, originated):
                stop_month = month
        elif typ == EV_RECOVERY:
            back_pool, back_capital = _take_back_recovery(k, rec[k], paid, loss)
            pool, pool_slack = pool + back_pool, pool_slack + back_pool
            guarantor, capital_slack = guarantor + back_capital, capital_slack + back_capital
        else:
            party = EVENT_PARTY[typ]  # a payer: events exist only for positive shares
            owed = share[party] * exposure
            due = min(owed, plan.cap_per_loan[party])
            pay = min(due, plan.cap_total[party] - paid_total[party])
            short = pay < due  # its cumulative cap is reached
            if party == POOL:
                pay, pool, pool_slack, pool_need, dry = _pay_from_balance(pay, pool, pool_slack, pool_need,
                                                                          not unlimited_pool)
                exhausted |= dry
                short |= dry
            elif party == GUARANTOR:
                pay, guarantor, capital_slack, capital_need, dry = _pay_from_balance(
                    pay, guarantor, capital_slack, capital_need, True)
                short |= dry
                year_guarantor[(month - 1) // 12] += pay
            out.short[p, party] |= short
            pay = max(pay, 0.0)
            _book_payment(k, party, owed, pay, paid, paid_total, loss)
            if party == POOL or party == GUARANTOR:
                cum_comp += pay
                if _stop_passed(stop_month, cum_comp, plan.stop_compensation_rate, originated):
                    stop_month = min(month, horizon)
    _advance(horizon + 1, pool, pool_slack, guarantor, next_top_up, next_period, horizon, plan.period_months,
             plan.top_up_mode, plan.top_up_amount, plan.top_up_every, pool0, pool_row, guarantor_row)
    required = (pool_need, capital_need)
    _close_path(plan, p, out, stop_month, exhausted, n_defaults, defaulted_amount, gross, loss, lost_margin,
                year_guarantor, n_def, def_loan, loan_default_month, firm_subsidy, required)
    return n_defaults


@njit(cache=True)
def settle_with_required_pool(plan, p, n_def, def_loan, def_month, ead, rec, paid, keys, k_of_row,
                              year_guarantor, loan_default_month, firm_subsidy, out, spare, lane):
    """`settle_path` into row `p` of `out`, and the path's exact required pool: where the pool ran
    dry, from the path settled again with an unlimited pool (into row `lane` of `spare`)."""
    settle_path(plan, p, n_def, def_loan, def_month, ead, rec, paid, keys, k_of_row, year_guarantor,
                loan_default_month, firm_subsidy, out, False)
    pool_size = plan.pool_size
    if not out.exhausted[p]:
        # the two sums of the claims can round apart by an ulp: keep "dry iff R > P0" at P0 itself
        out.required_pool[p] = min(out.required_pool[p], pool_size)
        return
    spare.period_defaults[lane, :] = 0
    settle_path(plan, lane, n_def, def_loan, def_month, ead, rec, paid, keys, k_of_row, year_guarantor,
                loan_default_month, firm_subsidy, spare, True)
    out.required_pool[p] = max(spare.required_pool[lane], np.nextafter(pool_size, np.inf))
