"""Terminal tables of a run, a twin and an allocation, money in 万元 (10 000
yuan), read through the `ds.riskpool` accessor."""

from __future__ import annotations

import io
import itertools

import numpy as np
import xarray as xr
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sim.report.language import words
from sim.risk.estimators import Estimate, binomial_bounds

WAN = 1e4


def wan(estimate: Estimate) -> str:
    """`value ± se` in 万元."""
    return f"{estimate[0] / WAN:,.1f} ± {estimate[1] / WAN:,.1f}"


def percent(estimate: Estimate, digits: int = 4) -> str:
    """`value ± se` as percentages."""
    return f"{estimate[0]:.{digits}%} ± {estimate[1]:.{digits}%}"


def probability(ds: xr.Dataset, name: str, digits: int = 4, **at) -> str:
    """A probability's `value ± se` as percentages; where no path had the event in plain Monte Carlo
    (0 ± 0 says nothing of how small it is), its exact one-sided 95 % upper bound instead,
    1 - 0.05^(1/n) for n paths (`binomial_bounds`). A sweep whose points differ in paths or
    sampling keeps neither in its attributes: its zeros stay 0 ± 0."""
    estimate = ds.riskpool.estimate(name, **at)
    plain = ds.attrs.get("tail") == "off" or ds.attrs.get("kind") == "twin"
    n = ds.attrs.get("n_paths")
    if estimate.value == 0.0 and plain and isinstance(n, int | np.integer) and n > 0:
        upper = binomial_bounds(0, int(n))[1]
        return f"{0:.{digits}%} (≤ {upper:.{digits}%}, 95 %)"
    return percent(estimate, digits)


def format_table(ds: xr.Dataset, q: float | None = None, lang: str = "en") -> str:
    """Per party: expected loss, VaR and ES at level q (default `table_level`) with standard errors,
    share of total; in English or Chinese (`lang`, sim.report.language)."""
    w = words(lang)
    rp = ds.riskpool
    table = rp.party_table(rp.table_level() if q is None else q)
    q = table.q
    head = [w("party"), w("E[loss]"), f"{w('VaR')} {q:.1%}", f"{w('ES')} {q:.1%}", w("share")]
    body = [[w(row.label), wan(row.mean), wan(row.var), wan(row.es), f"{row.share:.1%}"]
            for row in table.rows]
    lines = [_intro(ds, lang), text_table(head, body, sections=(len(body) - 2,))]  # a rule above the total
    fiscal_var = rp.estimate("fiscal_cost_quantile", quantile=q).value
    figures = [
        (w("pool exhaustion probability"), probability(ds, "pool_exhaustion_prob")),
        (w("stop rule triggered"), f"{probability(ds, 'stop_rule_prob')}  ({w('credit forgone')} "
                                   f"{wan(rp.estimate('credit_forgone_mean'))} 万元)"),
        (w("default rate (loans)"), percent(rp.estimate("default_rate_mean"), 3)),
        (w("recovered (share of EAD)"), percent(rp.estimate("recovery_rate"), 2)),
        (w("credit supplied"), f"{wan(rp.estimate('credit_supplied_mean'))} 万元"),
        (w("fiscal cost"),
         f"{wan(rp.estimate('fiscal_cost_mean'))} 万元  (VaR {q:.1%}: {fiscal_var / WAN:,.1f})"),
        (f"  {w('of which interest subsidy')}", f"{wan(rp.estimate('subsidy_mean'))} 万元"),
        (w("bank net income"), f"{wan(rp.estimate('bank_net_income_mean'))} 万元"),
        *scheme_figures(ds, lang)]
    if lang == "en":
        lines += [""] + [f"{label:<29}{text}" for label, text in figures]
    else:  # wide characters: let rich measure the label column
        lines += ["", text_table(["", ""], [list(f) for f in figures], n_left=2, show_header=False)]
    return "\n".join(lines)


