"""PNG plots of a run, a sweep or an optimizer frontier (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

WAN = 1e4
COLORS = {"bank": "#1f77b4", "pool": "#2ca02c", "guarantor": "#d62728", "insurer": "#9467bd",
          "appraiser": "#8c564b", "reguarantor": "#e377c2", "government": "#7f7f7f", "total": "#000000"}


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _log_probability_axes(ax, xlabel: str, ylabel: str, title: str) -> None:
    """Finish a plot of probabilities on a log axis: labels, title, grid and legend."""
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)


def loss_curves(ds: xr.Dataset, path: Path) -> Path:
    """Exceedance curves P(loss > x) per party and in total, log scale."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    exceed = 1.0 - ds["level"].values
    keep = exceed > 0
    for party in map(str, ds.party.values):
        curve = ds.loss_curve.sel(party=party).values
        if curve.max() > 0:
            ax.step(curve[keep] / WAN, exceed[keep], where="post", label=party, color=COLORS[party])
    ax.step(ds.gross_loss_curve.values[keep] / WAN, exceed[keep], where="post", label="total",
            color=COLORS["total"], linestyle="--")
    _log_probability_axes(ax, "loss over the horizon and run-off (10 000 yuan)",
                          "probability of a larger loss",
                          f"Loss distribution by party ({ds.attrs['n_paths']:,} paths)")
    ax.legend()
    return _save(fig, path)


def pool_fan(ds: xr.Dataset, path: Path) -> Path:
    """Pool balance over time: mean and quantile bands across paths."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    months = ds.period.values
    high, low = ds.pool_balance_quantile / WAN, ds.pool_balance_low / WAN
    levels = [q for q in ds["quantile"].values if q > 0.5]
    for i, q in enumerate(reversed(levels)):  # widest first, inner bands overlay darker
        ax.fill_between(months, low.sel(quantile=q), high.sel(quantile=q), alpha=0.12 + 0.08 * i,
                        color=COLORS["pool"], label=f"{1 - q:.1%}–{q:.1%} of paths")
    ax.plot(months, ds.pool_balance_mean / WAN, color="black", label="mean")
    if 0.5 in ds["quantile"].values:
        ax.plot(months, high.sel(quantile=0.5), color=COLORS["pool"], linestyle="--", label="median")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("month")
    ax.set_ylabel("pool balance (10 000 yuan)")
    ax.set_title("Risk-compensation pool balance across paths")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def exhaustion_vs_pool(ds: xr.Dataset, path: Path) -> Path | None:
    """For a sweep over the pool size: exhaustion probability (± 2 s.e.) per other point."""
    if "pool_size" not in ds.dims:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    others, series = _point_series(ds, "pool_exhaustion_prob", "pool_size")
    size = ds.pool_size.values / WAN
    for values, p, se in series:
        seen = p > 0  # a log axis: points never seen dry are left out (the table shows them)
        ax.errorbar(size[seen], p[seen], yerr=[(p - _log_low(p, se))[seen], 2 * se[seen]], marker="o",
                    capsize=3, label=", ".join(map(str, values)) or None)
    target = _target_line(ax, ds)
    _log_probability_axes(ax, "pool size (10 000 yuan)", "P(pool exhausted)",
                          "Pool exhaustion probability vs pool size (± 2 s.e.)")
    if others or target is not None:
        ax.legend(title=", ".join(others) or None, fontsize=8)
    return _save(fig, path)


def _point_series(ds: xr.Dataset, name: str, along: str) -> tuple[list[str], list[tuple]]:
    """Estimate `name` along dim `along` for each point of the other dims: (those dims, a list of
    (their values, estimates, SEs as arrays))."""
    prob, se = ds.riskpool.estimates(name)
    others = [d for d in prob.dims if d != along]
    if not others:
        return others, [((), np.asarray(prob, float), np.asarray(se, float))]
    stacked = xr.Dataset({"p": prob, "se": se}).stack(other=others)
    keys = [key if isinstance(key, tuple) else (key,) for key in stacked.other.values]
    p, se = np.asarray(stacked.p, float), np.asarray(stacked.se, float)
    axis = stacked.p.get_axis_num("other")
    return others, [(key, np.take(p, i, axis), np.take(se, i, axis)) for i, key in enumerate(keys)]


def _log_low(p: np.ndarray, se: np.ndarray) -> np.ndarray:
    """The lower end of a ± 2 s.e. band on a log axis: kept above zero (at least p / 1000)."""
    return np.maximum(p - 2 * se, p * 1e-3)


def _target_line(ax, ds: xr.Dataset) -> float | None:
    """Draw the Dataset's sizing target as a dashed line, when it has one; returns it."""
    target = ds.attrs.get("sizing_target")
    if target is not None:
        ax.axhline(target, color="black", linestyle="--", linewidth=1, label=f"target {target:g}")
    return target


