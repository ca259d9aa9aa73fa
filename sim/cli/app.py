"""`riskpool app`: the page for policy designers, served on localhost."""

from __future__ import annotations

import errno
from pathlib import Path

import click

from models.portfolio import PortfolioError
from models.scenario import Simulation
from sim.app.controls import schema_bounds
from sim.cli.common import fail, load_or_fail
from sim.engine.plan import build_portfolio

DEFAULT_SCENARIO = "scenarios/shijiazhuang_score_loan.toml"
MAX_PATHS = int(schema_bounds(["n_paths"], Simulation).high)  # the scenario schema's limit


@click.command()
@click.argument("scenario", type=click.Path(dir_okay=False), default=DEFAULT_SCENARIO)
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True,
              help="The localhost port to serve the page on.")
@click.option("--paths", type=click.IntRange(1, MAX_PATHS), default=20_000, show_default=True,
              help="Monte Carlo paths of each re-simulation (a control on the page changes it).")
@click.option("--uploads", type=click.Path(file_okay=False), default="results/uploads", show_default=True,
              help="Folder that keeps the files uploaded on the page (an exported scenario names an "
                   "uploaded portfolio there).")
@click.option("--open", "show", is_flag=True, help="Open the page in the default browser.")
def app(scenario: str, port: int, paths: int, uploads: str, show: bool) -> None:
    """Serve the page for policy designers at http://localhost:PORT: the scheme's parameters as
    controls, the results re-simulated live (same seed: only the parameters move them), a menu of
    the scenarios beside SCENARIO (default: the Shijiazhuang score loan), uploads, a pinned baseline,
    and export of the settings as a scenario file and of the results as CSV. Ctrl-C stops it."""
    sc = load_or_fail(scenario, ())
    try:
        build_portfolio(sc)
    except PortfolioError as exc:
        fail(str(exc))
    click.echo(f"serving {sc.name} at http://localhost:{port} (Ctrl-C stops)", err=True)
    try:
        from sim.app.server import serve  # here: Panel takes seconds to import, only this command needs it
        serve(Path(scenario), port=port, n_paths=paths, upload_dir=Path(uploads), show=show)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            fail(f"--port {port}: already in use; choose another port")
        raise
