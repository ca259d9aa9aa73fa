"""Failures as the command line meets them: no traceback, exit 2 with a
one-line message for expected failures (bad options, full disk, races,
another program's files), 1 for an unexpected error (traceback with
--debug), 130 on Ctrl-C, 143 on SIGTERM, and never a half-written file or a
temporary folder left behind."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sim.cli.common
import sim.cli.run
from sim.cli.main import main
from sim.results.io import atomic_folder
from tests.sim.test_cli import SCENARIO, invoke

ROOT = Path(__file__).resolve().parents[2]


def _main(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    captured = capsys.readouterr()
    return stop.value.code, captured.out + captured.err


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("args, needle", [
    (["--seed", str(2**70)], "--seed"),
    (["--engine", "des", "--review-days", "nan"], "--review-days"),
    (["--engine", "des", "--review-days", "inf"], "--review-days"),
    (["--engine", "des", "--approval-days", "nan"], "--approval-days"),
    (["--set", f"simulation.seed={2**70}"], "simulation.seed"),
])
def test_bad_options_exit_2_before_any_work(args, needle, tmp_path, capsys):
    code, text = _main(["run", SCENARIO, "--out", str(tmp_path / "out"), *args], capsys)
    assert code == 2 and needle in text and "Traceback" not in text
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args", [["--paths", "20000", "--set", "simulation.memory_gib=0.001"],
                                  ["--paths", "20000", "--memory-gib", "0.001"]])
def test_a_run_that_cannot_fit_even_streamed_is_refused_up_front(args, tmp_path, capsys):
    code, out = _main(["run", SCENARIO, "--out", str(tmp_path / "o"), *args], capsys)
    assert code == 2 and "memory budget" in out and "simulation.memory_gib" in out and "MiB" in out
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("args, needle", [(["--paths", str(10**12)], "--paths"),
                                          (["--set", f"simulation.n_paths={10**9}"], "simulation.n_paths"),
                                          (["--memory-gib", "nan"], "--memory-gib"),
                                          (["--memory-gib", "0"], "--memory-gib")])
def test_path_counts_and_budgets_out_of_range_are_refused(args, needle, tmp_path, capsys):
    code, out = _main(["run", SCENARIO, "--out", str(tmp_path / "o"), *args], capsys)
    assert code == 2 and needle in out and "Traceback" not in out
    assert _leftovers(tmp_path) == []


def test_a_run_within_a_small_budget_runs(tmp_path, capsys):
    code, out = _main(["run", SCENARIO, "--paths", "1000", "--set", "simulation.memory_gib=0.01", "--quiet",
                       "--out", str(tmp_path / "o")], capsys)
    assert code == 0 and (tmp_path / "o" / "results.nc").is_file()


def test_an_empty_portfolio_path_names_the_key(tmp_path, capsys):
    scenario = tmp_path / "s.toml"
    text = (ROOT / SCENARIO).read_text(encoding="utf-8")
    start = text.index("[portfolio.synthetic]")
    end = text.index("[default]")
    scenario.write_text(text[:start] + '[portfolio]\npath = ""\n\n' + text[end:], encoding="utf-8")
    code, out = _main(["validate", str(scenario)], capsys)
    assert code == 2 and "portfolio.path" in out


def test_a_scenario_with_a_byte_order_mark_loads(tmp_path, capsys):
    scenario = tmp_path / "bom.toml"
    scenario.write_bytes(b"\xef\xbb\xbf" + (ROOT / SCENARIO).read_bytes())
    code, out = _main(["validate", str(scenario)], capsys)
    assert code == 0 and "valid" in out


def test_a_name_too_long_for_a_folder_is_refused_before_the_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out = _main(["run", str(ROOT / SCENARIO), "--set", f'name="{"积" * 125}"'], capsys)
    assert code == 2 and "at most" in out and not (tmp_path / "results").exists()


def test_an_unexpected_error_is_one_line_and_debug_shows_it(tmp_path, monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise RuntimeError("something we did not foresee")

    monkeypatch.setattr(sim.cli.run, "run_engine", boom)
    code, out = _main(["run", SCENARIO, "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and "unexpected RuntimeError: something we did not foresee" in out
    assert "Traceback" not in out and "--debug" in out
    with pytest.raises(RuntimeError):
        main(["--debug", "run", SCENARIO, "--out", str(tmp_path / "o")])
    assert _leftovers(tmp_path) == []


def test_ctrl_c_exits_130_and_writes_nothing(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sim.cli.common, "write_report", interrupted)  # inside the results folder's write
    code, out = _main(["run", SCENARIO, "--paths", "200", "--out", str(tmp_path / "o")], capsys)
    assert code == 130 and "interrupted" in out
    assert _leftovers(tmp_path) == []


def test_a_full_disk_exits_2_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    def full(ds, path):
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(sim.cli.common, "write_netcdf", full)
    target = tmp_path / "a" / "b" / "out"
    code, out = _main(["run", SCENARIO, "--paths", "200", "--out", str(target)], capsys)
    assert code == 2 and "No space left on device" in out and "Traceback" not in out
    assert _leftovers(tmp_path) == []  # nor the parents a/b made for it


def test_a_real_full_disk(tmp_path, capsys):
    """On a 64 KiB tmpfs, smaller than the results folder (needs the right to mount one; skipped,
    with the reason, otherwise)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        code, out = _main(["run", SCENARIO, "--paths", "2000", "--out", str(disk / "out")], capsys)
        assert code == 2 and "No space left on device" in out
        assert _leftovers(disk) == []
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_portfolio_csv_is_written_atomically(tmp_path, monkeypatch):
    import pandas as pd

    def partial(frame, path, **kwargs):
        Path(path).write_text("loan_id,firm_id\n", encoding="utf-8")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pd.DataFrame, "to_csv", partial)
    target = tmp_path / "loans.csv"
    result = invoke("portfolio", SCENARIO, "--csv", str(target))
    assert result.exit_code == 2 and "No space left" in result.output
    assert _leftovers(tmp_path) == []