def _intro(ds: xr.Dataset, lang: str) -> str:
    """The table's first line: scenario, paths, sampling, seed, book, units."""
    w, a = words(lang), ds.attrs
    if lang == "en":
        return (f"{a.get('scenario_name', '')}: {a['n_paths']:,} paths ({sampling_note(ds)}), "
                f"seed {a['seed']}, {a['n_loans']:,} loans, {a['portfolio_amount'] / 1e8:.2f} 亿元 lent. "
                "Money in 万元 (10 000 yuan), ± 1 s.e.")
    return (f"{a.get('scenario_name', '')}：{a['n_paths']:,} {w('paths')}（{sampling_note(ds, lang)}），"
            f"{w('seed')} {a['seed']}，{a['n_loans']:,} {w('loans')}，{w('lent')} "
            f"{a['portfolio_amount'] / 1e8:.2f} 亿元。{w('Money in 万元 (10 000 yuan), ± 1 s.e.')}")


def scheme_figures(ds: xr.Dataset, lang: str = "en") -> list[tuple[str, str]]:
    """The scheme's leverage chain and unit cost, as (label, text) pairs: public money committed (the
    pool and a finite guarantor capital) -> the cover written on the book (notional: shares times
    amounts, caps and the pool's size not applied) -> credit supplied, and the fiscal cost per 100
    yuan of credit."""
    w = words(lang)
    rp = ds.riskpool
    public, cover = float(ds["public_money"]), float(ds["cover_written"])
    credit = rp.estimate("credit_supplied_mean").value
    times = lambda x: f" (x{x / public:,.1f})" if public > 0 else ""  # noqa: E731
    per = rp.estimate("fiscal_cost_per_credit")
    return [(w("public money committed"),
             f"{public / WAN:,.1f} 万元 {w('(pool and finite guarantor capital)')}"),
            (f"  {w('-> cover written')}", f"{cover / WAN:,.1f} 万元{times(cover)} {w('(notional)')}"),
            (f"  {w('-> credit supplied')}", f"{credit / WAN:,.1f} 万元{times(credit)}"),
            (w("fiscal cost per 100 yuan"), f"{100 * per.value:,.3f} ± {100 * per.se:,.3f} {w('yuan')}")]


def sampling_note(ds: xr.Dataset, lang: str = "en") -> str:
    """How the paths were drawn: plain Monte Carlo, or importance sampling for which event."""
    w = words(lang)
    tail = ds.attrs.get("tail", "off")
    if tail == "off":
        return w("plain Monte Carlo")
    worth = ds.attrs.get("effective_paths")
    worth_text = f", {worth:,.0f} {w('effective paths')}" if worth else ""
    return f"{w('importance sampling for')} {tail}{worth_text}"


def _sizing_line(label: str, answer: Estimate) -> str:
    low, high = answer.value - 1.96 * answer.se, answer.value + 1.96 * answer.se
    return f"{label:<28}{wan(answer):>22} 万元   95 % CI [{low / WAN:,.1f}, {high / WAN:,.1f}]"


def format_sizing(ds: xr.Dataset) -> str:
    """The smallest pool meeting the Dataset's sizing target, with its 95 % confidence interval,
    for a run or each point of a sweep."""
    rp = ds.riskpool
    target = float(ds.attrs["sizing_target"])
    lines = [f"{ds.attrs.get('scenario_name', '')}: smallest initial pool that runs dry with probability "
             f"<= {target:g} ({ds.attrs.get('n_paths', 0):,} paths, {sampling_note(ds)}). Money in 万元."]
    if rp.kind == "run":
        answer = rp.required_pool(target)
        pool = ds.attrs["pool_size"]
        lines += [
            _sizing_line("required pool", answer),
            f"a pool of {(answer.value + 1.96 * answer.se) / WAN:,.1f} 万元 (the upper bound) meets the "
            "target with 97.5 % confidence",
            f"the scenario's pool of {pool / WAN:,.1f} 万元 runs dry with probability "
            f"{probability(ds, 'pool_exhaustion_prob')}",
        ]
        return "\n".join(lines)
    names = [d for d in ds.required_pool_quantile.dims if d != "quantile"]
    stacked = ds.stack(point=names) if names else ds
    for i in range(stacked.sizes.get("point", 1)):
        point = stacked.isel(point=i) if names else stacked
        label = ", ".join(f"{n}={point[n].item()}" for n in names)
        lines.append(_sizing_line(label, point.riskpool.required_pool(target)))
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
    lines.append(f"pool exhaustion probability {probability(ds, 'pool_exhaustion_prob', 3)}")
    delay = rp.estimate("reimbursement_delay_mean")
    quantiles = ds.reimbursement_delay
    lines.append(f"bank waits for the pool {delay.value:.2f} ± {delay.se:.2f} months on average; quantiles "
                 + ", ".join(f"{q:g}: {float(quantiles.sel(quantile=q)):.1f}"
                             for q in quantiles["quantile"].values))
    queue = rp.estimates("claim_queue_length_mean").value
    lines.append(f"claims waiting for review, worst period mean: {float(queue.max()):.2f}")
    return "\n".join(lines)


