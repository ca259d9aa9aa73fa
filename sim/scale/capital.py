"""The bank's capital on its book, with and without the scheme.

Regulatory, per loan i (formulas and paragraphs in `sim.risk.capital`):
PD_i the model's annual PD (what the engine draws from, moral hazard
included, before any stress: IRB takes a one-year PD), EAD_i its amount,
M = `capital.maturity_years` (F-IRB's 2.5 years by default; "term": each
loan's term), LGD the F-IRB supervisory LGD (`capital.lgd`; the payers'
`capital.protection_lgd`, 45 % for financials), turnover from the book
where given (the SME size adjustment). The scheme
covers the share s_q,i of each payer q but the bank (the guarantor only on
loans it admitted under its leverage limit; the pool only with
`capital.pool_cover = "guarantee"`): by substitution,
    IRB:  K_i = (1 - g_i) K(PD_i) + sum_q s_q,i K(PD_q),   g_i = sum_q s_q,i,
    SA:   capital_i = 8 % EAD_i ((1 - g_i) RW + sum_q s_q,i RW_q),
without the scheme g_i = 0; a loan whose cover would raise its requirement
(a payer weighted above the borrower) keeps the requirement without it, as
a bank may decline to recognise such cover (CRE22, CRE32.22). The relief is
the difference.

Economic, from the simulated loss the bank keeps (its share, what payers
could not pay, the unguaranteed loans): EC = ES_level (or VaR_level) - EL
over the horizon, and over the first year (a run of the same book to month
12: the defaults of year one, with their ultimate losses). EC by segment
and product is the Euler allocation (`sim.scale.contributions`): the
group's ES contribution less its mean loss, adding up to the total.

RAROC of a group over the loans' lives (not a yearly rate: income and loss
are the loans' whole terms', EC the horizon's): (net interest income after
funding and operating cost, sum_i margin_i - EL) / EC; the interest a
defaulted loan no longer earns is not deducted by group.

Breakeven guarantee fee of a segment (a year, per yuan guaranteed): the
amount-weighted mean of PD_i (1 - expected recovery_i) + admin cost +
cost of capital x K_i, K_i the IRB capital the cover needs.

SEs: EC as sqrt(se_ES^2 + se_EL^2) (ES and EL rise together, so this errs
high); RAROC R to first
order, sqrt((se_EL / EC)^2 + (R se_EC / EC)^2), their covariance left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from models.portfolio import Portfolio, grouping
from models.scenario import PARTIES, Capital, Scenario
from sim.engine.plan import BANK, GUARANTOR, POOL, build_portfolio
from sim.engine.run import RunSpec
from sim.results.units import label
from sim.risk import capital as basel
from sim.risk import estimators
from sim.scale.contributions import ProgressFactory, risk_contributions
from sim.scale.runs import simulate_runs

# Groups capital is reported by.
CAPITAL_GROUPINGS = ("segment", "product")


def _party_settings(cap: Capital, field: str) -> np.ndarray:
    """A per-payer setting of [capital] by party, the defaults filling what the scenario leaves out."""
    values = {**Capital.model_fields[field].default, **getattr(cap, field)}
    return np.array([values.get(p, 0.0) for p in PARTIES])


def _cover(spec: RunSpec, cap: Capital) -> np.ndarray:
    """(loans, parties): the share of each loan (portfolio order) each payer covers; the bank's 0."""
    plan = spec.plan
    order = np.argsort(plan.loan_order)  # portfolio row -> plan loan
    shares = plan.shares[plan.product[order]].copy()
    shares[:, BANK] = 0.0
    shares[~plan.guaranteed[order], GUARANTOR] = 0.0
    if cap.pool_cover == "none":
        shares[:, POOL] = 0.0
    return shares


