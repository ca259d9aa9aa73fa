"""A result's human summary: PNG plots, summary.csv and one self-contained
report.html (plots embedded) that a policy designer can mail. Results are
read through the `ds.riskpool` accessor."""

from __future__ import annotations

import base64
import csv
import html
import json
from pathlib import Path

import xarray as xr

from sim.report import plots
from sim.report.bank_tables import (
    carriers,
    compare_csv,
    compare_rows,
    contributions_csv,
    format_contributions,
)
from sim.report.language import words
from sim.report.tables import (
    WAN,
    format_allocation,
    format_operations,
    percent,
    probability,
    sampling_note,
    scheme_figures,
    sweep_csv,
    sweep_rows,
    wan,
)

TABLE_STYLE = """
body{font-family:system-ui,"Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei",
"WenQuanYi Micro Hei",sans-serif;max-width:960px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}img{max-width:100%}
pre{background:#f8f8f8;padding:1em;overflow-x:auto;font-size:12px}.note{color:#666;font-size:90%}
"""


def write_summary_csv(ds: xr.Dataset, path: Path) -> None:
    """The headline figures, one a row: figure, value, standard error, unit."""
    figures = ds.riskpool.headline()
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["figure", "value", "standard_error", "unit"])
        for name, value in figures.items():
            if name.endswith("_se") and (name[:-3] in figures or f"{name[:-3]}_mean" in figures):
                continue
            unit = "probability" if name.endswith("_prob") or name.startswith("default_rate") else \
                "yuan per yuan" if name.endswith("_per_credit") else "yuan"
            se = figures.get(f"{name}_se", figures.get(f"{name[:-5]}_se") if name.endswith("_mean") else None)
            writer.writerow([name, f"{value:.10g}", "" if se is None else f"{se:.10g}", unit])


def image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _party_table(ds: xr.Dataset, w) -> str:
    table = ds.riskpool.party_table(ds.riskpool.table_level())
    cells = []
    for row in table.rows:
        tag = "th" if row.label == "total" else "td"
        cells.append(f"<tr><{tag}>{w(row.label)}</{tag}>" + "".join(
            f"<{tag}>{v}</{tag}>" for v in (wan(row.mean), wan(row.var), wan(row.es), f"{row.share:.1%}"))
            + "</tr>")
    return (f"<table><tr><th>{w('party')}</th><th>{w('expected loss')}</th><th>{w('VaR')} {table.q:.1%}</th>"
            f"<th>{w('ES')} {table.q:.1%}</th><th>{w('share')}</th></tr>{''.join(cells)}</table>")


def _figures_table(ds: xr.Dataset, w, lang: str) -> str:
    rp = ds.riskpool

    def money(name: str) -> str:
        return f"{wan(rp.estimate(name))} 万元"

    rows = [("pool exhaustion probability", probability(ds, "pool_exhaustion_prob")),
            ("stop rule triggered", probability(ds, "stop_rule_prob")),
            ("default rate (share of loans)", percent(rp.estimate("default_rate_mean"), 3)),
            ("credit supplied", money("credit_supplied_mean")), ("fiscal cost", money("fiscal_cost_mean")),
            ("interest subsidy", money("subsidy_mean")),
            ("guarantee compensation", money("guarantee_compensation_mean")),
            ("bank rewards", money("bank_reward_mean")), ("bank net income", money("bank_net_income_mean")),
            ]
    rows = [(w(a), b) for a, b in rows] + scheme_figures(ds, lang)
    return "<table>" + "".join(f"<tr><td>{a}</td><td>{b}</td></tr>" for a, b in rows) + "</table>"


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    """A head row and text rows as an HTML table (escaped)."""
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def _sweep_table(ds: xr.Dataset) -> str:
    return _html_table(*sweep_rows(ds)) + "<p class='note'>± 1 standard error</p>"


def _frontier_table(fr: xr.Dataset) -> str:
    """Each budget's allocation: credit, the budget's split, option and whether the engine verified it."""
    rows = []
    for i in range(fr.sizes["budget"]):
        pt = fr.isel(budget=i)
        cells = [f"{float(pt[v]) / WAN:,.1f}" for v in ("budget", "credit_supplied", "pool_size",
                                                      "capital_injection", "reserve")]
        verified = "holds" if "verified" in fr and bool(pt.verified) else "-"
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells)
                    + f"<td>{html.escape(str(pt.chosen_option.values))}</td><td>{verified}</td></tr>")
    return ("<table><tr><th>budget 万元</th><th>credit 万元</th><th>pool</th><th>capital injection</th>"
            f"<th>reserve</th><th>option</th><th>engine</th></tr>{''.join(rows)}</table>")


def _allocation_section(allocation: xr.Dataset, record: dict) -> str:
    """The terminal's account of the allocation, and its credit by segment as a table."""
    rows = "".join(
        f"<tr><td>{html.escape(str(seg))}</td><td>{html.escape(str(group))}</td>"
        f"<td>{float(allocation.credit.sel(segment=seg).sum()) / WAN:,.1f}</td>"
        f"<td>{float(allocation.demand.sel(segment=seg)) / WAN:,.1f}</td></tr>"
        for seg, group in zip(allocation.segment.values, allocation.segment_group.values))
    return (f"<pre>{html.escape(format_allocation(allocation, record))}</pre>"
            f"<table><tr><th>segment</th><th>option group</th><th>credit 万元</th><th>demand 万元</th></tr>"
            f"{rows}</table>")