def sizing_curve(ds: xr.Dataset, path: Path) -> Path:
    """P(pool runs dry) against the initial pool size (± 2 s.e., log axis) from
    the paths' required pools, with the sizing target and answer when set."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    size = ds.pool_grid.values / WAN
    reach = 0
    others, series = _point_series(ds, "pool_dry_by_size", "pool_grid")
    for values, p, se in series:
        label = ", ".join(f"{d}={v}" for d, v in zip(others, values))
        positive = p > 0
        if positive.any():
            reach = max(reach, int(np.flatnonzero(positive)[-1]) + 2)
        line, = ax.plot(size[positive], p[positive], marker=".", label=label or "P(pool runs dry)")
        ax.fill_between(size[positive], _log_low(p, se)[positive], (p + 2 * se)[positive], alpha=0.2,
                        color=line.get_color())
    target = _target_line(ax, ds)
    if target is not None:
        if ds.riskpool.kind == "run":
            answer = ds.riskpool.required_pool(target)
            ax.axvspan((answer.value - 1.96 * answer.se) / WAN, (answer.value + 1.96 * answer.se) / WAN,
                       color="grey", alpha=0.3, label="smallest pool meeting it (95 % CI)")
    if "pool_size" in ds.attrs and ds.riskpool.kind == "run":
        ax.axvline(ds.attrs["pool_size"] / WAN, color=COLORS["pool"], linewidth=1,
                   label="the scenario's pool")
    ax.set_xlim(0, size[min(max(reach, 2), size.size - 1)])
    _log_probability_axes(ax, "initial pool (10 000 yuan)", "P(pool runs dry)",
                          "Pool sizing: probability that the pool runs dry (± 2 s.e.)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def frontier(fr: xr.Dataset, path: Path) -> Path:
    """Credit supplied against the budget (points the engine verified filled), the budget's split
    into pool, capital injection and reserve as stacked areas, and the marginal credit per budget yuan."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 7.0), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    ok = np.asarray(fr.status.values != "") & np.isfinite(fr.credit_supplied.values)
    budget = fr.budget.values[ok] / WAN
    credit = fr.credit_supplied.values[ok] / WAN
    top.plot(budget, credit, color="black", marker="o", markerfacecolor="white", label="credit supplied")
    if "verified" in fr:
        held = np.asarray(fr.verified.values[ok], bool)
        top.plot(budget[held], credit[held], "o", color="black", label="verified by the engine")
    top.set_ylabel("credit (10 000 yuan)")
    top.set_title("Optimizer frontier")
    twin = top.twinx()
    twin.plot(budget, fr.marginal_credit.values[ok], color=COLORS["guarantor"], linestyle="--", marker=".",
              label="marginal credit per budget yuan")
    twin.set_ylabel("credit per budget yuan", color=COLORS["guarantor"])
    lines = top.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    top.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="upper left")
    top.grid(True, alpha=0.3)
    split = [fr[v].values[ok] / WAN for v in ("pool_size", "capital_injection", "reserve")]
    bottom.stackplot(budget, *split, labels=["pool", "guarantor capital injection", "reserve"],
                     colors=[COLORS["pool"], COLORS["guarantor"], COLORS["government"]], alpha=0.7)
    bottom.plot(budget, budget, color="black", linewidth=0.8, linestyle=":", label="budget")
    bottom.set_xlabel("budget (10 000 yuan)")
    bottom.set_ylabel("budget used (10 000 yuan)")
    bottom.grid(True, alpha=0.3)
    bottom.legend(fontsize=8, loc="upper left")
    return _save(fig, path)


