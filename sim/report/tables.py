"""Terminal tables of a run, a twin and an allocation, money in 万元 (10 000
yuan), read through the `ds.riskpool` accessor."""

from __future__ import annotations

import xarray as xr

from sim.risk.estimators import Estimate

WAN = 1e4


def wan(estimate: Estimate) -> str:
    """`value ± se` in 万元."""
    return f"{estimate[0] / WAN:,.1f} ± {estimate[1] / WAN:,.1f}"


def percent(estimate: Estimate, digits: int = 4) -> str:
    """`value ± se` as percentages."""
    return f"{estimate[0]:.{digits}%} ± {estimate[1]:.{digits}%}"


def format_table(ds: xr.Dataset, q: float = 0.99) -> str:
    """Per party: expected loss, VaR and ES at q with standard errors, share of total."""
    rp = ds.riskpool
    table = rp.party_table(q)
    q = table.q
    head = f"{'party':<12}{'E[loss]':>18}{f'VaR {q:.1%}':>18}{f'ES {q:.1%}':>18}{'share':>8}"
    lines = [f"{ds.attrs.get('scenario_name', '')}: {ds.attrs['n_paths']:,} paths, seed "
             f"{ds.attrs['seed']}, {ds.attrs['n_loans']:,} loans, "
             f"{ds.attrs['portfolio_amount'] / 1e8:.2f} 亿元 lent. Money in 万元 (10 000 yuan), ± 1 s.e.",
             head, "-" * len(head)]
    for row in table.rows:
        if row.label == "total":
            lines.append("-" * len(head))
        lines.append(f"{row.label:<12}{wan(row.mean):>18}{wan(row.var):>18}{wan(row.es):>18}{row.share:>8.1%}")
    fiscal_var = rp.estimate("fiscal_cost_quantile", quantile=q).value
    lines += [
        "",
        f"pool exhaustion probability  {percent(rp.estimate('pool_exhaustion_prob'))}",
        f"stop rule triggered          {percent(rp.estimate('stop_rule_prob'))}",
        f"default rate (loans)         {percent(rp.estimate('default_rate_mean'), 3)}",
        f"credit supplied              {wan(rp.estimate('credit_supplied_mean'))} 万元",
        f"fiscal cost                  {wan(rp.estimate('fiscal_cost_mean'))} 万元"
        f"  (VaR {q:.1%}: {fiscal_var / WAN:,.1f})",
        f"  of which interest subsidy  {wan(rp.estimate('subsidy_mean'))} 万元",
        f"bank net income              {wan(rp.estimate('bank_net_income_mean'))} 万元",
    ]
    return "\n".join(lines)


def format_operations(ds: xr.Dataset) -> str:
    """The twin's headline: party losses, pool exhaustion and the bank's wait."""
    rp = ds.riskpool
    rp.require("twin")
    lines = [f"{ds.attrs['scenario_name']}: SimPy twin, {ds.attrs['n_paths']:,} paths, "
             f"{ds.attrs['paths_per_second']:,.0f} paths/s. Money in 万元, ± 1 s.e."]
    for party in map(str, ds.party.values):
        est = rp.estimate("loss_mean", party=party)
        if est.value > 0:
            lines.append(f"  {party:<12} expected loss {wan(est)}")
    lines.append(f"  {'total':<12} expected loss {wan(rp.estimate('gross_loss_mean'))}")
    lines.append(f"pool exhaustion probability {percent(rp.estimate('pool_exhaustion_prob'), 3)}")
    delay = rp.estimate("reimbursement_delay_mean")
    quantiles = ds.reimbursement_delay
    lines.append(f"bank waits for the pool {delay.value:.2f} ± {delay.se:.2f} months on average; quantiles "
                 + ", ".join(f"{q:g}: {float(quantiles.sel(quantile=q)):.1f}"
                             for q in quantiles["quantile"].values))
    queue = rp.estimates("claim_queue_length_mean").value
    lines.append(f"claims waiting for review, worst period mean: {float(queue.max()):.2f}")
    return "\n".join(lines)


def format_allocation(ds: xr.Dataset, record: dict) -> str:
    """The optimizer's allocation: credit by segment, binding rows and shadow prices, out-of-sample checks."""
    ds.riskpool.require("allocation")
    a = ds.attrs
    lines = [f"status {a['status']}: credit supplied {a['credit_supplied'] / WAN:,.1f} 万元, pool "
             f"{a['pool_size'] / WAN:,.1f} 万元, sharing option {a['chosen_option']!r} ({record['method']}, "
             f"{record['solver']}; build {record['build_seconds']:.2f} s, "
             f"solve {record['solve_seconds']:.2f} s)",
             "", f"{'segment':<34}{'credit 万元':>14}{'demand 万元':>14}"]
    for seg in map(str, ds.segment.values):
        credit = float(ds.credit.sel(segment=seg).sum())
        lines.append(f"{seg:<34}{credit / WAN:>14,.1f}{float(ds.demand.sel(segment=seg)) / WAN:>14,.1f}")
    lines += ["", "binding constraints (shadow price = extra credit per extra unit of the limit):"]
    for name, bound in record["binding"].items():
        if bound:
            lines.append(f"  {name:<40} {record['shadow_prices'].get(name, float('nan')):,.4g}")
    lines += ["", "out-of-sample check (fresh seed), ± 1 s.e.:"]
    for name, c in record["out_of_sample"].items():
        lines.append(f"  {name:<16} {c['estimate'] / WAN:,.1f} ± {c['standard_error'] / WAN:,.1f} 万元 "
                     f"vs limit {c['limit'] / WAN:,.1f}: {'holds' if c['holds'] else 'VIOLATED'}")
    return "\n".join(lines)
