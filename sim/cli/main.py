"""The `riskpool` command line: one group, one module per command family.

Exit codes: 0 success; 2 bad input or an expected failure (scenario,
portfolio, option, output folder, a full disk, no permission, a racing
run), with a one-line message; 1 an unexpected error (a short message;
`riskpool --debug ...` shows the traceback); 130 interrupted (Ctrl-C), 143
terminated (SIGTERM). An interrupted or terminated command leaves no
half-written results folder.
"""

from __future__ import annotations

import signal
import sys

import click

from sim.cli.app import app
from sim.cli.calibrate import calibrate
from sim.cli.capital import capital
from sim.cli.common import Progress
from sim.cli.compare import compare
from sim.cli.optimize import optimize
from sim.cli.report import report
from sim.cli.run import portfolio, run, validate
from sim.cli.size import size
from sim.cli.sweep import sweep
from sim.kernel_cache import cache_is_cold


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error.")
@click.version_option(package_name="riskpool", prog_name="riskpool")
def cli(debug: bool) -> None:
    """riskpool: what a credit risk-sharing scheme for tech SMEs really costs.

    \b
    Start with:
      riskpool validate scenarios/shijiazhuang_score_loan.toml
      riskpool run scenarios/shijiazhuang_score_loan.toml --paths 20000
      riskpool size scenarios/shijiazhuang_score_loan.toml --target 0.01
      riskpool app
    Scenario keys are documented in scenarios/README.md.
    """


for command in (validate, run, sweep, size, optimize, capital, compare, calibrate, report, portfolio, app):
    cli.add_command(command)


ENGINE_COMMANDS = {"run", "sweep", "size", "optimize", "capital"}
EXIT_UNEXPECTED = 1
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C, so temporary folders are removed on the way out."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> None:
    """Run the command line; every failure ends in a message and an exit code (module doc)."""
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, _terminate)
    if sys.stderr.isatty() and ENGINE_COMMANDS & set(argv) and cache_is_cold():
        click.echo("compiling kernels (first run of this version only, about a minute)...", err=True)
    try:
        try:
            code = cli.main(argv, prog_name="riskpool", standalone_mode=False)
        finally:
            Progress.stop_all()
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("\ninterrupted: nothing was written", err=True)
        code = EXIT_INTERRUPTED
    except Terminated:
        click.echo("terminated: nothing was written", err=True)
        code = EXIT_TERMINATED
    except OSError as exc:  # outside a results folder's own checks: a file we read or wrote
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"error: {where}{exc.strerror or exc}", err=True)
        code = 2
    except Exception as exc:
        if "--debug" in argv:
            raise
        click.echo(f"error: unexpected {type(exc).__name__}: {exc}\n"
                   "(a bug: run again with `riskpool --debug ...` for the traceback and report it)", err=True)
        code = EXIT_UNEXPECTED
    sys.exit(code if isinstance(code, int) else 0)
