"""The examples of the README and of `scenarios/README.md` run as written, in the order they are read,
in a scratch folder holding a copy of `scenarios/` and an empty `results/` (as a fresh clone has):

- every `.venv/bin/riskpool ...` line through the real command line (in process, exit code 0);
  `riskpool app` as a process, until it serves its page, then stopped with Ctrl-C;
- the cluster example's `dask scheduler` and `dask worker` as processes, with the head node's name
  (`head`) read as this machine;
- every Python block, the blocks sharing one namespace as in one session;
- every transcript block (`$ command` lines, each followed by what it prints): its command run and
  every line shown found, in order and exactly, in what the command prints now (a shown line
  holding `...` stands for lines left out). A transcript whose output starts with `error:` expects
  exit code 2.

`make` lines are not run: `make test` is this suite, and `make run` runs the command of the first
transcript (checked below). Examples build on earlier ones (`results/base` is opened in Python
after the run that writes it), so the blocks run in order and share the scratch folder.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from distributed import Client

from sim.cli import cli

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HEAD_NODE = ("tcp://head:", "tcp://127.0.0.1:")  # the cluster example's head node is this machine
PROGRAMS = (".venv/bin/riskpool", ".venv/bin/dask")
START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Step:
    command: str
    shown: tuple[str, ...] | None  # what a transcript shows the command printing; None in a plain block


@dataclass(frozen=True)
class Block:
    where: str         # the document and the line the block starts on
    kind: str          # "python", "shell" (commands), "transcript"; "make" or "text" (not run)
    code: str
    steps: tuple[Step, ...] = ()


def _commands(body: str) -> list[str]:
    """The block's lines with continuations joined and `  # comments` dropped."""
    lines = [line.split("  #")[0].strip() for line in body.replace("\\\n", " ").splitlines()]
    return [line for line in lines if line]


def _transcript(body: str) -> tuple[Step, ...]:
    steps: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:].strip(), []))
        else:
            steps[-1][1].append(line.rstrip())
    return tuple(Step(command, tuple(shown)) for command, shown in steps)


def readme_blocks(document: str) -> list[Block]:
    text = (ROOT / document).read_text(encoding="utf-8")
    blocks = []
    for match in re.finditer(r"^```([^\n]*)\n(.*?)^```", text, flags=re.S | re.M):
        lang, body = match.group(1).strip(), match.group(2)
        where = f"{document}:{text.count(chr(10), 0, match.start()) + 1}"
        commands = _commands(body)
        if lang == "python":
            blocks.append(Block(where, "python", body))
        elif body.startswith("$ "):
            blocks.append(Block(where, "transcript", body, _transcript(body)))
        elif commands and all(c.startswith("make ") for c in commands):
            blocks.append(Block(where, "make", body))
        elif commands and all(c.startswith((*PROGRAMS, "make ", "export ")) for c in commands):
            steps = tuple(Step(c, None) for c in commands if not c.startswith("make "))
            blocks.append(Block(where, "shell", body, steps))
        else:
            blocks.append(Block(where, "text", body))
    return blocks


BLOCKS = readme_blocks("README.md") + readme_blocks("scenarios/README.md")
RUN = [b for b in BLOCKS if b.kind not in ("make", "text")]


def test_every_block_is_read_as_what_it_is():
    """No command hides in a block that is not run, every riskpool command is shown, and `make run`
    is the first transcript's command."""
    for block in BLOCKS:
        if block.kind == "text":
            assert not any(line.lstrip("$ ").startswith(PROGRAMS) for line in block.code.splitlines()), block
    shown = {shlex.split(step.command)[1] for block in RUN for step in block.steps
             if step.command.startswith(".venv/bin/riskpool ")}
    assert set(cli.commands) - {"report"} <= shown, set(cli.commands) - shown
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    first = next(b for b in BLOCKS if b.kind == "transcript").steps[0].command
    assert re.search(r"^run: .*\n\t\$\(BIN\)/riskpool (.*)$", makefile, flags=re.M).group(1) == \
        first.removeprefix(".venv/bin/riskpool ")


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> dict:
    """The scratch folder (the working directory for the module) and the Python blocks' namespace."""
    folder = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "scenarios", folder / "scenarios")
    (folder / "results").mkdir()
    before = Path.cwd()
    os.chdir(folder)
    yield {"folder": folder, "namespace": {}}
    os.chdir(before)


