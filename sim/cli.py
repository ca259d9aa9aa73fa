"""The `riskpool` command line.

Exit codes: 0 success, 2 bad input (scenario, portfolio, option, output folder).
"""

from __future__ import annotations

import importlib.util
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


def dask_scheduler(option: str | None) -> str | None:
    """The Dask scheduler to use (None: in-process); a clear exit 2 without dask."""
    from sim.distributed import resolve_scheduler

    scheduler = resolve_scheduler(option)
    if scheduler is not None and importlib.util.find_spec("distributed") is None:
        fail("--scheduler needs Dask: pip install 'riskpool[dask]'")
    return scheduler


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
        click.option("--scheduler", metavar="local|ADDRESS",
                     help="Run the path blocks on Dask: `local` starts a LocalCluster sized to this "
                          "machine, an address (tcp://host:8786) uses a running scheduler; default "
                          "$DASK_SCHEDULER_ADDRESS if set, else in-process. Results are identical."),
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
    from sim.io import OutputError, atomic_folder

    try:
        with atomic_folder(target) as tmp:
            write_folder(tmp, ds, sc)
    except OutputError as exc:
        fail(str(exc))


def write_folder(folder: Path, ds, sc: Scenario, netcdf: bool = True) -> None:
    """Fill a (temporary) results folder; without `netcdf` the data are already
    in it (a sweep's results.zarr)."""
    from sim.io import write_json, write_netcdf
    from sim.report import write_report
    from sim.summary import headline

    if netcdf:
        write_netcdf(ds, folder / "results.nc")
    if ds.attrs.get("engine") == "des":
        write_json(folder / "summary.json", {k: float(v) for k, v in ds.data_vars.items() if v.ndim == 0})
    elif "sweep_keys" not in ds.attrs:
        write_json(folder / "summary.json", headline(ds))
    toml_text = to_toml(sc)
    (folder / "scenario.toml").write_text(toml_text, encoding="utf-8")
    write_report(ds, folder, toml_text)


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--engine", type=click.Choice(["mc", "des"]), default="mc", show_default=True,
              help="mc: the fast Monte Carlo engine; des: the SimPy operational twin (claims queue, delays).")
@click.option("--reviewers", type=click.IntRange(min=1), help="des: claim reviewers (default: no queue).")
@click.option("--review-days", type=click.FloatRange(min=0), default=0.0, help="des: review time per claim, days.")
@click.option("--approval-days", type=click.FloatRange(min=0, max=30, max_open=True), default=0.0,
              help="des: loan review and approval time, days.")
@common_run_options
def run(scenario: str, engine: str, reviewers: int | None, review_days: float, approval_days: float,
        paths: int | None, seed: int | None, threads: int | None, out: str | None, quiet: bool,
        scheduler: str | None, overrides: tuple[str, ...]) -> None:
    """Simulate a scenario, print the per-party table and write the results folder
    (results.nc, summary.json/csv, scenario.toml, PNG plots, report.html).

    With --engine des, the SimPy twin runs the scheme month by month (use fewer
    paths, e.g. --paths 2000) and reports reimbursement delays and claim queues."""
    from sim.summary import format_operations, format_table

    sc = load_or_fail(scenario, overrides)
    n_paths = paths or (sc.simulation.n_paths if engine == "mc" else 2000)
    target = results_folder(sc, out, "" if engine == "mc" else "-des")
    try:
        if engine == "mc":
            scheduler = dask_scheduler(scheduler)
            if scheduler is None:
                from sim.engine import run as run_engine

                ds = run_engine(sc, n_paths=n_paths, seed=seed, threads=threads, progress=Progress(n_paths, quiet))
            else:
                from sim.distributed import run_distributed

                ds = run_distributed(sc, n_paths=n_paths, seed=seed, scheduler=scheduler,
                                     progress=Progress(n_paths, quiet))
        else:
            from sim.des import run_des

            ds = run_des(sc, n_paths=n_paths, seed=seed, reviewers=reviewers, review_days=review_days,
                         approval_days=approval_days, progress=Progress(n_paths, quiet))
    except (PortfolioError, ScenarioError) as exc:
        fail(str(exc))
    write_results(target, ds, sc)
    if not quiet:
        click.echo(format_table(ds) if engine == "mc" else format_operations(ds))
    click.echo(f"results written to {target} (open {target / 'report.html'})")




