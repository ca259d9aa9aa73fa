"""`riskpool validate`, `riskpool run` and `riskpool portfolio`."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import pandas as pd

from models.portfolio import PortfolioError, segment_index
from models.scenario import ScenarioError
from sim.cli.common import (
    STREAMING_NOTE,
    Progress,
    common_run_options,
    dask_scheduler,
    fail,
    finite_number,
    groupings_option,
    lang_option,
    load_or_fail,
    results_folder,
    second_pass_progress,
    set_option,
    tail_option,
    with_tail,
    write_results,
)
from sim.engine.plan import build_portfolio, compile_plan
from sim.report.bank_tables import format_contributions
from sim.report.tables import format_operations, format_table
from sim.results.io import atomic_file
from sim.scale.runs import run as run_engine
from sim.twin.run import run_twin


@click.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@set_option
def validate(scenario: str, overrides: tuple[str, ...]) -> None:
    """Check a scenario file and its portfolio; exit 0 if valid, 2 with the reason if not."""
    sc = load_or_fail(scenario, overrides)
    try:
        portfolio = build_portfolio(sc)
    except PortfolioError as exc:
        fail(str(exc))
    click.echo(
        f"{scenario}: valid — {sc.name}: {len(portfolio):,} loans, "
        f"{portfolio.total_amount / 1e8:.2f} 亿元, products {list(sc.products)}"
    )


@click.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--engine", type=click.Choice(["mc", "des"]), default="mc", show_default=True,
              help="mc: the fast Monte Carlo engine; des: the SimPy operational twin (claims queue, delays).")
@click.option("--reviewers", type=click.IntRange(min=1), help="des: claim reviewers (default: no queue).")
@click.option("--review-days", type=float, default=0.0, callback=finite_number(0),
              help="des: review time per claim, days.")
@click.option("--approval-days", type=float, default=0.0, callback=finite_number(0, 30, open_high=True),
              help="des: loan review and approval time, days.")
@click.option("--quantile", type=float, callback=finite_number(0, 1, open_low=True, open_high=True),
              help="The VaR/ES level the table shows, one of simulation.quantiles (default: the highest "
                   "up to 0.99); every level is in summary.csv and results.nc.")
@click.option("--contributions", callback=groupings_option, metavar="BY[,BY...]",
              help="Risk contributions by segment, sector, stage, product or loan (comma-separated): who "
                   "carries the tail of the total and of each party's loss (Euler ES and VaR contributions "
                   "with SEs); prints the largest, writes contributions.csv.")
@lang_option
@tail_option
@common_run_options
def run(scenario: str, engine: str, reviewers: int | None, review_days: float, approval_days: float,
        quantile: float | None, contributions: tuple[str, ...], lang: str, tail: str | None,
        paths: int | None, seed: int | None, threads: int | None, out: str | None, quiet: bool,
        progress_mode: str, scheduler: str | None, overrides: tuple[str, ...]) -> None:
    """Simulate a scenario, print the per-party table and write the results folder
    (results.nc, summary.json/csv, scenario.toml, PNG plots, report.html).

    With --tail, paths are importance-sampled towards a rare event and every
    estimate is weighted by the paths' likelihood ratios, e.g. --tail pool_dry.

    With --engine des, the SimPy twin runs the scheme month by month (use fewer
    paths, e.g. --paths 2000) and reports reimbursement delays and claim queues."""
    sc = load_or_fail(scenario, with_tail(overrides, tail))
    if quantile is not None and quantile not in sc.simulation.quantiles:
        fail(f"--quantile {quantile:g}: not among simulation.quantiles {sc.simulation.quantiles}; "
             "add it with --set 'simulation.quantiles=[...]'")
    if engine == "des" and sc.simulation.tail != "off":
        fail("--engine des runs plain Monte Carlo: use --tail off (importance sampling is the mc engine's)")
    if engine == "des" and contributions:
        fail("--contributions is the mc engine's (the twin keeps no per-default losses)")
    n_paths = paths or (sc.simulation.n_paths if engine == "mc" else 2000)
    target = results_folder(sc, out, "" if engine == "mc" else "-des")
    progress = Progress(n_paths, quiet, progress_mode)
    try:
        if engine == "mc":
            ds = run_engine(sc, n_paths=n_paths, seed=seed, threads=threads,
                            scheduler=dask_scheduler(scheduler), progress=progress,
                            contributions=contributions,
                            contributions_progress=second_pass_progress(quiet, progress_mode),
                            redraw_progress=second_pass_progress(quiet, progress_mode, STREAMING_NOTE))
        else:
            ds = run_twin(sc, n_paths=n_paths, seed=seed, reviewers=reviewers, review_days=review_days,
                          approval_days=approval_days, progress=progress)
    except (PortfolioError, ScenarioError) as exc:
        fail(str(exc))
    write_results(target, ds, sc, lang)
    if not quiet:
        click.echo(format_table(ds, quantile, lang) if engine == "mc" else format_operations(ds))
        if contributions:
            click.echo("\n" + format_contributions(ds, quantile))
    click.echo(f"results written to {target} (open {target / 'report.html'})")


# Annual PD bands of the portfolio summary.
PD_BANDS = (0.0, 0.01, 0.02, 0.05, 0.10, 1.0)


def assigned_frame(sc, pf) -> pd.DataFrame:
    """The loans with what the model assigns them: the annual PD and rate the engine uses (moral
    hazard included), the lifetime PD (stress included), the expected loss (yuan, the full amount as
    exposure: an upper bound for amortising loans) and the optimizer's segment."""
    plan = compile_plan(sc, pf)
    back = np.empty_like(plan.loan_order)
    back[plan.loan_order] = np.arange(plan.loan_order.size)  # portfolio row -> plan loan
    hazard, start, life = plan.hazard[back], plan.start[back], plan.life[back]
    lifetime = -np.expm1(-hazard * (plan.clock[start + life] - plan.clock[start]))
    frame = pf.to_frame()
    frame["model_pd_annual"] = -np.expm1(-12.0 * hazard)
    frame["model_rate"] = plan.rate[back]
    frame["lifetime_pd"] = lifetime
    frame["expected_loss"] = lifetime * pf.amount * (1.0 - plan.recovery_mean[back])
    index, labels = segment_index(pf, list(sc.optimize.score_bands))
    frame["segment"] = np.asarray(labels, dtype=object)[index]
    return frame


