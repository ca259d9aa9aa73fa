"""Compile a validated scenario and its portfolio into a flat `Plan` of arrays
and scalars: the only thing the numba kernels see.

Months: a loan with `start_month` s can default in months s+1 .. s+life, where
life = min(term, horizon - s). Money in yuan, rates annual.
"""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import numpy as np
from numba import njit
from scipy import stats

from models.portfolio import Portfolio, PortfolioError, generate_portfolio, load_portfolio
from models.scenario import PARTIES, Scenario
from models.scoring import annual_pd, loan_rate, monthly_hazard, stress_clock
from sim.engine.bucket_bounds import bounds_table, bucket_positions

BANK, POOL, GUARANTOR, INSURER, APPRAISER, REGUARANTOR, GOVERNMENT = range(len(PARTIES))
TOP_UP_MODES = {"none": 0, "add": 1, "to_target": 2}
# Conditional PDs inside one sampling bucket differ by at most this much in the
# probit scale, so candidates drawn at the bucket's highest PD are mostly accepted.
BUCKET_WIDTH = 0.15

Plan = namedtuple(
    "Plan",
    [
        # loans
        "amount", "start", "life", "term", "product", "sector", "firm", "hazard",
        "threshold", "rate", "recovery_mean", "guaranteed", "margin_full",
        # products
        "shares", "amortizing", "recovery_sd", "recovery_downturn", "recovery_lag",
        # parties
        "party_lag", "cap_per_loan", "cap_total",
        "pool_size", "guarantor_capital", "top_up_mode", "top_up_amount", "top_up_every",
        "stop_default_rate", "stop_compensation_rate",
        # policy
        "subsidy_share", "subsidy_cap_principal", "subsidy_cap_firm",
        "compensation_rate", "compensation_cap", "reward_step", "reward_amount",
        "spread",
        # time
        "clock", "originated_cum", "count_cum", "margin_cum", "horizon", "period_months",
        "n_event_years",
        # copula
        "load_systematic", "load_sector", "load_idiosyncratic", "t_dof", "n_sectors", "n_firms",
        # importance sampling (sim.engine.importance): factor mean shifts
        # [systematic, sector 0, ...], the chi2 mixing draw's scale and the
        # defensive mixture's share of plain paths; zeros and 1 for plain
        # Monte Carlo
        "tail_shift", "tail_mixing", "tail_defensive",
        # sparse sampler buckets: bucket k holds plan loans
        # bucket_ptr[k] .. bucket_ptr[k + 1] - 1, sorted by threshold;
        # bucket_pos and bucket_bounds as sim.engine.bucket_bounds describes
        "bucket_ptr", "bucket_threshold", "bucket_sector", "bucket_pos", "bucket_bounds",
        "sparse",
        # loans are stored in sampling-bucket order; loan_order[j] is the
        # portfolio row of plan loan j; claim_rank[j] its place in the order
        # claims of one month are settled in (start month, then portfolio row)
        "loan_order", "claim_rank",
    ],
)


@njit(cache=True)
def balance_months(months, term, amortizing, amount):
    """Sum of outstanding principal over the first `months` months of a loan
    (yuan x months): bullet keeps `amount` outstanding, equal-principal repays
    amount/term at the end of each month."""
    return amount * (months - amortizing * months * (months - 1) / (2.0 * term))


@njit(cache=True)
def exposure_at_default(months_elapsed, term, amortizing, amount):
    """Outstanding principal when default happens in month `months_elapsed` (>= 1)."""
    return amount * (1.0 - amortizing * (months_elapsed - 1) / term)


def build_portfolio(scenario: Scenario) -> Portfolio:
    """The scenario's loans: generated, or loaded from its CSV/Parquet file.
    Every loan must start inside the simulated horizon."""
    spec = scenario.portfolio
    if spec.synthetic is not None:
        portfolio = generate_portfolio(spec.synthetic, scenario.product_names)
        source = f"{scenario.source}: portfolio.synthetic"
    else:
        portfolio = load_portfolio(Path(spec.path), scenario.product_names, spec.extra_columns)
        source = str(spec.path)
    if len(portfolio) == 0:
        raise PortfolioError(
            f"{source}: no loan is made (check whitelist_min_score and credit_line against the amounts)"
        )
    horizon = scenario.simulation.horizon_months
    late = portfolio.start_month >= horizon
    if late.any():
        ids = ", ".join(map(str, portfolio.loan_id[late][:10]))
        raise PortfolioError(
            f"{source}: column 'start_month': must be < simulation.horizon_months = {horizon}; "
            f"{int(late.sum())} loans start later ({ids})"
        )
    return portfolio


