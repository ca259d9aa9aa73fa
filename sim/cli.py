"""The `riskpool` command line.

Exit codes: 0 success, 2 bad input (scenario, portfolio, option, output folder).
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

import click

from models.portfolio import PortfolioError, write_portfolio_csv
from models.scenario import ScenarioError, Scenario, load_scenario, to_toml

EXIT_BAD_INPUT = 2

set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a scenario key by its dotted path, e.g. --set contract.pool.size=60e6 (repeatable).",
)


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def load_or_fail(path: str, overrides: tuple[str, ...]) -> Scenario:
    try:
        return load_scenario(path, overrides)
    except ScenarioError as exc:
        fail(str(exc))
    raise AssertionError("unreachable")


class Progress:
    """Paths done, rate and ETA on stderr; silent when not on a terminal or when quiet."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total = total
        self.done = 0
        self.start = time.perf_counter()
        self.enabled = not quiet and sys.stderr.isatty()

    def __call__(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        width = 30
        fill = int(width * self.done / self.total)
        sys.stderr.write(
            f"\r[{'#' * fill}{'.' * (width - fill)}] {self.done:,}/{self.total:,} paths "
            f"{rate:,.0f}/s ETA {eta:,.0f}s"
        )
        if self.done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """riskpool: what a credit risk-sharing scheme for tech SMEs really costs.

    \b
    Start with:
      riskpool validate scenarios/shijiazhuang_score_loan.toml
      riskpool run scenarios/shijiazhuang_score_loan.toml --paths 20000
    Scenario keys are documented in scenarios/README.md.
    """


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@set_option
def validate(scenario: str, overrides: tuple[str, ...]) -> None:
    """Check a scenario file and its portfolio; exit 0 if valid, 2 with the reason if not."""
    from sim.plan import build_portfolio

    sc = load_or_fail(scenario, overrides)
    try:
        portfolio = build_portfolio(sc)
    except PortfolioError as exc:
        fail(str(exc))
    click.echo(
        f"{scenario}: valid — {sc.name}: {len(portfolio):,} loans, "
        f"{portfolio.total_amount / 1e8:.2f} 亿元, products {list(sc.products)}"
    )


def common_run_options(f):
    for option in reversed([
        click.option("--paths", type=click.IntRange(min=1), help="Monte Carlo paths (default: the scenario's)."),
        click.option("--seed", type=click.IntRange(min=0), help="Random seed (default: the scenario's)."),
        click.option("--threads", type=click.IntRange(min=1), help="Threads (results do not depend on it)."),
        click.option("--out", type=click.Path(file_okay=False),
                     help="Results folder (default results/<scenario>-<time>); must not exist."),
        click.option("--quiet", is_flag=True, help="No progress bar and no table."),
        set_option,
    ]):
        f = option(f)
    return f


def results_folder(sc: Scenario, out: str | None, kind: str = "") -> Path:
    target = Path(out) if out else Path("results") / f"{sc.name}{kind}-{datetime.now():%Y%m%d-%H%M%S}"
    if target.exists():
        fail(f"{target}: already exists; choose another --out folder")
    return target


def write_results(target: Path, ds, sc: Scenario) -> None:
    """results.nc, summary.json/csv, scenario.toml, plots and report.html, atomically."""
    from sim.io import OutputError, atomic_folder, write_json, write_netcdf
    from sim.report import write_report
    from sim.summary import headline

    try:
        with atomic_folder(target) as tmp:
            write_netcdf(ds, tmp / "results.nc")
            if "sweep_keys" not in ds.attrs:
                write_json(tmp / "summary.json", headline(ds))
            toml_text = to_toml(sc)
            (tmp / "scenario.toml").write_text(toml_text, encoding="utf-8")
            write_report(ds, tmp, toml_text)
    except OutputError as exc:
        fail(str(exc))


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@common_run_options
def run(scenario: str, paths: int | None, seed: int | None, threads: int | None,
        out: str | None, quiet: bool, overrides: tuple[str, ...]) -> None:
    """Simulate a scenario, print the per-party table and write the results folder
    (results.nc, summary.json/csv, scenario.toml, PNG plots, report.html)."""
    from sim.engine import run as run_engine
    from sim.summary import format_table

    sc = load_or_fail(scenario, overrides)
    n_paths = paths or sc.simulation.n_paths
    target = results_folder(sc, out)
    try:
        ds = run_engine(sc, n_paths=n_paths, seed=seed, threads=threads,
                        progress=Progress(n_paths, quiet))
    except (PortfolioError, ScenarioError) as exc:
        fail(str(exc))
    write_results(target, ds, sc)
    if not quiet:
        click.echo(format_table(ds))
    click.echo(f"results written to {target} (open {target / 'report.html'})")


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--grid", "grid", multiple=True, metavar="KEY=v1,v2,...",
              help="Sweep a key over values (repeatable; the cartesian product runs). "
                   "KEY may be `sharing` with names from [sweep.sharing].")
