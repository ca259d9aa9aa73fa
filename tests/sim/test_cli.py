"""The command line as a user meets it: the results folder, the report and its
images, sweeps, and every error path with its message and exit code 2."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import sim
from sim.cli import cli
from sim.report.tables import sweep_rows
from sim.results.io import read_netcdf

SCENARIO = "scenarios/shijiazhuang_score_loan.toml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    assert width > 200 and height > 200, (path, width, height)


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "base"
    result = invoke("run", SCENARIO, "--paths", "3000", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out, result.output


def test_run_writes_the_full_results_folder(run_folder):
    out, output = run_folder
    assert sorted(p.name for p in out.iterdir()) == [
        "loss_curves.png", "pool_balance.png", "pool_sizing.png", "report.html", "results.nc",
        "scenario.toml", "summary.csv", "summary.json"]
    assert "万元" in output and "pool exhaustion probability" in output
    for party in ("bank", "pool", "guarantor", "total"):
        assert party in output
    summary = json.loads((out / "summary.json").read_text())
    ds = read_netcdf(out / "results.nc")
    assert summary["gross_loss_mean"] == pytest.approx(float(ds.gross_loss_mean))
    assert summary["gross_loss_se"] > 0
    assert ds.attrs["n_paths"] == 3000 and len(ds.attrs["scenario_sha256"]) == 64


def test_report_holds_its_sections_and_valid_images(run_folder):
    out, _ = run_folder
    page = (out / "report.html").read_text(encoding="utf-8")
    for section in ("Headline per party", "Loss distributions", "Pool balance over time",
                    "Inputs (the resolved scenario, as run)", "pool exhaustion probability", "Pool sizing"):
        assert section in page
    assert page.count("data:image/png;base64,") == 3  # self-contained: plots embedded
    assert "src=\"http" not in page
    for png in ("loss_curves.png", "pool_balance.png", "pool_sizing.png"):
        assert_png(out / png)


def test_resolved_scenario_repeats_the_run(run_folder, tmp_path):
    out, _ = run_folder
    again = tmp_path / "again"
    assert invoke("run", str(out / "scenario.toml"), "--paths", "3000", "--out", str(again),
                  "--quiet").exit_code == 0
    xr.testing.assert_identical(read_netcdf(out / "results.nc").drop_attrs(),
                                read_netcdf(again / "results.nc").drop_attrs())


def test_report_command_rebuilds_from_results_nc(run_folder):
    out, _ = run_folder
    (out / "report.html").unlink()
    (out / "loss_curves.png").unlink()
    result = invoke("report", str(out))
    assert result.exit_code == 0, result.output
    assert "Loss distributions" in (out / "report.html").read_text(encoding="utf-8")
    assert_png(out / "loss_curves.png")


def test_sweep_over_sharing_and_pool_size(tmp_path):
    scenario = tmp_path / "sweep.toml"
    scenario.write_text(Path(SCENARIO).read_text(encoding="utf-8") + """
[sweep.grid]
"contract.pool.size" = [10e6, 20e6, 40e6, 80e6]
sharing = ["2:2:6", "bank20_pool80", "bank3_cover97"]

[sweep.sharing."2:2:6"]
bank = 0.2
pool = 0.2
guarantor = 0.6

[sweep.sharing.bank20_pool80]
bank = 0.2
pool = 0.8