def test_stale_temporaries_of_dead_writers_are_removed_and_modes_follow_the_umask(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    from sim.results.io import _host

    stale = tmp_path / f".old.riskpool-{dead}-{_host()}.abcd1234.tmp"
    stale.mkdir()
    (stale / "results.nc").write_bytes(b"half")
    mine = tmp_path / f".busy.riskpool-{os.getpid()}-{_host()}.abcd1234.tmp"  # a live writer's: kept
    mine.mkdir()
    elsewhere = tmp_path / f".far.riskpool-{dead}-0123abcd.abcd1234.tmp"  # another host's: kept
    elsewhere.mkdir()
    old = os.umask(0o022)
    try:
        with atomic_folder(tmp_path / "new") as tmp:
            (tmp / "x").write_text("x")
    finally:
        os.umask(old)
    assert not stale.exists() and mine.exists() and elsewhere.exists()
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o755


def _riskpool(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sim", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_three_racing_runs_one_winner(tmp_path):
    target = tmp_path / "out"
    runs = [_riskpool("run", SCENARIO, "--paths", "2000", "--quiet", "--out", str(target)) for _ in range(3)]
    results = [(r.wait(timeout=300), r.stdout.read()) for r in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2, 2], results
    assert all("already exists" in text for code, text in results if code == 2)
    assert all("Traceback" not in text for _, text in results)
    assert _leftovers(tmp_path) == ["out"]


def test_sigterm_exits_143_and_leaves_nothing(tmp_path):
    target = tmp_path / "out"
    run = _riskpool("run", SCENARIO, "--paths", "2000000", "--out", str(target))
    time.sleep(8)  # imports and the numba cache are loaded: the run (~20 s) is under way
    run.send_signal(signal.SIGTERM)
    code = run.wait(timeout=120)
    text = run.stdout.read()
    assert code == 143 and "terminated" in text and "Traceback" not in text
    assert _leftovers(tmp_path) == []


# A run that stops in the middle of writing its results folder: after `step` has written its file,
# the process marks it and waits there for the test's signal.
PAUSED_WRITE = """
import pathlib, sys, time
import sim.cli.common as common
from sim.cli.main import main
step, marker = sys.argv[1], pathlib.Path(sys.argv[2])
done = getattr(common, step)
def paused(*args, **kwargs):
    result = done(*args, **kwargs)
    marker.write_text(step)
    time.sleep(120)
    return result
setattr(common, step, paused)
main(sys.argv[3:])
"""


@pytest.mark.parametrize("step", ["write_netcdf", "write_json", "write_report"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_signal_during_the_write_leaves_no_results_folder(step, sig, tmp_path):
    """SIGTERM: exit 143 and the temporary folder removed; SIGKILL cannot be handled, so the
    temporary folder stays, named for its dead writer, and the next run into the folder removes it."""
    marker = tmp_path / "marker"
    out = tmp_path / "results"
    run = subprocess.Popen([sys.executable, "-c", PAUSED_WRITE, step, str(marker), "run", SCENARIO,
                            "--paths", "500", "--quiet", "--out", str(out / "a")], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while not marker.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), run.stdout.read() if run.poll() is not None else "no write in 240 s"
    assert [p.name.startswith(".a.riskpool-") for p in out.iterdir()] == [True]  # mid-write
    run.send_signal(sig)
    code = run.wait(timeout=60)
    text = run.stdout.read()
    if sig == signal.SIGTERM:
        assert code == 143 and "terminated" in text and "Traceback" not in text
        assert _leftovers(out) == [] and not (out / "a").exists()
        return
    assert code == -signal.SIGKILL and not (out / "a").exists()
    assert len(_leftovers(out)) == 1  # the dead writer's temporary folder
    again = invoke("run", SCENARIO, "--paths", "500", "--quiet", "--out", str(out / "b"))
    assert again.exit_code == 0, again.output
    assert _leftovers(out) == ["b"]


def test_the_budget_counts_what_a_run_keeps():
    """A loss-only run keeps 8 bytes a path: it runs where a full run of as many paths would not
    fit; past the budget a full run streams, and risk contributions (which need the per-path
    results) are refused up front."""
    import sim
    from sim.engine.outputs import MemoryBudgetError

    sc = sim.load_scenario(ROOT / "scenarios/baoding_pool.toml", ["simulation.memory_gib=0.15"])
    assert sim.run_losses(sc, n_paths=10_000_000).shape == (10_000_000,)
    with pytest.raises(MemoryBudgetError, match="risk contributions over 400,000 paths .*memory budget"):
        sim.run(sc, n_paths=400_000, contributions=["sector"])
