"""The `riskpool` command line (entry point `sim.cli:main`)."""

from sim.cli.main import cli, main

__all__ = ["cli", "main"]