def _free(port: int) -> None:
    """A server left from elsewhere on the example's port would answer in place of the one started."""
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} is already in use"


def _stop(processes: list[subprocess.Popen], how=subprocess.Popen.terminate) -> str:
    """Stop every process (`how`, then kill after 60 s), return their output."""
    for process in processes:
        how(process)
    out = []
    for process in processes:
        try:
            out.append(process.communicate(timeout=60)[0] or "")
        except subprocess.TimeoutExpired:
            process.kill()
            out.append(process.communicate()[0] or "")
    return "".join(out)


def _wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited with {process.returncode} before listening on {port}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"nothing listening on port {port} after {START_TIMEOUT_S} s")


def _serve_the_page(args: list[str], folder: Path) -> None:
    """`riskpool app ...` until its page answers, then Ctrl-C, which stops it (exit code 0)."""
    port = int(args[args.index("--port") + 1]) if "--port" in args else 8765
    _free(port)
    process = subprocess.Popen([str(BIN / "riskpool"), *args], cwd=folder, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_port(port, process)
        with urllib.request.urlopen(f"http://localhost:{port}/", timeout=60) as page:
            assert page.status == 200 and "<title>riskpool</title>" in page.read().decode()
    finally:
        output = _stop([process], lambda p: p.send_signal(signal.SIGINT))
    assert process.returncode == 0, output


def _start(args: list[str], folder: Path, background: list[subprocess.Popen]) -> None:
    """`dask scheduler` (until it listens) or `dask worker` (until the scheduler has it)."""
    if args[1] == "scheduler":
        _free(int(args[args.index("--port") + 1]))
    process = subprocess.Popen([str(BIN / args[0]), *args[1:]], cwd=folder, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    background.append(process)
    if args[1] == "scheduler":
        _wait_for_port(int(args[args.index("--port") + 1]), process)
        return
    with Client(args[2], timeout=START_TIMEOUT_S) as client:
        client.wait_for_workers(1, timeout=START_TIMEOUT_S)


def _check_shown(step: Step, result) -> None:
    expected = 2 if step.shown and step.shown[0].startswith("error:") else 0
    assert result.exit_code == expected, (step.command, result.output)
    printed = [line.rstrip() for line in result.output.splitlines()]
    at = 0
    for line in step.shown or ():
        if "..." in line or not line:
            continue
        while at < len(printed) and printed[at] != line:
            at += 1
        assert at < len(printed), (f"README line not printed (in this order) by {step.command}:\n{line}\n"
                                   f"--- printed:\n{result.output}")
        at += 1


def _run_step(step: Step, folder: Path, env: dict, background: list[subprocess.Popen]) -> None:
    command = step.command.replace(*HEAD_NODE)
    if command.startswith("export "):
        key, value = command.removeprefix("export ").split("=", 1)
        env[key] = value
        return
    program, *args = shlex.split(command)
    if program == ".venv/bin/dask":
        _start(["dask", *args], folder, background)
    elif args[0] == "app":
        _serve_the_page(args, folder)
    else:
        _check_shown(step, CliRunner(env=dict(env)).invoke(cli, args))


@pytest.mark.parametrize("block", RUN, ids=[b.where for b in RUN])
def test_a_readme_example_runs_as_written(block: Block, session: dict):
    if block.kind == "python":
        exec(compile(block.code, block.where, "exec"), session["namespace"])
        return
    background: list[subprocess.Popen] = []
    try:
        env: dict = {}
        for step in block.steps:
            _run_step(step, session["folder"], env, background)
    finally:
        _stop(background[::-1])


def test_the_transcript_check_fails_on_a_line_not_printed_in_order():
    """The check itself: shown lines printed in order pass (`...` and blank lines skipped); a changed
    figure, a reordered line or an unexpected exit code fails."""
    printed = type("Printed", (), {"exit_code": 0, "output": "head\nbank 1.0\n\ntotal 2.0\n"})
    _check_shown(Step("x", ("head", "...", "", "total 2.0")), printed)
    for shown in (("head", "bank 1.1"), ("total 2.0", "head"), ("error: x",)):
        with pytest.raises(AssertionError):
            _check_shown(Step("x", shown), printed)