@click.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False),
              help="Also write the loans to this CSV file, with what the model assigns each (annual PD, "
                   "rate, lifetime PD, expected loss, segment); it loads back as a portfolio file.")
@set_option
def portfolio(scenario: str, csv_out: str | None, overrides: tuple[str, ...]) -> None:
    """Summarise the scenario's portfolio by stage and product, sector and PD band (optionally
    export it as CSV)."""
    sc = load_or_fail(scenario, overrides)
    try:
        pf = build_portfolio(sc)
    except PortfolioError as exc:
        fail(str(exc))
    frame = assigned_frame(sc, pf)
    click.echo(f"{sc.name}: {len(pf):,} loans, {pf.total_amount / 1e8:.2f} 亿元 (amounts and expected "
               "loss in 万元, PDs as the engine uses them)")
    frame["pd_band"] = pd.cut(frame["model_pd_annual"], PD_BANDS, right=False,
                              labels=[f"{a:.0%}-{b:.0%}" for a, b in zip(PD_BANDS[:-1], PD_BANDS[1:])])
    for by in (["stage", "product"], ["sector"], ["pd_band"]):
        table = frame.groupby(by, observed=True).agg(
            loans=("amount", "size"), amount_wan=("amount", lambda a: a.sum() / 1e4),
            mean_score=("score", "mean"), mean_pd=("model_pd_annual", "mean"),
            expected_loss_wan=("expected_loss", lambda a: a.sum() / 1e4))
        click.echo("\n" + table.round(4).to_string())
    if csv_out:
        try:
            with atomic_file(Path(csv_out)) as tmp:
                frame.drop(columns="pd_band").to_csv(tmp, index=False, float_format="%.10g")
        except OSError as exc:
            fail(f"{csv_out}: cannot write: {exc.strerror or exc}")
        click.echo(f"loans written to {csv_out}")