[sweep.sharing.bank3_cover97]
bank = 0.03
pool = 0.37
guarantor = 0.6
""", encoding="utf-8")
    out = tmp_path / "sw"
    result = invoke("sweep", str(scenario), "--paths", "1500", "--out", str(out))
    assert result.exit_code == 0, result.output
    ds = read_netcdf(out / "results.nc")
    assert dict(ds.pool_exhaustion_prob.sizes) == {"pool_size": 4, "sharing": 3}
    p = ds.pool_exhaustion_prob.sel(sharing="bank20_pool80")
    assert (np.diff(p.values) <= 0).all()  # a bigger pool never runs dry more often (same random numbers)
    assert float(p.sel(pool_size=10e6)) > float(ds.pool_exhaustion_prob.sel(sharing="2:2:6", pool_size=10e6))
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Exhaustion probability vs pool size" in page
    assert_png(out / "exhaustion_vs_pool.png")


def test_grid_on_the_command_line(tmp_path):
    out = tmp_path / "g"
    result = invoke("sweep", SCENARIO, "--grid", "contract.pool.size=20e6,40e6", "--grid",
                    "default.rho_systematic=0.05,0.2", "--paths", "500", "--out", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    ds = read_netcdf(out / "results.nc")
    assert set(ds.pool_exhaustion_prob.dims) == {"pool_size", "default_rho_systematic"}


@pytest.mark.parametrize("args, needle", [
    (["run", "missing.toml"], "missing.toml: file not found"),
    (["run", SCENARIO, "--set", "contract.pool.nope=1"], "contract.pool.nope: unknown key"),
    (["run", SCENARIO, "--set", "contract.pool.size=-1"], "contract.pool.size"),
    (["run", SCENARIO, "--set", "no_equals_sign"], "expected KEY=VALUE"),
    (["run", SCENARIO, "--set", "default.rho_systematic=0.99"], "rho_systematic + rho_sector must be < 1"),
    (["sweep", SCENARIO, "--grid", "sharing=nope"], "unknown option 'nope'"),
    (["sweep", SCENARIO], "nothing to sweep"),
    (["sweep", SCENARIO, "--grid", "contract.pool.size=-5,10"], "contract.pool.size"),
    (["sweep", SCENARIO, "--grid", "contract.pool.size="], "at least one value"),
    (["report", "no_such_folder"], "results.nc: not found"),
    (["validate", "scenarios"], "is a directory"),
])
def test_bad_input_exits_2_with_a_message(args, needle, tmp_path):
    out = tmp_path / "out"
    if args[0] in ("run", "sweep"):
        args = [*args, "--paths", "10", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert not out.exists()


def test_existing_output_folder_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["run", SCENARIO, "--paths", "10", "--out", str(out)])
    assert result.exit_code == 2 and "already exists" in result.output
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_output_under_a_file_is_refused(tmp_path):
    # an unwritable target: a results folder cannot be created beneath a plain file
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(cli, ["run", SCENARIO, "--paths", "10", "--out", str(blocker / "out")])
    assert result.exit_code == 2 and "cannot create the results folder" in result.output


def test_failure_while_writing_leaves_no_half_written_folder(tmp_path, monkeypatch):
    import sim.cli.common

    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sim.cli.common, "write_report", broken)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", SCENARIO, "--paths", "10", "--out", str(out)])
    assert result.exit_code != 0
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the temporary folder is gone too


def test_python_dash_m_sim_and_help():
    result = subprocess.run([sys.executable, "-m", "sim", "--help"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0
    for command in ("run", "sweep", "report", "validate", "portfolio"):
        assert command in result.stdout


def test_portfolio_command_exports_a_csv_that_loads_back(tmp_path):
    csv = tmp_path / "book.csv"
    result = invoke("portfolio", SCENARIO, "--csv", str(csv))
    assert result.exit_code == 0, result.output
    assert "startup" in result.output and "亿元" in result.output
    from models.portfolio import load_portfolio
    assert len(load_portfolio(csv, ["score_loan"])) == 336  # the model's columns are left out
    assert "pd_band" in result.output and "sector" in result.output


def test_the_exported_expected_loss_is_the_engines(tmp_path):
    """Without a stop rule or downturn recoveries, the loans' expected losses add up to the
    engine's mean gross loss (bullet loans: the full amount is the exposure)."""
    import pandas as pd

    import sim
    overrides = ("--set", "products.score_loan.recovery_downturn=0.0", "--set",
                 "contract.stop_rule.default_rate=1.0")
    csv = tmp_path / "book.csv"
    assert invoke("portfolio", SCENARIO, "--csv", str(csv), *overrides).exit_code == 0
    book = pd.read_csv(csv)
    assert set(book.segment) >= {"startup|500-600|score_loan"} and (book.model_pd_annual > 0).all()
    sc = sim.load_scenario(SCENARIO, [overrides[1], overrides[3]])
    ds = sim.run(sc, n_paths=20_000, seed=9)
    mean = ds.riskpool.estimate("gross_loss_mean")
    assert abs(book.expected_loss.sum() - mean.value) < 4 * mean.se