@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--grid", "grid", multiple=True, metavar="KEY=v1,v2,...",
              help="Sweep a key over values (repeatable; the cartesian product runs). "
                   "KEY may be `sharing` with names from [sweep.sharing].")
@click.option("--zarr", "to_zarr", is_flag=True,
              help="Write each point to its own region of OUT/results.zarr as it completes, instead of "
                   "holding the sweep in memory and writing results.nc (for sweeps of very many points).")
@common_run_options
def sweep(scenario: str, grid: tuple[str, ...], to_zarr: bool, paths: int | None, seed: int | None,
          threads: int | None, out: str | None, quiet: bool, scheduler: str | None,
          overrides: tuple[str, ...]) -> None:
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
    scheduler = dask_scheduler(scheduler)

    def run_points(store: Path | None):
        try:
            if scheduler is None:
                return run_sweep(sc, axes, n_paths=n_paths, seed=seed, threads=threads,
                                 progress=Progress(n_paths * n_points, quiet), store=store)
            from sim.distributed import sweep_distributed

            return sweep_distributed(sc, axes, n_paths=n_paths, seed=seed, scheduler=scheduler,
                                     progress=Progress(n_paths * n_points, quiet), store=store)
        except (PortfolioError, ScenarioError) as exc:
            fail(str(exc))

    if to_zarr:
        from sim.io import OutputError, atomic_folder
        from sim.sweep_store import require_zarr

        try:
            require_zarr()
        except RuntimeError as exc:
            fail(str(exc))
        try:
            with atomic_folder(target) as tmp:  # the store grows inside; renamed when complete
                write_folder(tmp, run_points(tmp / "results.zarr"), sc, netcdf=False)
        except OutputError as exc:
            fail(str(exc))
        import xarray as xr

        ds = xr.open_zarr(target / "results.zarr")
    else:
        ds = run_points(None)
        write_results(target, ds, sc)
    if not quiet:
        click.echo(ds.pool_exhaustion_prob.to_dataframe().to_string())
    click.echo(f"sweep of {n_points} points written to {target} (open {target / 'report.html'})")


def plan_dataset(outcome, sc: Scenario, budget: float):
    """The chosen plan as a labelled Dataset (credit by segment and option, yuan)."""
    import xarray as xr

    r = outcome.result
    ds = xr.Dataset(
        {
            "credit": (("segment", "option"), r.credit_by_option),
            "demand": (("segment",), outcome.problem.demand),
            "amount_today": (("segment",), outcome.losses.amount),
        },
        coords={"segment": list(r.segments), "option": list(r.options)},
        attrs={"status": r.status, "credit_supplied": r.objective, "pool_size": r.pool_size,
               "chosen_option": r.chosen_option, "pool_cvar": r.pool_cvar, "budget": budget,
               "alpha": outcome.problem.alpha, "n_scenarios": int(outcome.losses.party_loss.shape[0]),
               "scenario_name": sc.name, "money_unit": "yuan"},
    )
    for name, check in outcome.checks.items():
        ds.attrs[f"out_of_sample_{name}"] = check.estimate
        ds.attrs[f"out_of_sample_{name}_se"] = check.standard_error
        ds.attrs[f"out_of_sample_{name}_holds"] = int(check.holds)
    return ds


def plan_json(outcome, budget: float) -> dict:
    r = outcome.result
    return {
        "status": r.status, "budget": budget, "credit_supplied": r.objective, "pool_size": r.pool_size,
        "chosen_option": r.chosen_option, "pool_cvar": r.pool_cvar, "credit": r.credit,
        "binding": r.binding, "shadow_prices": r.shadow_prices, "method": r.method, "solver": r.solver,
        "build_seconds": r.build_seconds, "solve_seconds": r.solve_seconds,
        "out_of_sample": {k: {"estimate": c.estimate, "standard_error": c.standard_error,
                              "limit": c.limit, "holds": c.holds} for k, c in outcome.checks.items()},
    }


