"""The bank's view in the terminal and in CSV: who carries each tail (risk
contributions) and what capital the book needs, with and without the
scheme. Money in 万元 (10 000 yuan) in the terminal, yuan in CSV."""

from __future__ import annotations

import pandas as pd
import xarray as xr

from models.scenario import PARTIES
from sim.report.tables import WAN, percent, text_table, wan
from sim.risk.estimators import Estimate

# Groups listed per target in the terminal.
TOP = 5


def carriers(ds: xr.Dataset, q: float) -> list[str]:
    """The targets worth listing at level q: the total, then each party whose ES is not 0."""
    rp = ds.riskpool
    return ["gross"] + [p for p in PARTIES if rp.estimate("loss_es", party=p, quantile=q).value > 0]


def format_contributions(ds: xr.Dataset, q: float | None = None, top: int = TOP) -> str:
    """The largest ES contributors of the total and of each party's loss, per grouping held."""
    rp = ds.riskpool
    q = rp.level(rp.table_level() if q is None else q)
    lines = []
    for by in rp.groupings():
        head = ["loss of", by, f"ES {q:.1%} share", "ES contribution", f"VaR {q:.1%} contribution"]
        rows, sections = [], []
        for target in carriers(ds, q):
            frame = rp.contributions(by, target, q)
            for i, (group, r) in enumerate(frame.head(top).iterrows()):
                name = ("total" if target == "gross" else target) if i == 0 else ""
                rows.append([name, str(group), f"{r['es_share']:.1%}", wan(Estimate(r["es"], r["es_se"])),
                             wan(Estimate(r["var"], r["var_se"]))])
            sections.append(len(rows) - 1)
        window = float(ds.attrs.get("contribution_var_window", 0.0))
        lines += [f"Who carries the tail, by {by} (top {top} of {ds.sizes[by]:,}; Euler contributions "
                  f"E[part | loss >= VaR] adding up to the ES; VaR ones from the paths between the "
                  f"{q - window * (1 - q):.2%} and {q + window * (1 - q):.2%} quantiles). 万元, ± 1 s.e.",
                  text_table(head, rows, 2, tuple(sections[:-1])), ""]
    return "\n".join(lines).rstrip()


def _grouped_frame(ds: xr.Dataset, by: str, names: list[str]) -> pd.DataFrame:
    """Variables `names` over dim `by` as tidy rows: a `grouping` column (`by`), a `group` column, and
    the variables without their `_<by>` suffix (so groupings stack into one table)."""
    frame = ds[names].to_dataframe().reset_index().rename(columns={by: "group"})
    frame.columns = [c.replace(f"_{by}", "") for c in frame.columns]
    frame.insert(0, "grouping", by)
    return frame


def contributions_csv(ds: xr.Dataset, path) -> None:
    """Every contribution held: a row per grouping, group, loss, level (yuan)."""
    table = pd.concat([_grouped_frame(ds, by, [f"contribution_{k}_{by}{s}" for k in ("es", "var")
                                               for s in ("", "_se")])
                       for by in ds.riskpool.groupings()], ignore_index=True)
    total = table.groupby(["grouping", "loss_of", "quantile"])["contribution_es"].transform("sum")
    table["es_share"] = (table["contribution_es"] / total).where(total > 0, 0.0)
    table.to_csv(path, index=False, float_format="%.10g")


def _money(ds: xr.Dataset, name: str) -> str:
    se = ds[name].attrs.get("standard_error")
    value = float(ds[name])
    return wan(Estimate(value, float(ds[se]))) if se else f"{value / WAN:,.1f}"