def test_run_with_the_simpy_twin(tmp_path):
    out = tmp_path / "des"
    result = invoke("run", SCENARIO, "--engine", "des", "--paths", "60", "--reviewers", "1",
                    "--review-days", "10", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "bank waits for the pool" in result.output
    ds = read_netcdf(out / "results.nc")
    assert ds.attrs["engine"] == "des" and ds.attrs["n_paths"] == 60
    assert "Operations (SimPy twin)" in (out / "report.html").read_text(encoding="utf-8")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reimbursement_delay_mean"] > 0


def test_progress_bar_only_on_a_terminal(monkeypatch, capsys):
    from sim.cli.common import Progress

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    quiet_pipe = Progress(100, quiet=False)
    quiet_pipe(100)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    Progress(100, quiet=True)(100)
    assert capsys.readouterr().err == ""
    bar = Progress(100, quiet=False)
    bar(40)
    bar(60)
    err = capsys.readouterr().err
    assert "40/100 paths" in err and "100/100 paths" in err and "ETA" in err


def test_plain_progress_writes_lines_for_logs(monkeypatch, capsys, tmp_path):
    from sim.cli.common import Progress

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    log = Progress(100, quiet=False, mode="plain")
    log(40)  # within the first second: no line yet
    log(60)  # the last block always reports
    lines = capsys.readouterr().err.splitlines()
    assert lines == [lines[-1]] and lines[-1].startswith("100/100 paths") and "\r" not in lines[-1]
    result = invoke("run", SCENARIO, "--paths", "500", "--progress", "plain", "--out", str(tmp_path / "o"))
    assert result.exit_code == 0 and "500/500 paths" in result.output


def test_sweep_over_a_single_key(tmp_path):
    out = tmp_path / "one"
    result = invoke("sweep", SCENARIO, "--grid", "contract.pool.size=10e6,40e6", "--paths", "500",
                    "--out", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    ds = read_netcdf(out / "results.nc")
    assert dict(ds.pool_exhaustion_prob.sizes) == {"pool_size": 2}
    assert (float(ds.pool_exhaustion_prob.sel(pool_size=10e6))
            >= float(ds.pool_exhaustion_prob.sel(pool_size=40e6)))
    assert_png(out / "exhaustion_vs_pool.png")


def test_a_probability_no_path_reached_shows_its_exact_upper_bound(tmp_path):
    """A pool no path empties: not a bare 0 ± 0 but 1 - 0.05^(1/n), the exact one-sided 95 % bound
    (at the verdicts' z = 1.645), in the run's table and in a sweep's."""
    n = 2000
    bound = f"(≤ {1 - 0.049985 ** (1 / n):.4%}, 95 %)"
    result = invoke("run", SCENARIO, "--paths", str(n), "--set", "contract.pool.size=1e9",
                    "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert f"pool exhaustion probability  0.0000% {bound}" in result.output
    result = invoke("sweep", SCENARIO, "--paths", str(n), "--grid", "contract.pool.size=1e6,1e9",
                    "--out", str(tmp_path / "sweep"))
    assert result.exit_code == 0, result.output
    assert f"0.000% (≤ {1 - 0.049985 ** (1 / n):.3%}, 95 %)" in result.output


def test_a_sweep_over_path_counts_shows_its_zeros_without_a_bound():
    """Points of different path counts leave no single n in the sweep's attributes: no bound."""
    sc = sim.load_scenario(SCENARIO)
    swept = sim.sweep(sc, {"simulation.n_paths": [500, 1000], "contract.pool.size": [1e12]}, seed=1)
    assert [row[2] for row in sweep_rows(swept)[1]] == ["0.000% ± 0.000%"] * 2
