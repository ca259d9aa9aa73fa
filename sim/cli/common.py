"""What every `riskpool` command shares: loading scenarios with clear
errors (exit 2), progress on stderr, the common options and the atomic
results folder."""

from __future__ import annotations

import importlib.util
import math
import sys
import time
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

from models.portfolio import GROUPINGS
from models.scenario import MAX_PATHS, Scenario, ScenarioError, load_scenario, to_toml
from models.tail import parse_tail
from sim.report.html import write_report
from sim.report.language import LANGUAGES
from sim.results.io import OutputError, atomic_folder, write_json, write_netcdf
from sim.scale.executor import resolve_scheduler
from sim.scale.grid import parse_grid, point_scenarios, sweep_axes

EXIT_BAD_INPUT = 2
MAX_SEED = 2**63 - 1  # what a result file's seed attribute (int64) holds

set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a scenario key by its dotted path, e.g. --set contract.pool.size=60e6 (repeatable).",
)


def finite_number(low: float, high: float = math.inf, *, open_low: bool = False, open_high: bool = False):
    """A click callback: the option's value must be a finite number in the range (nan and inf refused)."""
    def check(ctx, param, value):
        if value is None:
            return None
        ok = math.isfinite(value) and (value > low if open_low else value >= low) and \
            (value < high if open_high else value <= high)
        if not ok:
            left, right = "(" if open_low else "[", ")" if open_high or math.isinf(high) else "]"
            raise click.BadParameter(f"{value!r} is not a finite number in {left}{low:g}, {high:g}{right}")
        return value
    return check