@njit(cache=True)
def _leverage_admission(start, term, amortizing, guaranteed_amount, limit, horizon_pad):
    """Greedy in start order: a loan is guaranteed only if the guarantor's
    outstanding guarantees stay within leverage x capital when it starts."""
    n = start.size
    outstanding = np.zeros(horizon_pad)
    admitted = np.zeros(n, dtype=np.bool_)
    order = np.argsort(start, kind="mergesort")
    for k in range(n):
        i = order[k]
        s = start[i]
        if outstanding[s] + guaranteed_amount[i] > limit * (1.0 + 1e-12):
            continue
        admitted[i] = True
        for m in range(term[i]):
            outstanding[s + m] += guaranteed_amount[i] * (1.0 - amortizing[i] * m / term[i])
    return admitted


def _buckets(threshold: np.ndarray, sector: np.ndarray, n_sectors: int):
    """Group loans by sector and by close lifetime thresholds (sorted)."""
    ptr = [0]
    loans: list[np.ndarray] = []
    b_threshold: list[float] = []
    b_sector: list[int] = []
    for k in range(n_sectors):
        idx = np.flatnonzero((sector == k) & np.isfinite(threshold))
        if idx.size == 0:
            continue
        idx = idx[np.argsort(threshold[idx], kind="stable")]
        g = threshold[idx]
        cut = 0
        while cut < idx.size:
            end = int(np.searchsorted(g, g[cut] + BUCKET_WIDTH, side="right"))
            loans.append(idx[cut:end])
            b_threshold.append(float(g[end - 1]))
            b_sector.append(k)
            ptr.append(ptr[-1] + end - cut)
            cut = end
    flat = np.concatenate(loans) if loans else np.zeros(0, np.int64)
    return (
        np.asarray(ptr, np.int64),
        flat.astype(np.int64),
        np.asarray(b_threshold, float),
        np.asarray(b_sector, np.int64),
    )


def _bucket_layout(threshold: np.ndarray, sector: np.ndarray, n_sectors: int):
    """The sampling buckets (`_buckets`) and the loan order that makes each bucket a range of plan loans."""
    bucket_ptr, bucket_loans, bucket_threshold, bucket_sector = _buckets(threshold, sector, n_sectors)
    # Lay the loans out in bucket order: a bucket is then a range of plan
    # loans, which the sampler walks in memory order (cache-friendly on large
    # books).
    outside = np.setdiff1d(np.arange(threshold.size), bucket_loans, assume_unique=True)
    order = np.concatenate([bucket_loans, outside]).astype(np.int64)
    return bucket_ptr, bucket_threshold, bucket_sector, order


def _default_thresholds(dm, portfolio: Portfolio, shares: np.ndarray, product: np.ndarray, start: np.ndarray,
                        life: np.ndarray, horizon: int):
    """Loans' monthly hazards, the stress clock, default thresholds within life, t dof (0: Gaussian)."""
    model_pd = annual_pd(portfolio.score, portfolio.stage.astype(np.int64), dm)
    pd = np.where(np.isnan(portfolio.pd_annual), model_pd, portfolio.pd_annual)
    public_cover = 1.0 - shares[product, BANK]
    pd = np.minimum(pd * (1.0 + dm.moral_hazard_beta * public_cover), 0.999)
    hazard = monthly_hazard(pd)
    clock = stress_clock(dm.stress, horizon)
    life_pd = -np.expm1(-hazard * (clock[start + life] - clock[np.minimum(start, horizon)]))
    t_dof = dm.t_dof if dm.copula == "student_t" else 0.0
    with np.errstate(divide="ignore"):
        threshold = stats.t.ppf(life_pd, t_dof) if t_dof else stats.norm.ppf(life_pd)
    threshold = np.where(life > 0, threshold, -np.inf)
    return hazard, clock, threshold, t_dof