def regulatory(spec: RunSpec, portfolio: Portfolio, cap: Capital) -> dict[str, np.ndarray]:
    """Per loan (portfolio order, yuan): IRB and standardised capital without and with the scheme,
    the borrower's IRB K per yuan, the annual PD used and the expected loss per yuan defaulted."""
    plan = spec.plan
    order = np.argsort(plan.loan_order)
    pd_annual = -np.expm1(-12.0 * plan.hazard[order])
    term_years = portfolio.term_months / 12.0 if cap.maturity_years == "term" else float(cap.maturity_years)
    # the annual PD before any stress: the one-year, through-the-cycle PD the IRB function takes
    if cap.irb_class == "retail":
        k_borrower = basel.retail_capital(pd_annual, cap.lgd)
    else:
        k_borrower = basel.irb_capital(pd_annual, cap.lgd, term_years, portfolio.turnover)
    cover = _cover(spec, cap)
    protection_pd = _party_settings(cap, "protection_pd")
    k_payer = np.zeros((len(portfolio), len(PARTIES)))
    for q in np.flatnonzero(protection_pd > 0):  # a payer of PD 0 (sovereign, no floor) needs none
        k_payer[:, q] = basel.irb_capital(protection_pd[q], cap.protection_lgd, term_years)
    g = cover.sum(axis=1)
    ead = portfolio.amount
    rw = _party_settings(cap, "protection_risk_weight")
    irb, sa = k_borrower * ead, basel.standardised_capital(ead, cap.risk_weight)
    # a bank need not recognise cover that would raise its requirement (CRE22, CRE32.22): it doesn't
    irb_scheme = np.minimum(((1.0 - g) * k_borrower + (cover * k_payer).sum(axis=1)) * ead, irb)
    sa_scheme = np.minimum(basel.CAPITAL_RATIO * ead * ((1.0 - g) * cap.risk_weight + cover @ rw), sa)
    return {
        "irb": irb,
        "irb_scheme": irb_scheme,
        "sa": sa,
        "sa_scheme": sa_scheme,
        "k": k_borrower,
        "pd": pd_annual,
        "lgd_expected": 1.0 - plan.recovery_mean[order],  # per yuan defaulted, as the engine expects
    }


def _economic(bank_loss: np.ndarray, weight: np.ndarray, cap: Capital) -> estimators.Estimate:
    """EC = ES (or VaR) at the level - EL of a per-path loss, and its SE (module doc)."""
    t = estimators.tail_table(bank_loss, np.array([cap.level]), weight)[:, 0]
    risk, risk_se = (t[2], t[3]) if cap.measure == "es" else (t[0], t[1])
    el, el_se = estimators.mean(bank_loss, weight)
    ec = estimators.unpaired_difference(estimators.Estimate(float(el), float(el_se)),
                                        estimators.Estimate(float(risk), float(risk_se)))
    return estimators.Estimate(float(ec.value), float(ec.se))


def _first_year(scenario: Scenario) -> Scenario:
    """The scenario run to month 12 (periods of one month)."""
    sim = scenario.simulation.model_copy(update={"horizon_months": 12, "period_months": 1})
    return scenario.model_copy(update={"simulation": sim})