def contributions_chart(ds: xr.Dataset, by: str, targets: list[str], path: Path, top: int = 8) -> Path:
    """The largest ES contributors of each target (the total, then the parties), a bar panel each."""
    rp = ds.riskpool
    q = rp.level(rp.table_level())
    cols = min(3, len(targets))
    rows = -(-len(targets) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, (0.35 * top + 1.4) * rows), squeeze=False)
    for ax in axes.flat[len(targets):]:
        ax.set_visible(False)
    for ax, target in zip(axes.flat, targets):
        frame = rp.contributions(by, target, q).head(top)[::-1]
        ax.barh(frame.index, frame["es"] / WAN, xerr=frame["es_se"] / WAN, capsize=2,
                color=COLORS.get(target, COLORS["total"]))
        ax.set_title("total" if target == "gross" else target)
        ax.set_xlabel(f"ES {q:.1%} contribution (10 000 yuan)")
        ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle(f"Who carries the tail, by {by} (largest {top}, ± 1 s.e.)")
    return _save(fig, path)


def compare_curves(runs: list[xr.Dataset], names: list[str], path: Path) -> Path:
    """The exceedance curves of the total loss (solid) and the bank's (dashed) of each run, overlaid."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for k, (ds, name) in enumerate(zip(runs, names)):
        exceed = 1.0 - ds["level"].values
        keep = exceed > 0
        color = f"C{k % 10}"
        ax.step(ds.gross_loss_curve.values[keep] / WAN, exceed[keep], where="post", color=color,
                label=f"{name}: total")
        ax.step(ds.loss_curve.sel(party="bank").values[keep] / WAN, exceed[keep], where="post", color=color,
                linestyle="--", label=f"{name}: bank")
    _log_probability_axes(ax, "loss (10 000 yuan)", "probability of a larger loss",
                          "Loss distributions compared")
    ax.legend(fontsize=8)
    return _save(fig, path)


def calibration_plots(by_band, yearly, recovered, path: Path) -> Path:
    """Three panels: observed default rate (95 % interval) against the fitted PD per stage and score
    band; each year's default rate against the fitted one-factor 5-95 % band; recoveries."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    ax = axes[0]
    for k, (stage, part) in enumerate(by_band.groupby("stage", sort=False)):
        x = np.arange(len(part)) + 0.12 * k
        ax.errorbar(x, part["observed"], yerr=[part["observed"] - part["observed_low"],
                    part["observed_high"] - part["observed"]], fmt="o", capsize=3, color=f"C{k}",
                    label=f"{stage}: observed")
        ax.plot(x, part["fitted"], "x", color=f"C{k}", markersize=9, label=f"{stage}: fitted")
        ax.set_xticks(np.arange(len(part)), part["score_band"])
    ax.set_xlabel("score band")
    ax.set_ylabel("annual default rate")
    ax.set_title("Calibration by score band (95 % intervals)")
    ax.legend(fontsize=7)
    ax = axes[1]
    if len(yearly):
        ax.fill_between(yearly["year"], yearly["band_low"], yearly["band_high"], alpha=0.2, color="C0",
                        label="fitted model, 5-95 %")
        ax.plot(yearly["year"], yearly["rate"], "o-", color="black", label="observed")
        ax.legend(fontsize=8)
    ax.set_xlabel("year")
    ax.set_ylabel("default rate")
    ax.set_title("Yearly default rates and the fitted correlation")
    ax = axes[2]
    if len(recovered):
        ax.hist(recovered, bins=20, range=(0, 1), color="C2")
    ax.set_xlabel("recovered fraction")
    ax.set_ylabel("defaults")
    ax.set_title(f"Recoveries ({len(recovered)} defaults)")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return _save(fig, path)