# What one more unit of a row's limit buys, in words (shadow prices are d credit / d limit).
PRICE_WORDS = {
    "budget": "each extra 10 000 yuan of budget supports {v} yuan of credit",
    "guarantor_capital": "each extra 10 000 yuan of guarantor capital supports {v} yuan of credit",
    "pool_cvar": "the pool's tail binds: each 10 000 yuan of tail claims it need not cover "
                 "would add {v} yuan",
    "guarantor_cvar": "the guarantor's tail binds (CVaR of payouts <= capital): "
                      "{v} yuan of credit per 10 000 yuan",
    "public_costs_cvar": "the reserve's tail binds: each 10 000 yuan of tail public costs would add {v} yuan",
    "reguarantor_cvar": "each extra 10 000 yuan of re-guarantor capital supports {v} yuan of credit",
    "insurer_cvar": "each extra 10 000 yuan of the insurer's cap supports {v} yuan of credit",
    "appraiser_cvar": "each extra 10 000 yuan of the appraiser's cap supports {v} yuan of credit",
    "loss_budget": "each extra 10 000 yuan of loss budget supports {v} yuan of credit",
    "max_credit": "each extra 10 000 yuan of the credit cap adds {v} yuan of credit",
    "pool_leverage": "the pool's leverage limit binds (price {v} per 10 000 yuan)",
    "guarantor_leverage": "the guarantor's leverage limit binds (price {v} per 10 000 yuan of guarantees)",
}


def binding_lines(record: dict) -> list[str]:
    """The binding limits of an allocation with their shadow prices, in words."""
    prices = dict(record["shadow_prices"], guarantor_capital=record["guarantor_capital_price"])
    lines = []
    for name, bound in record["binding"].items():
        # a tail row of a payer with nothing to pay is tight at 0 = 0 and says nothing
        if not bound or (name.endswith("_cvar") and prices.get(name, 0.0) == 0.0):
            continue
        value = f"{prices.get(name, float('nan')) * 1e4:,.0f}"
        if name.startswith("demand["):
            lines.append(f"demand of {name[7:-1]} is met in full (more demand there: "
                         f"{prices.get(name, float('nan')):,.3g} yuan of credit per yuan)")
        elif name.startswith("min_credit["):
            lines.append(f"the minimum credit of {name[11:-1]} binds ({prices[name]:,.3g} per yuan)")
        else:
            lines.append(PRICE_WORDS.get(name, name + ": {v}").format(v=value))
            if name == "guarantor_cvar":
                lines.append(PRICE_WORDS["guarantor_capital"].format(
                    v=f"{prices['guarantor_capital'] * 1e4:,.0f}"))
    return lines


def verification_lines(verification: dict | None) -> list[str]:
    """The engine's verdict on each limit."""
    if verification is None:
        return ["not verified by the engine (verify_paths = 0)"]
    lines = [f"engine verification ({verification['n_paths']:,} paths, seed {verification['seed']}; "
             "verdict at one-sided 95 %):"]
    for c in verification["checks"].values():
        if c["units"] == "probability":
            est = f"{c['estimate']:.3%} ± {c['standard_error']:.3%}"
            limit = f"{c['limit']:.3%}"
        else:
            est = f"{c['estimate'] / WAN:,.1f} ± {c['standard_error'] / WAN:,.1f} 万元"
            limit = "none" if c["limit"] == float("inf") else f"{c['limit'] / WAN:,.1f} 万元"
        lines.append(f"  {c['description']:<56} {est:>26}  limit {limit:>12}  {c['verdict']}")
    cs = verification["credit_supplied"]
    lines.append(f"  credit actually supplied {cs['estimate'] / WAN:,.1f} ± {cs['se'] / WAN:,.1f} 万元 of "
                 f"{cs['planned'] / WAN:,.1f} planned (stop rules cut the rest)")
    return lines