def write_compare_report(cmp: xr.Dataset, runs: list[xr.Dataset], folder: Path) -> Path:
    """compare.csv, the overlaid loss curves and report.html of a comparison of runs."""
    names = list(map(str, cmp.run.values))
    compare_csv(cmp, folder / "compare.csv")
    table = _html_table(*compare_rows(cmp))
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in cmp.attrs.get("notes", "").splitlines())
    body = ["<h1>riskpool: runs compared</h1>",
            f"<p class='note'>{html.escape(', '.join(names))} · money in 万元 (10 000 yuan), ± 1 standard "
            "error; differences against the first run, paired path by path where the runs share book, "
            "seed and paths (VaR differences unpaired) · every figure in compare.csv</p>", table, notes,
            "<h2>Loss distributions</h2>",
            image(plots.compare_curves(runs, names, folder / "loss_curves.png"))]
    return page(folder, "riskpool: runs compared", body)


def _sizing_section(ds: xr.Dataset, folder: Path, lang: str = "en") -> list[str]:
    """The pool-sizing curve, when some pool claims on some path (a scheme without a pool has none)."""
    if "pool_dry_by_size" not in ds or not float(ds["pool_dry_by_size"].max()) > 0:
        return []
    w = words(lang)
    return [f"<h2>{w('Pool sizing')}</h2><p>{w('pool_sizing_text')}</p>",
            image(plots.sizing_curve(ds, folder / "pool_sizing.png"))]


def _contributions_section(ds: xr.Dataset, folder: Path, w) -> list[str]:
    """Who carries each tail: a chart per grouping held, the terminal table, contributions.csv."""
    if not ds.riskpool.groupings():
        return []
    contributions_csv(ds, folder / "contributions.csv")
    targets = carriers(ds, ds.riskpool.level(ds.riskpool.table_level()))
    out = [f"<h2>{w('Who carries the tail (risk contributions)')}</h2><p>contributions.csv</p>"]
    for by in ds.riskpool.groupings():
        out.append(image(plots.contributions_chart(ds, by, targets, folder / f"contributions_{by}.png")))
    return out + [f"<pre>{html.escape(format_contributions(ds))}</pre>"]


def write_report(ds: xr.Dataset, folder: Path, scenario_toml: str = "",
                 frontier: xr.Dataset | None = None, record: dict | None = None, lang: str = "en") -> Path:
    """Write the PNG plots, summary.csv (runs) and report.html into `folder`; returns report.html.
    An allocation's account comes from `record` (allocation.json's content). A run's report is in
    English or Chinese (`lang`; the plots keep English axes)."""
    folder = Path(folder)
    kind = ds.riskpool.kind
    w = words(lang)
    sections = [f"<h1>{w('riskpool report')}: {html.escape(str(ds.attrs.get('scenario_name', '')))}</h1>"]
    if kind != "allocation":
        sections.append(
            f"<p class='note'>{ds.attrs.get('n_paths', 0):,} {w('paths')} "
            f"({html.escape(sampling_note(ds, lang))}) · {w('seed')} {ds.attrs.get('seed')} · "
            f"scenario sha256 {str(ds.attrs.get('scenario_sha256', ''))[:12]} · riskpool "
            f"{ds.attrs.get('riskpool_version', '')} · "
            f"{w('money in 万元 (10 000 yuan), ± 1 standard error')}</p>")
    if kind == "allocation":
        if record is None:
            record = json.loads((folder / "allocation.json").read_text(encoding="utf-8"))
        sections += ["<h2>Optimal allocation</h2>", _allocation_section(ds, record)]
    elif kind == "twin":
        sections += ["<h2>Operations (SimPy twin)</h2>", f"<pre>{html.escape(format_operations(ds))}</pre>"]
    elif kind == "sweep":
        sections += ["<h2>Sweep</h2>", f"<p>Swept keys: {html.escape(', '.join(ds.attrs['sweep_keys']))}; "
                     "every point uses the same random numbers (every figure in sweep.csv, a row per "
                     "point, party and quantile).</p>", _sweep_table(ds)]
        sweep_csv(ds, folder / "sweep.csv")
        png = plots.exhaustion_vs_pool(ds, folder / "exhaustion_vs_pool.png")
        if png is not None:
            sections += ["<h2>Exhaustion probability vs pool size</h2>", image(png)]
        sections += _sizing_section(ds, folder)
    else:
        write_summary_csv(ds, folder / "summary.csv")
        sections += [f"<h2>{w('Headline per party')}</h2>", _party_table(ds, w), _figures_table(ds, w, lang),
                     f"<h2>{w('Loss distributions')}</h2>",
                     image(plots.loss_curves(ds, folder / "loss_curves.png")),
                     f"<h2>{w('Pool balance over time')}</h2>",
                     image(plots.pool_fan(ds, folder / "pool_balance.png")),
                     *_sizing_section(ds, folder, lang)]
        sections += _contributions_section(ds, folder, w)
    if frontier is not None:
        sections += ["<h2>Optimizer frontier</h2>", image(plots.frontier(frontier, folder / "frontier.png")),
                     _frontier_table(frontier)]
    if scenario_toml:
        sections += [f"<h2>{w('Inputs (the resolved scenario, as run)')}</h2>",
                     f"<details><summary>scenario.toml</summary><pre>{html.escape(scenario_toml)}</pre></details>"]
    return page(folder, w("riskpool report"), sections, lang)


def page(folder: Path, title: str, sections: list[str], lang: str = "en") -> Path:
    """Write report.html of `sections` into `folder`; returns its path."""
    text = (f"<!DOCTYPE html><html lang='{lang}'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{TABLE_STYLE}</style></head>"
            f"<body>{''.join(sections)}</body></html>")
    path = folder / "report.html"
    path.write_text(text, encoding="utf-8")
    return path