def _guarantor_admits(g, guaranteed_amount: np.ndarray, start: np.ndarray, term: np.ndarray,
                      amort_loan: np.ndarray) -> np.ndarray:
    """Which loans the guarantor covers: every loan, or those its leverage limit admits (amounts in yuan)."""
    if np.isfinite(g.leverage) and np.isfinite(g.capital):
        pad = int(start.max() + term.max() + 1) if guaranteed_amount.size else 1
        return _leverage_admission(start, term, amort_loan, guaranteed_amount, g.leverage * g.capital, pad)
    return np.ones(guaranteed_amount.size, dtype=np.bool_)


def _cumulative_by_start(start: np.ndarray, amount: np.ndarray, margin_full: np.ndarray, horizon: int):
    """Credit (yuan), loan count and full margin (yuan) of the loans started by each month 0..horizon."""
    in_horizon = start < horizon
    originated_cum = np.zeros(horizon + 1)
    count_cum = np.zeros(horizon + 1)
    margin_cum = np.zeros(horizon + 1)
    np.add.at(originated_cum, start[in_horizon], amount[in_horizon])
    np.add.at(count_cum, start[in_horizon], 1.0)
    np.add.at(margin_cum, start[in_horizon], margin_full[in_horizon])
    return tuple(np.cumsum(a) for a in (originated_cum, count_cum, margin_cum))


def _party_terms(c):
    """Each party's payment lag (months), cap per loan and total cap (yuan), indexed by party."""
    g = c.guarantor
    party_lag = np.zeros(len(PARTIES), np.int64)
    party_lag[[POOL, GUARANTOR, INSURER, APPRAISER, REGUARANTOR]] = [
        c.pool.claim_lag_months, g.lag_months, c.insurer.lag_months,
        c.appraiser.lag_months, c.reguarantor.lag_months,
    ]
    cap_per_loan = np.full(len(PARTIES), np.inf)
    cap_per_loan[[POOL, GUARANTOR, INSURER, APPRAISER, REGUARANTOR]] = [
        c.pool.cap_per_loan, g.cap_per_loan, c.insurer.cap_per_loan,
        c.appraiser.cap_per_loan, c.reguarantor.cap_per_loan,
    ]
    cap_total = np.full(len(PARTIES), np.inf)
    cap_total[[POOL, INSURER, APPRAISER, REGUARANTOR]] = [
        c.pool.cumulative_cap, c.insurer.cap_total, c.appraiser.cap_total, c.reguarantor.cap_total,
    ]
    return party_lag, cap_per_loan, cap_total


def _policy_fields(pol) -> dict:
    """The `Plan` fields of the fiscal policy: subsidy share and caps, compensation, rewards (yuan)."""
    return dict(
        subsidy_share=float(pol.interest_subsidy_share),
        subsidy_cap_principal=float(pol.interest_subsidy_cap_principal),
        subsidy_cap_firm=float(pol.interest_subsidy_cap_firm),
        compensation_rate=float(pol.guarantee_compensation_rate),
        compensation_cap=float(pol.guarantee_compensation_cap_annual),
        reward_step=float(pol.bank_reward_step), reward_amount=float(pol.bank_reward_amount),
    )