def format_plan(outcome) -> str:
    from sim.summary import WAN

    r = outcome.result
    lines = [f"status {r.status}: credit supplied {r.objective / WAN:,.1f} 万元, pool {r.pool_size / WAN:,.1f} 万元, "
             f"sharing option {r.chosen_option!r} ({r.method}, {r.solver}; build {r.build_seconds:.2f} s, "
             f"solve {r.solve_seconds:.2f} s)", "",
             f"{'segment':<34}{'credit 万元':>14}{'demand 万元':>14}"]
    for seg, demand in zip(r.segments, outcome.problem.demand):
        lines.append(f"{seg:<34}{r.credit[seg] / WAN:>14,.1f}{demand / WAN:>14,.1f}")
    lines += ["", "binding constraints (shadow price = extra credit per extra unit of the limit):"]
    for name, bound in r.binding.items():
        if bound:
            lines.append(f"  {name:<40} {r.shadow_prices.get(name, float('nan')):,.4g}")
    lines += ["", "out-of-sample check (fresh seed), ± 1 s.e.:"]
    for name, c in outcome.checks.items():
        lines.append(f"  {name:<16} {c.estimate / WAN:,.1f} ± {c.standard_error / WAN:,.1f} 万元 vs limit "
                     f"{c.limit / WAN:,.1f}: {'holds' if c.holds else 'VIOLATED'}")
    return "\n".join(lines)


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--budget", type=click.FloatRange(min=0), required=True,
              help="Fiscal budget B in yuan: pool size + expected other fiscal cost <= B.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="CVaR level (default optimize.alpha).")
@click.option("--scenarios", "n_scenarios", type=click.IntRange(min=100),
              help="Monte Carlo loss scenarios (default optimize.n_scenarios).")
@click.option("--seed", type=click.IntRange(min=0), help="Seed; the out-of-sample check uses seed + 1.")
@click.option("--method", type=click.Choice(["auto", "full", "cutting_plane"]), default="auto",
              show_default=True, help="Full CVaR LP, or cutting planes (adds only violated scenario rows).")
@click.option("--out", type=click.Path(file_okay=False), help="Results folder; must not exist.")
@click.option("--quiet", is_flag=True, help="Print only where the results went.")
@click.option("--scheduler", metavar="local|ADDRESS",
              help="Simulate the loss scenarios on Dask (as for run); the LP is solved here.")
@set_option
def optimize(scenario: str, budget: float, alpha: float | None, n_scenarios: int | None, seed: int | None,
             method: str, out: str | None, quiet: bool, scheduler: str | None, overrides: tuple[str, ...]) -> None:
    """Choose the pool size, the sharing option and credit per segment that maximise
    credit supplied within a fiscal budget and CVaR limits (PuLP + HiGHS)."""
    from models.optimize import OptimizationError
    from sim.allocation import optimize as run_optimize
    from sim.io import OutputError, atomic_folder, write_json, write_netcdf
    from sim.plan import build_portfolio
    from sim.report import write_report

    sc = load_or_fail(scenario, overrides)
    target = results_folder(sc, out, "-optimize")
    scheduler = dask_scheduler(scheduler)
    try:
        outcome = run_optimize(sc, build_portfolio(sc), budget, alpha, n_scenarios, seed, method,
                               scheduler=scheduler)
    except (PortfolioError, ScenarioError, OptimizationError) as exc:
        fail(str(exc))
    try:
        with atomic_folder(target) as tmp:
            plan = plan_dataset(outcome, sc, budget)
            write_json(tmp / "plan.json", plan_json(outcome, budget))
            write_netcdf(plan, tmp / "plan.nc")
            toml_text = to_toml(sc)
            (tmp / "scenario.toml").write_text(toml_text, encoding="utf-8")
            if outcome.frontier is not None:
                write_netcdf(outcome.frontier, tmp / "frontier.nc")
            write_report(plan, tmp, toml_text, outcome.frontier)
    except OutputError as exc:
        fail(str(exc))
    if not quiet:
        click.echo(format_plan(outcome))
    click.echo(f"plan written to {target}")


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False))
def report(folder: str) -> None:
    """Rebuild the plots and report.html of a results folder from its results.nc
    (or a sweep's results.zarr)."""
    from sim.io import read_netcdf
    from sim.report import write_report

    path = Path(folder)
    names = ("results.nc", "plan.nc", "results.zarr")
    data = next((path / n for n in names if (path / n).exists()), path / "results.nc")
    if not data.exists():
        fail(f"{data}: not found; FOLDER must be a results folder written by riskpool run/sweep/optimize")
    try:
        if data.suffix == ".zarr":
            import xarray as xr

            ds = xr.open_zarr(data).load()
        else:
            ds = read_netcdf(data)
    except (OSError, ValueError, KeyError, ImportError) as exc:
        fail(f"{data}: cannot be read: {exc}")
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