def format_allocation(ds: xr.Dataset, record: dict) -> str:
    """The optimizer's allocation: levers, credit by segment, binding limits with shadow prices,
    the engine's verification, rounds, stability and multipliers."""
    ds.riskpool.require("allocation")
    a = ds.attrs
    levers = record["levers"]
    options = ", ".join(f"{g}: {o}" for g, o in record["chosen_option"].items())
    lines = [f"status {a['status']}: credit supplied {a['credit_supplied'] / WAN:,.1f} 万元 with budget "
             f"{a['budget'] / WAN:,.1f} 万元 = pool {levers['pool'] / WAN:,.1f} "
             f"+ guarantor capital injection "
             f"{levers['capital_injection'] / WAN:,.1f} + reserve {levers['reserve'] / WAN:,.1f} "
             f"(+ {(a['budget'] - sum(levers.values())) / WAN:,.1f} unused); sharing {options}",
             f"({record['method']}, {record['solver']}, {record['n_scenarios']:,} scenarios, tail level "
             f"{a['alpha']:g}; build {record['build_seconds']:.1f} s, solve {record['solve_seconds']:.1f} s)",
             "", f"{'segment':<34}{'option':>16}{'credit 万元':>14}{'demand 万元':>14}"]
    for seg in map(str, ds.segment.values):
        by_option = ds.credit.sel(segment=seg)
        credit = float(by_option.sum())
        option = str(by_option.idxmax("option").values) if credit > 0 else "-"
        lines.append(f"{seg:<34}{option:>16}{credit / WAN:>14,.1f}"
                     f"{float(ds.demand.sel(segment=seg)) / WAN:>14,.1f}")
    lines += ["", "binding limits:"] + [f"  {line}" for line in binding_lines(record)]
    lines += [""] + verification_lines(record["verification"])
    if len(record["rounds"]) > 1:
        lines += ["", f"back-off: {len(record['rounds'])} rounds"]
        for i, rd in enumerate(record["rounds"], start=1):
            verdict = "all hold" if rd["verification"] and rd["verification"]["holds"] else "not all hold"
            tightened = ", ".join(f"{k} {v:.4g}" for k, v in rd["tightened"].items()) or "as posed"
            lines.append(f"  round {i}: credit {rd['credit_supplied'] / WAN:,.1f} 万元 "
                         f"({tightened}): {verdict}")
    if record["verification"] is not None and not record["verification"]["holds"]:
        lines.append("  the allocation still fails a limit after the last round: do not sign it as is")
    if record["stability"] is not None:
        lines += ["", "stability over independent scenario sets (min - max, coefficient of variation):"]
        for name, s in record["stability"].items():
            lines.append(f"  {name:<18} {s['min'] / WAN:>12,.1f} - {s['max'] / WAN:>12,.1f} 万元   "
                         f"CV {s['cv']:.2%}")
    public = record["expected_public_loss"]
    capital = ds.attrs["guarantor_capital"]
    lines += ["", "multipliers:",
              f"  credit per budget yuan used      "
              f"{a['credit_supplied'] / max(sum(levers.values()), 1e-9):,.2f}",
              f"  marginal credit per budget yuan  "
              f"{record['shadow_prices'].get('budget', float('nan')):,.2f}",
              f"  credit per expected public-loss yuan "
              f"{a['credit_supplied'] / public if public > 0 else float('inf'):,.1f}"]
    if capital > 0:
        lines.append(f"  guarantees per yuan of guarantor capital {ds.attrs['guarantees'] / capital:,.2f}")
    return "\n".join(lines)


LOSS_FIGURES = ("loss_mean", "loss_se", "loss_quantile", "loss_quantile_se", "loss_es", "loss_es_se")


