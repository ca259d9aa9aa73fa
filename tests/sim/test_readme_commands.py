"""The README's command lines as written: every `riskpool` example names a command, options and files
that exist, and its options pass the command's own checks (parsed by the real command line, not
run); the quick ones are run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from sim.cli import cli
from tests.sim.test_cli import invoke

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[list[str]]:
    """Every `.venv/bin/riskpool ...` line of the README's code blocks (continuations joined)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S)
    out = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(".venv/bin/riskpool "):
                out.append(shlex.split(line)[1:])
    return out


COMMANDS = readme_commands()


def test_the_readme_shows_every_command():
    shown = {args[0] for args in COMMANDS if not args[0].startswith("-")}
    assert set(cli.commands) - {"report"} <= shown, set(cli.commands) - shown


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a)[:60] for a in COMMANDS])
def test_a_readme_command_parses_and_its_files_exist(args):
    if args[0].startswith("-"):
        assert invoke(*args).exit_code == 0
        return
    command = cli.commands[args[0]]
    with click.Context(cli) as parent:
        command.make_context(args[0], list(args[1:]), parent=parent)  # options, ranges and callbacks
    for arg in args[1:]:
        if arg.startswith(("scenarios/", "tests/")):
            assert (ROOT / arg).exists(), arg


def test_the_quick_readme_commands_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    quick = [a for a in COMMANDS if a[0] in ("validate", "portfolio")]
    assert quick
    for args in quick:
        # a file the example writes goes to a temporary folder instead of the checkout
        args = [str(tmp_path / a) if a.endswith(".csv") and not a.startswith("scenarios/") else a
                for a in args]
        result = invoke(*args)
        assert result.exit_code == 0, (args, result.output)