def format_capital(ds: xr.Dataset) -> str:
    """Capital totals with and without the scheme, then EC and RAROC by segment and product."""
    a = ds.attrs
    relief = lambda k: float(ds[f"{k}_capital"] - ds[f"{k}_scheme_capital"])  # noqa: E731
    head = ["capital", "without the scheme", "with the scheme", "relief"]
    rows = [[label, _money(ds, f"{k}_capital"), _money(ds, f"{k}_scheme_capital"), f"{relief(k) / WAN:,.1f}"]
            for label, k in (("regulatory, F-IRB", "irb"), ("regulatory, standardised", "sa"))]
    measure = f"{a['measure'].upper()} {a['level']:.1%}"
    lines = [f"{a['scenario_name']}: the bank's capital on {a['n_loans']:,} loans, "
             f"{a['portfolio_amount'] / 1e8:.2f} 亿元 ({a['n_paths']:,} paths; pool cover {a['pool_cover']}, "
             f"F-IRB class {a['irb_class']}, "
             f"LGD {a['lgd']:.0%}). 万元, ± 1 s.e.", text_table(head, rows), "",
             f"economic capital ({measure} - EL of the loss the bank keeps)",
             f"  over the horizon      {_money(ds, 'economic_capital_horizon')}   "
             f"(EL {_money(ds, 'expected_loss_horizon')})",
             f"  over the first year   {_money(ds, 'economic_capital_year')}   "
             f"(EL {_money(ds, 'expected_loss_year')})", ""]
    for by in ("segment", "product"):
        head = [by, "exposure", "F-IRB", "F-IRB with scheme", "EL", "EC (Euler)", "RAROC over the lives"]
        head += ["breakeven fee"] if by == "segment" else []
        rows = []
        for i, group in enumerate(map(str, ds[by].values)):
            cell = lambda n: float(ds[f"{n}_{by}"][i])  # noqa: E731,B023
            se = lambda n: float(ds[f"{n}_{by}_se"][i])  # noqa: E731,B023
            row = [group, f"{cell('exposure') / WAN:,.0f}", f"{cell('irb_capital') / WAN:,.1f}",
                   f"{cell('irb_scheme_capital') / WAN:,.1f}",
                   wan(Estimate(cell("expected_loss"), se("expected_loss"))),
                   wan(Estimate(cell("economic_capital"), se("economic_capital"))),
                   percent(Estimate(cell("raroc"), se("raroc")), 2)]
            rows.append(row + ([f"{cell('breakeven_fee'):.2%} a year"] if by == "segment" else []))
        lines += [text_table(head, rows), ""]
    return "\n".join(lines).rstrip()


def capital_csv(ds: xr.Dataset, path) -> None:
    """Capital by segment and product, then the totals: a row per group (yuan, fractions)."""
    frames = [_grouped_frame(ds, by, [v for v in ds.data_vars if ds[v].dims == (by,)])
              for by in ("segment", "product")]
    totals = {v: float(ds[v]) for v in ds.data_vars if ds[v].ndim == 0}
    frames.append(pd.DataFrame([{"grouping": "total", "group": "book", **totals}]))
    pd.concat(frames, ignore_index=True).to_csv(path, index=False, float_format="%.10g")


def _figure_text(figure: str, value: float, se: float) -> str:
    est = Estimate(value, se)
    return percent(est, 3) if figure.endswith("_prob") else wan(est)


def compare_rows(cmp: xr.Dataset) -> tuple[list[str], list[list[str]]]:
    """The comparison as a table: a row per figure, each run's value, then each later run's
    difference from the first (± 1 s.e., paired where the runs share their paths)."""
    runs = list(map(str, cmp.run.values))
    head = ["figure", *runs] + [f"{r} - {runs[0]}" + (" (paired)" if bool(cmp.paired[i]) else "")
                                for i, r in enumerate(runs) if i]
    rows = []
    for j, figure in enumerate(map(str, cmp.figure.values)):
        row = [str(cmp.figure_label.values[j])]
        row += [_figure_text(figure, float(cmp.value[i, j]), float(cmp.value_se[i, j]))
                for i in range(len(runs))]
        row += [_figure_text(figure, float(cmp.difference[i, j]), float(cmp.difference_se[i, j]))
                for i in range(1, len(runs))]
        rows.append(row)
    return head, rows


def format_compare(cmp: xr.Dataset) -> str:
    """The comparison for a terminal, with its notes."""
    head, rows = compare_rows(cmp)
    lines = ["Runs compared (money in 万元, ± 1 s.e.; VaR differences unpaired).", text_table(head, rows)]
    if cmp.attrs.get("notes"):
        lines += ["", *("note: " + n for n in cmp.attrs["notes"].splitlines())]
    return "\n".join(lines)


def compare_csv(cmp: xr.Dataset, path) -> None:
    """A row per run and figure: value, its SE, the difference from the first run and its SE, paired
    (yuan; probabilities for *_prob figures)."""
    frame = cmp[["value", "value_se", "difference", "difference_se"]].to_dataframe().reset_index()
    frame["paired"] = frame["run"].map(dict(zip(cmp.run.values, cmp.paired.values.astype(bool))))
    frame.to_csv(path, index=False, float_format="%.10g")