def _by_group(values: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(index, weights=values, minlength=n)


def _group_variables(data: dict, by: str, index: np.ndarray, parts: xr.Dataset, reg: dict,
                     portfolio: Portfolio, margin: np.ndarray, cap: Capital) -> None:
    """Capital, EL, EC, RAROC (and by segment the breakeven fee) of each group of `by`."""
    n = int(index.max()) + 1 if index.size else 0
    dims = (by,)
    for name in ("irb", "irb_scheme", "sa", "sa_scheme"):
        data[f"{name}_capital_{by}"] = (dims, _by_group(reg[name], index, n))
    data[f"exposure_{by}"] = (dims, _by_group(portfolio.amount, index, n))
    kind = "es" if cap.measure == "es" else "var"
    risk = parts[f"contribution_{kind}_{by}"].sel(loss_of="bank").isel(quantile=0)
    risk_se = parts[f"contribution_{kind}_{by}_se"].sel(loss_of="bank").isel(quantile=0)
    el = parts[f"contribution_mean_{by}"].sel(loss_of="bank")
    el_se = parts[f"contribution_mean_{by}_se"].sel(loss_of="bank")
    ec, ec_se = estimators.unpaired_difference(estimators.Estimate(el.values, el_se.values),
                                               estimators.Estimate(risk.values, risk_se.values))
    income = _by_group(margin, index, n)
    raroc, raroc_se = estimators.quotient(estimators.Estimate(income - el.values, el_se.values),
                                          estimators.Estimate(ec, ec_se))
    data[f"expected_loss_{by}"], data[f"expected_loss_{by}_se"] = (dims, el.values), (dims, el_se.values)
    data[f"economic_capital_{by}"], data[f"economic_capital_{by}_se"] = (dims, ec), (dims, ec_se)
    data[f"net_interest_{by}"] = (dims, income)
    data[f"raroc_{by}"], data[f"raroc_{by}_se"] = (dims, raroc), (dims, raroc_se)
    if by == "segment":
        fee = reg["pd"] * reg["lgd_expected"] + cap.admin_cost + cap.cost_of_capital * reg["k"]
        data["breakeven_fee_segment"] = (dims, _by_group(fee * portfolio.amount, index, n)
                                         / data["exposure_segment"][1])


def bank_capital(scenario: Scenario, *, n_paths: int | None = None, seed: int | None = None,
                 threads: int | None = None, portfolio: Portfolio | None = None, scheduler: Any = None,
                 progress: ProgressFactory | None = None) -> xr.Dataset:
    """The bank's capital on the scenario's book, with and without the scheme (module doc).

    Parameters
    ----------
    scenario : Scenario
        A validated scenario; its [capital] table holds the settings.
    n_paths, seed : optional
        Monte Carlo paths and seed (default the scenario's); plain Monte
        Carlo (`simulation.tail` is not used).
    threads, portfolio, scheduler : optional
        As `sim.run` (the contributions' second pass runs in process).
    progress : callable, optional
        Called with each pass's path count (the horizon run, the first
        year's, the paths drawn again); returns what is told each block's.

    Returns
    -------
    xarray.Dataset
        Kind "capital": totals (`irb_capital`, `irb_scheme_capital`,
        `sa_capital`, `sa_scheme_capital`, `economic_capital_horizon`,
        `economic_capital_year` with SEs) and by dims `segment` and
        `product` (capital, exposure, EL, EC, net interest, RAROC with SEs;
        `breakeven_fee_segment`); money in yuan, RAROC and fees fractions.
    """
    cap = scenario.capital
    portfolio = build_portfolio(scenario) if portfolio is None else portfolio
    spec = RunSpec.resolve(scenario, n_paths=n_paths, seed=seed, portfolio=portfolio, importance=False)
    reg = regulatory(spec, portfolio, cap)
    order = np.argsort(spec.plan.loan_order)
    runs: list = []
    for sc in (scenario, _first_year(scenario)):
        one = spec if sc is scenario else RunSpec.resolve(sc, n_paths=spec.n_paths, seed=spec.seed,
                                                           portfolio=portfolio, importance=False)
        tell = progress(one.n_paths) if progress is not None else None
        [out] = simulate_runs([one], threads=threads, scheduler=scheduler, progress=tell)
        runs.append(out)
    horizon, year = runs
    parts = risk_contributions(spec, horizon, portfolio, list(CAPITAL_GROUPINGS), np.array([cap.level]),
                               scenario.optimize.score_bands, means=True, threads=threads, progress=progress)
    data: dict = {}
    for name in ("irb", "irb_scheme", "sa", "sa_scheme"):
        data[f"{name}_capital"] = ((), float(reg[name].sum()))
    for name, out in (("horizon", horizon), ("year", year)):
        bank = out.party_loss[:, BANK]
        ec = _economic(bank, out.weight, cap)
        el, el_se = estimators.mean(bank, out.weight)
        data[f"economic_capital_{name}"], data[f"economic_capital_{name}_se"] = ((), ec.value), ((), ec.se)
        data[f"expected_loss_{name}"], data[f"expected_loss_{name}_se"] = ((), float(el)), ((), float(el_se))
    margin = spec.plan.margin_full[order]
    coords = {}
    for by in CAPITAL_GROUPINGS:
        index, labels = grouping(portfolio, by, scenario.optimize.score_bands)
        coords[by] = list(labels)
        _group_variables(data, by, index, parts, reg, portfolio, margin, cap)
    ds = xr.Dataset(data, coords=coords, attrs={
        "kind": "capital", "scenario_name": scenario.name, "n_paths": spec.n_paths, "seed": spec.seed,
        "n_loans": len(portfolio), "portfolio_amount": portfolio.total_amount, "level": cap.level,
        "measure": cap.measure, "pool_cover": cap.pool_cover, "irb_class": cap.irb_class, "lgd": cap.lgd,
        "money_unit": "yuan"})
    return label(ds)

