"""The `riskpool` command line: one group, one module per command family.

Exit codes: 0 success, 2 bad input (scenario, portfolio, option, output folder).
"""

from __future__ import annotations

import click

from sim.cli.optimize import optimize
from sim.cli.report import report
from sim.cli.run import portfolio, run, validate
from sim.cli.size import size
from sim.cli.sweep import sweep


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """riskpool: what a credit risk-sharing scheme for tech SMEs really costs.

    \b
    Start with:
      riskpool validate scenarios/shijiazhuang_score_loan.toml
      riskpool run scenarios/shijiazhuang_score_loan.toml --paths 20000
      riskpool size scenarios/shijiazhuang_score_loan.toml --target 0.01
    Scenario keys are documented in scenarios/README.md.
    """


for command in (validate, run, sweep, size, optimize, report, portfolio):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="riskpool")
