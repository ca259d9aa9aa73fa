"""riskpool simulation: Monte Carlo engine, operational twin, results and CLI."""

from sim.engine import run

__all__ = ["run"]