def _check_tail(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_tail(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value.strip()


tail_option = click.option(
    "--tail", callback=_check_tail, metavar="EVENT",
    help="Importance-sample a far-tail event: pool_dry, guarantor_dry, QUANTITY>=AMOUNT "
         "(gross_loss, fiscal_cost or a party, yuan; e.g. 'gross_loss>=2e8', 'bank>=5e7'), or off "
         "(plain Monte Carlo). Default: the scenario's simulation.tail.",
)


def with_tail(overrides: tuple[str, ...], tail: str | None) -> tuple[str, ...]:
    """The --set overrides plus simulation.tail from --tail (applied last: the option wins)."""
    return overrides if tail is None else (*overrides, f'simulation.tail="{tail}"')


def grid_or_fail(sc: Scenario, grid: tuple[str, ...]) -> tuple[dict, int]:
    """The sweep axes of `--grid` options over the scenario's [sweep.grid], and the point count."""
    try:
        axes = sweep_axes(sc, parse_grid(grid))
        return axes, len(point_scenarios(sc, axes))
    except ScenarioError as exc:
        fail(str(exc))
    raise AssertionError("unreachable")


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _memory_option(ctx: click.Context, param: click.Parameter, value: float | None) -> None:
    """--memory-gib: checked here, applied as the override simulation.memory_gib (`load_or_fail`)."""
    if value is not None:
        ctx.meta["memory_gib"] = finite_number(0.0, 1e6, open_low=True)(ctx, param, value)


def load_or_fail(path: str, overrides: tuple[str, ...]) -> Scenario:
    ctx = click.get_current_context(silent=True)
    memory = None if ctx is None else ctx.meta.get("memory_gib")
    if memory is not None:  # the option wins over --set
        overrides = (*overrides, f"simulation.memory_gib={memory!r}")
    try:
        return load_scenario(path, overrides)
    except ScenarioError as exc:
        fail(str(exc))
    raise AssertionError("unreachable")


def dask_scheduler(option: str | None) -> str | None:
    """The Dask scheduler to use (None: in-process); a clear exit 2 without dask."""
    scheduler = resolve_scheduler(option)
    if scheduler is not None and importlib.util.find_spec("distributed") is None:
        fail("--scheduler needs Dask: pip install 'riskpool[dask]'")
    return scheduler


class Progress:
    """Paths done, rate and ETA on stderr: a rich progress bar on a terminal (mode "auto"), a line
    a second or so for logs (mode "plain"), nothing when quiet or mode "off"."""

    live: list[RichProgress] = []  # bars drawing now: stopped by `stop_all` if a command fails

    def __init__(self, total: int, quiet: bool, mode: str = "auto") -> None:
        self.total = total
        self.done = 0
        self.start = self.last = time.perf_counter()
        self.mode = "off" if quiet else ("bar" if sys.stderr.isatty() else "off") if mode == "auto" else mode
        self.bar: RichProgress | None = None

    def __call__(self, n: int) -> None:
        self.done += n
        if self.mode == "off":
            return
        now = time.perf_counter()
        finished = self.done >= self.total
        if self.mode == "plain" and now - self.last < 1.0 and not finished:
            return
        self.last = now
        elapsed = now - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.mode == "plain":
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            sys.stderr.write(f"{self.done:,}/{self.total:,} paths {rate:,.0f}/s ETA {eta:,.0f}s\n")
            sys.stderr.flush()
            return
        self._draw(rate, finished)

    def _draw(self, rate: float, finished: bool) -> None:
        if self.bar is None:
            self.bar = RichProgress(
                BarColumn(), TextColumn("{task.completed:,}/{task.total:,} paths"),
                TextColumn("{task.fields[rate]}/s"), TextColumn("ETA"), TimeRemainingColumn(),
                console=Console(file=sys.stderr), auto_refresh=False)
            self.bar.start()
            self.task = self.bar.add_task("", total=self.total, rate="0")
            Progress.live.append(self.bar)
        self.bar.update(self.task, completed=self.done, rate=f"{rate:,.0f}")
        self.bar.refresh()
        if finished:
            self.bar.stop()
            Progress.live.remove(self.bar)

    @classmethod
    def stop_all(cls) -> None:
        """Stop the bars still drawing (a command failed or was interrupted): the terminal is left clean."""
        while cls.live:
            cls.live.pop().stop()


lang_option = click.option("--lang", type=click.Choice(LANGUAGES), default="en", show_default=True,
                           help="Language of the table and report.html: en or zh (中文).")


CONTRIBUTIONS_NOTE = "risk contributions: drawing {total:,} tail paths again"
STREAMING_NOTE = ("over the memory budget: the paths streamed; simulating {total:,} paths again for the "
                  "order statistics (VaR, ES, quantiles)")


def second_pass_progress(quiet: bool, mode: str, note: str | None = CONTRIBUTIONS_NOTE):
    """What a run's further passes report to (its risk contributions, a streamed run's order
    statistics, a command's several passes): a bar per pass, announced by `note` if given."""
    def start(total: int) -> Progress:
        if note and not quiet and mode != "off":
            click.echo(note.format(total=total), err=True)
        return Progress(total, quiet, mode)
    return start


def groupings_option(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    """A comma-separated list of groupings of the book (models.portfolio.GROUPINGS), checked."""
    if value is None:
        return ()
    names = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    unknown = [n for n in names if n not in GROUPINGS]
    if unknown or not names:
        raise click.BadParameter(f"{', '.join(unknown) or repr(value)}: not a grouping; allowed: "
                                 f"{', '.join(GROUPINGS)} (comma-separated)")
    return names


def common_run_options(f):
    for option in reversed([
        click.option("--paths", type=click.IntRange(min=1, max=MAX_PATHS),
                     help="Monte Carlo paths (default: the scenario's)."),
        click.option("--seed", type=click.IntRange(min=0, max=MAX_SEED),
                     help="Random seed (default: the scenario's)."),
        click.option("--threads", type=click.IntRange(min=1), help="Threads (results do not depend on it)."),
        click.option("--memory-gib", type=float, expose_value=False,
                     callback=_memory_option, metavar="GIB",
                     help="Memory a run's per-path results may take (simulation.memory_gib, default 2): "
                          "past it the paths stream and are simulated once more; same results."),
        click.option("--out", type=click.Path(file_okay=False),
                     help="Results folder (default results/<scenario>-<time>); must not exist."),
        click.option("--quiet", is_flag=True, help="No progress bar and no table."),
        click.option("--progress", "progress_mode", type=click.Choice(["auto", "plain", "off"]),
                     default="auto", show_default=True,
                     help="auto: a bar on a terminal, nothing otherwise; plain: a line about every "
                          "second on stderr (for logs of long runs); off: nothing."),
        click.option("--scheduler", metavar="local|ADDRESS",
                     help="Run the path blocks on Dask: `local` starts a LocalCluster sized to this "
                          "machine, an address (tcp://host:8786) uses a running scheduler; default "
                          "$DASK_SCHEDULER_ADDRESS if set, else in-process. Results are identical."),
        set_option,
    ]):
        f = option(f)
    return f


# Bytes a file name may have on the file systems we write to (NAME_MAX), less the temporary folder's
# affixes (".", ".riskpool-<pid>.<8 random>.tmp").
NAME_BYTES = 255 - 40


def results_folder(sc: Scenario | None, out: str | None, kind: str = "") -> Path:
    """The results folder to write (checked before any work: new, with a name the file system takes);
    without a scenario the default is named by `kind` alone."""
    stem = f"{sc.name}{kind}" if sc is not None else kind.lstrip("-")
    target = Path(out) if out else Path("results") / f"{stem}-{datetime.now():%Y%m%d-%H%M%S}"
    if len(target.name.encode()) > NAME_BYTES:
        what = "--out folder name" if out or sc is None else f"scenario name ({sc.source}: name)"
        fail(f"{target.name[:40]}...: the {what} is {len(target.name.encode())} bytes; a folder name may "
             f"have at most {NAME_BYTES}: shorten it or give a shorter --out")
    if target.exists():
        fail(f"{target}: already exists; choose another --out folder")
    return target


def write_error(target: Path, exc: OSError) -> str:
    """The one-line message of a failed write (a full disk, no permission, a race)."""
    if isinstance(exc, OutputError):
        return str(exc)
    return f"{target}: cannot write the results ({exc.strerror or exc}); nothing was written"


def write_results(target: Path, ds, sc: Scenario, lang: str = "en") -> None:
    """results.nc, summary.json/csv, scenario.toml, plots and report.html (in `lang`), atomically."""
    try:
        with atomic_folder(target) as tmp:
            write_folder(tmp, ds, sc, lang=lang)
    except OSError as exc:
        fail(write_error(target, exc))


def write_folder(folder: Path, ds, sc: Scenario, netcdf: bool = True, lang: str = "en") -> None:
    """Fill a (temporary) results folder; without `netcdf` the data are already
    in it (a sweep's results.zarr)."""
    if netcdf:
        write_netcdf(ds, folder / "results.nc")
    if ds.riskpool.kind in ("run", "twin"):
        write_json(folder / "summary.json", ds.riskpool.headline())
    toml_text = to_toml(sc)
    (folder / "scenario.toml").write_text(toml_text, encoding="utf-8")
    write_report(ds, folder, toml_text, lang=lang)