def sweep_csv(ds: xr.Dataset, path) -> None:
    """A sweep as a tidy CSV: one row per point, party and quantile (yuan, probabilities), the
    point's own figures (pool exhaustion, fiscal cost, credit, each with its SE) repeated on its rows."""
    losses = ds[list(LOSS_FIGURES)].to_dataframe().reset_index()
    keys = [d for d in ds.pool_exhaustion_prob.dims]
    point_figures = [v for v in ds.data_vars if set(ds[v].dims) == set(keys) and ds[v].dtype.kind == "f"]
    points = ds[point_figures].to_dataframe().reset_index() if keys else None
    frame = losses.merge(points, on=keys) if points is not None else losses
    frame = frame[keys + [c for c in frame.columns if c not in keys]]
    frame.to_csv(path, index=False, float_format="%.10g")


# Swept keys whose values are money (yuan), by their last part: shown in 万元.
MONEY_KEYS = ("size", "capital", "cap_per_loan", "cumulative_cap", "cap_total", "top_up_amount",
              "credit_line", "amount_min", "amount_max")
SWEEP_HEAD = ("P(pool runs dry)", "E[total loss] 万元", "E[bank loss] 万元", "E[fiscal cost] 万元")


def _axis_value(ds: xr.Dataset, dim: str, value) -> str:
    key = str(ds[dim].attrs.get("key", dim))
    if key.split(".")[-1] in MONEY_KEYS and isinstance(value, int | float):
        return f"{value / WAN:,.0f} 万元"
    return str(value)


def sweep_rows(ds: xr.Dataset) -> tuple[list[str], list[list[str]]]:
    """The sweep's table: a row per point, its labels (money in 万元) and its figures with SEs."""
    rp = ds.riskpool
    dims = list(ds.pool_exhaustion_prob.dims)
    rows = []
    for values in itertools.product(*(ds[d].values.tolist() for d in dims)):
        at = dict(zip(dims, values))
        pool = rp.estimate("loss_mean", party="pool", **at)
        dry = rp.estimate("pool_exhaustion_prob", **at)
        no_pool = pool.value == 0.0 and dry.value == 0.0
        rows.append([_axis_value(ds, d, v) for d, v in at.items()] + [
            "no pool" if no_pool else probability(ds, "pool_exhaustion_prob", 3, **at),
            wan(rp.estimate("gross_loss_mean", **at)), wan(rp.estimate("loss_mean", party="bank", **at)),
            wan(rp.estimate("fiscal_cost_mean", **at))])
    return dims + list(SWEEP_HEAD), rows


def text_table(head: list[str], rows: list[list[str]], n_left: int = 1,
               sections: tuple[int, ...] = (), show_header: bool = True) -> str:
    """A table as terminal text (rich: columns measured with East-Asian wide characters, 万元,
    taking two), the first `n_left` columns left-aligned, the others right-aligned, a rule under
    the head and after each row index in `sections`."""
    table = Table(box=box.HORIZONTALS, show_edge=False, pad_edge=False, show_header=show_header)
    for i, title in enumerate(head):
        table.add_column(Text(title), justify="left" if i < n_left else "right", no_wrap=True)
    for i, row in enumerate(rows):
        table.add_row(*map(Text, row), end_section=i in sections)
    console = Console(file=io.StringIO(), width=10_000, color_system=None, force_terminal=False)
    console.print(table)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())


def format_sweep(ds: xr.Dataset) -> str:
    """The sweep's table for a terminal (± 1 standard error)."""
    head, rows = sweep_rows(ds)
    return text_table(head, rows, len(ds.pool_exhaustion_prob.dims))


def allocation_csv(ds: xr.Dataset, path) -> None:
    """The allocation as a tidy CSV: one row per segment and option (credit and demand in yuan)."""
    frame = ds[["credit"]].to_dataframe().reset_index()
    frame["group"] = frame["segment"].map(dict(zip(ds.segment.values, ds.segment_group.values)))
    frame["demand"] = frame["segment"].map(dict(zip(ds.segment.values, ds.demand.values)))
    frame.to_csv(path, index=False, float_format="%.10g")


def frontier_csv(fr: xr.Dataset, path) -> None:
    """The frontier as a tidy CSV: one row per budget (yuan)."""
    names = [v for v in fr.data_vars if fr[v].dims == ("budget",)]
    fr[names].to_dataframe().to_csv(path, float_format="%.10g")