@common_run_options
def sweep(scenario: str, grid: tuple[str, ...], paths: int | None, seed: int | None,
          threads: int | None, out: str | None, quiet: bool, overrides: tuple[str, ...]) -> None:
    """Run the cartesian product of swept keys with common random numbers.

    \b
    Example:
      riskpool sweep scenarios/shijiazhuang_score_loan.toml \\
        --grid contract.pool.size=20e6,40e6,60e6,80e6 --grid sharing=2:2:6,4321,bank20
    The Dataset's dimensions are the keys' short names (pool_size, sharing).
    """
    from sim.sweep import parse_grid, point_scenarios, run_sweep, sweep_axes

    sc = load_or_fail(scenario, overrides)
    try:
        axes = sweep_axes(sc, parse_grid(grid))
        n_points = len(point_scenarios(sc, axes))
    except ScenarioError as exc:
        fail(str(exc))
    n_paths = paths or sc.simulation.n_paths
    target = results_folder(sc, out, "-sweep")
    try:
        ds = run_sweep(sc, axes, n_paths=n_paths, seed=seed, threads=threads,
                       progress=Progress(n_paths * n_points, quiet))
    except (PortfolioError, ScenarioError) as exc:
        fail(str(exc))
    write_results(target, ds, sc)
    if not quiet:
        click.echo(ds.pool_exhaustion_prob.to_dataframe().to_string())
    click.echo(f"sweep of {n_points} points written to {target} (open {target / 'report.html'})")


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False))
def report(folder: str) -> None:
    """Rebuild the plots and report.html of a results folder from its results.nc."""
    from sim.io import read_netcdf
    from sim.report import write_report

    path = Path(folder)
    nc = path / "results.nc"
    if not nc.is_file():
        fail(f"{nc}: not found; FOLDER must be a results folder written by riskpool run/sweep/optimize")
    try:
        ds = read_netcdf(nc)
    except (OSError, ValueError) as exc:
        fail(f"{nc}: cannot be read as netCDF: {exc}")
    frontier_nc = path / "frontier.nc"
    frontier = read_netcdf(frontier_nc) if frontier_nc.is_file() else None
    toml_path = path / "scenario.toml"
    toml_text = toml_path.read_text(encoding="utf-8") if toml_path.is_file() else ""
    try:
        written = write_report(ds, path, toml_text, frontier)
    except OSError as exc:
        fail(f"{path}: cannot write the report: {exc.strerror or exc}")
    click.echo(f"report written to {written}")


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False), help="Also write the loans to this CSV file.")
@set_option
def portfolio(scenario: str, csv_out: str | None, overrides: tuple[str, ...]) -> None:
    """Summarise the scenario's portfolio by stage and product (optionally export it as CSV)."""
    from sim.plan import build_portfolio

    sc = load_or_fail(scenario, overrides)
    try:
        pf = build_portfolio(sc)
    except PortfolioError as exc:
        fail(str(exc))
    frame = pf.to_frame()
    table = frame.groupby(["stage", "product"]).agg(
        loans=("amount", "size"), amount_wan=("amount", lambda a: a.sum() / 1e4),
        mean_score=("score", "mean"))
    click.echo(f"{sc.name}: {len(pf):,} loans, {pf.total_amount / 1e8:.2f} 亿元 (amounts in 万元)")
    click.echo(table.round(1).to_string())
    if csv_out:
        try:
            write_portfolio_csv(pf, csv_out)
        except OSError as exc:
            fail(f"{csv_out}: cannot write: {exc.strerror or exc}")
        click.echo(f"loans written to {csv_out}")


def main() -> None:
    cli(prog_name="riskpool")


if __name__ == "__main__":
    main()
