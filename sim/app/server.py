"""Serving the page on localhost: one `Page` per browser tab, the menu listing the scenario files
beside the one opened (the seed scenarios, for a file in scenarios/)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import panel as pn

from sim.app.page import Page


def scenario_menu(first: Path) -> dict[str, Path]:
    """Menu name -> file: the scenario opened first, then the other .toml files of its folder."""
    others = sorted(p for p in first.resolve().parent.glob("*.toml") if p != first.resolve())
    return {p.stem: p for p in [first.resolve(), *others]}


def page_factory(scenario: Path, n_paths: int, upload_dir: Path) -> Callable[[], Any]:
    """What the server calls for each new tab: a fresh page (its own controls, runs and baseline)."""
    menu = scenario_menu(scenario)

    def make() -> Any:
        return Page(menu, n_paths, upload_dir).layout()
    return make


def serve(scenario: Path, *, port: int, n_paths: int, upload_dir: Path, show: bool = False,
          threaded: bool = False) -> Any:
    """Serve the page at http://localhost:PORT (blocking; with `threaded`, a thread whose `stop()`
    ends it). `n_paths` is the path count the page opens with."""
    return pn.serve({"/": page_factory(scenario, n_paths, upload_dir)}, port=port, address="127.0.0.1",
                    websocket_origin=[f"localhost:{port}", f"127.0.0.1:{port}"], show=show,
                    threaded=threaded, title="riskpool", verbose=not threaded)
