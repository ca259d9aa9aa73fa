"""`riskpool calibrate`: the default model fitted to a bank's history."""

from __future__ import annotations

import html
from pathlib import Path

import click

from models.history import HistoryError, load_history
from models.portfolio import PortfolioError
from models.scenario import ScenarioError
from sim.calibration.fit import calibrate as fit_history
from sim.calibration.output import fragment_toml, scenario_toml
from sim.cli.common import fail, load_or_fail, results_folder, write_error
from sim.report import plots
from sim.report.html import image, page
from sim.report.tables import text_table
from sim.results.io import atomic_folder


@click.command()
@click.argument("history", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False),
              help="Folder to write (default results/calibrate-<time>); must not exist.")
@click.option("--merge-into", "merge_into", type=click.Path(dir_okay=False), metavar="SCENARIO",
              help="Write SCENARIO with the fitted keys set as out/scenario.toml (runnable); the PD targets "
                   "are then taken over SCENARIO's own book.")
@click.option("--bootstrap", "n_boot", type=click.IntRange(20, 100_000), default=500, show_default=True,
              help="Bootstrap resamples of the years for the correlation's intervals.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of the bootstrap.")
def calibrate(history: str, out: str | None, merge_into: str | None, n_boot: int, seed: int) -> None:
    """Fit the default model to a firm-year HISTORY (CSV or Parquet; columns in scenarios/README.md):
    score -> PD by stage (logit GLM, errors clustered by year), the asset correlation (Vasicek MLE and
    method of moments, bootstrap over years), recoveries (Beta by moments), each with its 95 % interval.

    \b
    Example:
      riskpool calibrate scenarios/data/score_loan_history.csv \\
          --merge-into scenarios/shijiazhuang_score_loan.toml --out results/cal
      riskpool run results/cal/scenario.toml
    Writes calibration.toml (the fitted keys), scenario.toml (with --merge-into), estimates.csv,
    calibration_by_band.csv, yearly_default_rates.csv and report.html."""
    source = load_or_fail(merge_into, ()) if merge_into else None
    target = results_folder(None, out, "-calibrate")
    try:
        data = load_history(history)
        cal = fit_history(data, source, n_boot=n_boot, seed=seed)
    except (HistoryError, PortfolioError, ScenarioError, ValueError) as exc:
        fail(str(exc))
    name = Path(history).name
    try:
        with atomic_folder(target) as tmp:
            (tmp / "calibration.toml").write_text(fragment_toml(cal, name), encoding="utf-8")
            if cal.scenario is not None:
                (tmp / "scenario.toml").write_text(scenario_toml(cal, name), encoding="utf-8")
            cal.estimates.to_csv(tmp / "estimates.csv", index=False, float_format="%.10g")
            cal.by_band.to_csv(tmp / "calibration_by_band.csv", index=False, float_format="%.10g")
            cal.yearly.to_csv(tmp / "yearly_default_rates.csv", index=False, float_format="%.10g")
            png = plots.calibration_plots(cal.by_band, cal.yearly, cal.recovered, tmp / "calibration.png")
            _report(cal, name, png, tmp)
    except OSError as exc:
        fail(write_error(target, exc))
    click.echo(format_estimates(cal))
    click.echo(f"results written to {target}" + (f" (run it: riskpool run {target / 'scenario.toml'})"
                                                 if cal.scenario is not None else ""))


def format_estimates(cal) -> str:
    rows = [[r.parameter, f"{r.value:.4g}", f"[{r.low:.4g}, {r.high:.4g}]", r.method]
            for r in cal.estimates.itertuples()]
    lines = [text_table(["parameter", "estimate", "95 % interval", "method"], rows)]
    return "\n".join(lines + [f"note: {n}" for n in cal.notes])


def _report(cal, name: str, png: Path, folder: Path) -> None:
    table = "<pre>" + html.escape(format_estimates(cal)) + "</pre>"
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in cal.notes)
    body = [f"<h1>riskpool: calibration from {html.escape(name)}</h1>", table, notes, image(png)]
    page(folder, "riskpool: calibration", body)