def _claim_rank(start: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Each plan loan's place when claims of one month are taken as they arrive: the earlier
    disbursed loan first, then the book's order (portfolio row)."""
    rank = np.empty(start.size, np.int64)
    rank[np.lexsort((row, start))] = np.arange(start.size)
    return rank


def compile_plan(scenario: Scenario, portfolio: Portfolio, method: str | None = None) -> Plan:
    """Flatten scenario + portfolio into the arrays the kernels use."""
    sim = scenario.simulation
    dm = scenario.default
    horizon = sim.horizon_months
    products = [scenario.products[p] for p in portfolio.product_names]
    shares = np.array([scenario.contract.shares[p].as_tuple() for p in portfolio.product_names])
    amortizing = np.array([1.0 if p.amortization == "equal_principal" else 0.0 for p in products])

    amount = portfolio.amount.astype(float)
    start = portfolio.start_month.astype(np.int64)
    term = portfolio.term_months.astype(np.int64)
    product = portfolio.product.astype(np.int64)
    life = np.clip(np.minimum(term, horizon - start), 0, None)

    hazard, clock, threshold, t_dof = _default_thresholds(dm, portfolio, shares, product, start, life,
                                                          horizon)

    rate = np.where(np.isnan(portfolio.rate), loan_rate(portfolio.score, scenario.pricing), portfolio.rate)
    rec_mean = np.array([p.recovery_mean for p in products])[product]
    rec_mean = np.where(np.isnan(portfolio.recovery), rec_mean, portfolio.recovery)
    spread = scenario.pricing.funding_cost + scenario.pricing.operating_cost
    amort_loan = amortizing[product]
    margin_full = (rate - spread) * balance_months(term.astype(float), term.astype(float), amort_loan,
                                                   amount) / 12.0

    c = scenario.contract
    g = c.guarantor
    guaranteed = _guarantor_admits(g, shares[product, GUARANTOR] * amount, start, term, amort_loan)
    originated_cum, count_cum, margin_cum = _cumulative_by_start(start, amount, margin_full, horizon)
    party_lag, cap_per_loan, cap_total = _party_terms(c)
    recovery_lag = np.array([p.recovery_lag_months for p in products], np.int64)
    max_lag = int(max(party_lag.max(), recovery_lag.max(initial=0)))

    n_sectors = len(portfolio.sector_names)
    sector = portfolio.sector.astype(np.int64)
    bucket_ptr, bucket_threshold, bucket_sector, order = _bucket_layout(threshold, sector, n_sectors)
    _, firm = np.unique(portfolio.firm_id.astype(str), return_inverse=True)
    (amount, start, life, term, product, sector, firm, hazard, threshold, rate, rec_mean, guaranteed,
     margin_full) = (a[order] for a in (amount, start, life, term, product, sector, firm, hazard, threshold,
                                        rate, rec_mean, guaranteed, margin_full))
    sparse = (method or sim.method) == "sparse"
    load_idiosyncratic = float(np.sqrt(1.0 - dm.rho_systematic - dm.rho_sector))
    common_sd = float(np.sqrt(dm.rho_systematic + dm.rho_sector))
    bounds = bounds_table(bucket_ptr, threshold, bucket_threshold, load_idiosyncratic,
                          common_sd if sparse and not t_dof else None)
    stop = c.stop_rule
    return Plan(
        amount=amount, start=start, life=life.astype(np.int64), term=term, product=product,
        sector=sector, firm=firm.astype(np.int64), hazard=hazard, threshold=threshold,
        rate=rate, recovery_mean=rec_mean, guaranteed=guaranteed, margin_full=margin_full,
        shares=shares, amortizing=amortizing,
        recovery_sd=np.array([p.recovery_sd for p in products]),
        recovery_downturn=np.array([p.recovery_downturn for p in products]),
        recovery_lag=recovery_lag,
        party_lag=party_lag, cap_per_loan=cap_per_loan, cap_total=cap_total,
        pool_size=float(c.pool.size), guarantor_capital=float(g.capital),
        top_up_mode=TOP_UP_MODES[c.pool.top_up], top_up_amount=float(c.pool.top_up_amount),
        top_up_every=int(c.pool.top_up_every_months),
        stop_default_rate=np.inf if stop.default_rate is None else float(stop.default_rate),
        stop_compensation_rate=np.inf if stop.compensation_rate is None else float(stop.compensation_rate),
        **_policy_fields(scenario.policy),
        spread=float(spread),
        clock=clock, originated_cum=originated_cum, count_cum=count_cum, margin_cum=margin_cum,
        horizon=int(horizon), period_months=int(sim.period_months),
        n_event_years=int((horizon + max_lag) // 12 + 2),
        load_systematic=float(np.sqrt(dm.rho_systematic)),
        load_sector=float(np.sqrt(dm.rho_sector)),
        load_idiosyncratic=load_idiosyncratic,
        t_dof=float(t_dof), n_sectors=int(n_sectors), n_firms=int(firm.max() + 1 if firm.size else 0),
        tail_shift=np.zeros(1 + n_sectors), tail_mixing=1.0, tail_defensive=0.0,
        bucket_ptr=bucket_ptr, bucket_threshold=bucket_threshold,
        bucket_sector=bucket_sector, bucket_pos=bucket_positions(bucket_ptr, threshold),
        bucket_bounds=bounds, sparse=sparse,
        loan_order=order, claim_rank=_claim_rank(start, order),
    )
