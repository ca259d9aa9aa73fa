"""What the page shows of a run, read through `ds.riskpool`: the per-party table, the headline
figures with their standard errors, the charts (pool-balance fan, loss exceedance curves, pool
sizing curve) and the comparison with a pinned baseline. Money in 万元 / 亿元 (labels.money)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from bokeh.models import Band, ColumnDataSource
from bokeh.plotting import figure

from sim.app.labels import WAN, figure_label, money, money_se, translator
from sim.report.html import write_summary_csv
from sim.report.plots import COLORS
from sim.report.tables import percent, probability
from sim.results.compare import compare_runs

Words = Callable[[str], str]
FIGURE = {"height": 300, "sizing_mode": "stretch_width", "toolbar_location": None}


def party_frame(ds: xr.Dataset, w: Words) -> pd.DataFrame:
    """Per party that bears anything, then the total: E[loss], VaR, ES (± 1 s.e.) and share."""
    rp = ds.riskpool
    table = rp.party_table(rp.table_level())
    q = table.q
    return pd.DataFrame(
        [[w(r.label), money_se(r.mean), money_se(r.var), money_se(r.es), f"{r.share:.1%}"]
         for r in table.rows],
        columns=[w("party"), w("expected loss"), f"{w('VaR')} {q:.1%}", f"{w('ES')} {q:.1%}", w("share")])


def headline_frame(ds: xr.Dataset, w: Words) -> pd.DataFrame:
    """Figure and `value ± se` of the scheme's headline figures."""
    rp = ds.riskpool
    return pd.DataFrame([
        (w("P(pool runs dry)"), probability(ds, "pool_exhaustion_prob", 3)),
        (w("stop rule triggered"), probability(ds, "stop_rule_prob", 3)),
        (w("credit supplied"), money_se(rp.estimate("credit_supplied_mean"))),
        (w("fiscal cost"), money_se(rp.estimate("fiscal_cost_mean"))),
        (w("of which interest subsidy"), money_se(rp.estimate("subsidy_mean"))),
        (w("bank net income"), money_se(rp.estimate("bank_net_income_mean"))),
    ], columns=[w("figure"), "± 1 s.e."])


def pool_fan(ds: xr.Dataset, w: Words) -> figure:
    """The pool's balance (万元) by month: the mean and the bands between the q and 1 - q quantiles."""
    fig = figure(title=w("Pool balance"), x_axis_label=w("month"), y_axis_label=w("pool balance (万元)"),
                 **FIGURE)
    months = ds.period.values
    levels = [float(q) for q in ds["quantile"].values if q > 0.5]
    for i, q in enumerate(reversed(levels)):  # widest band first, the inner ones drawn over it darker
        src = ColumnDataSource({"x": months, "low": ds.pool_balance_low.sel(quantile=q).values / WAN,
                                "high": ds.pool_balance_quantile.sel(quantile=q).values / WAN})
        fig.add_layout(Band(base="x", lower="low", upper="high", source=src, fill_alpha=0.12 + 0.08 * i,
                            fill_color=COLORS["pool"], line_width=0))
    fig.line(months, ds.pool_balance_mean.values / WAN, color="black", legend_label=w("mean"))
    fig.legend.location = "bottom_left"
    return fig


def loss_exceedance(ds: xr.Dataset, w: Words) -> figure:
    """P(loss > x) against x (万元) per party and in total, a log probability axis."""
    fig = figure(title=w("Loss exceedance"), x_axis_label=w("loss (万元)"),
                 y_axis_label=w("probability of a larger loss"), y_axis_type="log", **FIGURE)
    exceed = 1.0 - ds["level"].values
    keep = exceed > 0
    for party in map(str, ds.party.values):
        curve = ds.loss_curve.sel(party=party).values
        if curve.max() > 0:
            fig.step(curve[keep] / WAN, exceed[keep], mode="after", color=COLORS[party],
                     legend_label=w(party))
    fig.step(ds.gross_loss_curve.values[keep] / WAN, exceed[keep], mode="after", color=COLORS["total"],
             line_dash="dashed", legend_label=w("total"))
    fig.legend.location = "top_right"
    return fig


def sizing_curve(ds: xr.Dataset, w: Words) -> figure:
    """P(pool runs dry) had the pool started at each size (万元), ± 2 s.e., from the same paths."""
    fig = figure(title=w("Pool sizing"), x_axis_label=w("initial pool (万元)"),
                 y_axis_label=w("P(pool runs dry)"), **FIGURE)
    p, se = (np.asarray(a, float) for a in ds.riskpool.estimates("pool_dry_by_size"))
    size = ds.pool_grid.values / WAN
    src = ColumnDataSource({"x": size, "low": np.maximum(p - 2 * se, 0.0), "high": p + 2 * se})
    fig.add_layout(Band(base="x", lower="low", upper="high", source=src, fill_alpha=0.2,
                        fill_color=COLORS["pool"], line_width=0))
    fig.line(size, p, color=COLORS["pool"], line_width=2)
    fig.scatter([ds.attrs["pool_size"] / WAN], [ds.riskpool.estimate("pool_exhaustion_prob").value],
                size=9, color="black")
    return fig


def comparison_frame(baseline: xr.Dataset, now: xr.Dataset, lang: str) -> pd.DataFrame:
    """Baseline, current and their difference (± 1 s.e., paired on the common random numbers) of each
    figure `sim.results.compare` compares, labelled in `lang`."""
    cmp = compare_runs([baseline, now], ["baseline", "current"])
    w, rows = translator(lang), []
    for fig_key, text in zip(map(str, cmp.figure.values), map(str, cmp.figure_label.values)):
        pick = cmp.sel(figure=fig_key)
        show = (lambda v, s: percent((v, s), 3)) if fig_key.endswith("_prob") else \
            (lambda v, s: money_se((v, s)))
        rows.append([figure_label(fig_key, text, cmp.attrs["quantile"], lang),
                     show(float(pick.value[0]), float(pick.value_se[0])),
                     show(float(pick.value[1]), float(pick.value_se[1])),
                     show(float(pick.difference[1]), float(pick.difference_se[1]))])
    return pd.DataFrame(rows, columns=[w("figure"), w("baseline"), w("current"), w("difference")])


def results_csv(ds: xr.Dataset) -> str:
    """The run's headline figures as `riskpool run` writes them to summary.csv (yuan, probabilities)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "summary.csv"
        write_summary_csv(ds, path)
        return path.read_text(encoding="utf-8")


def intro(ds: xr.Dataset, w: Words, seconds: float) -> str:
    """The line above the results: scenario, paths, seed, book, and how long the run took."""
    a = ds.attrs
    return (f"**{a.get('scenario_name', '')}** · {a['n_paths']:,} {w('paths')} · {w('seed')} {a['seed']} · "
            f"{a['n_loans']:,} {w('loans')}, {money(a['portfolio_amount'])} · ± 1 s.e. · "
            f"{w('ran in')} {seconds:.2f} s")
