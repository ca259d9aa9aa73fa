"""The allocation verified by the engine: the plan scenario runs as it is and gives the
verification's numbers, a plan made on too few scenarios is caught and backed off until it
holds, a payer without capital is refused, and bad options are refused with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import sim
from sim.cli import cli
from sim.results.io import read_netcdf

SCENARIO = "scenarios/shijiazhuang_score_loan.toml"
FAST = ["--set", "optimize.stability_sets=2", "--set", "optimize.frontier_points=3"]


@pytest.fixture(scope="module")
def optimized(tmp_path_factory):
    out = tmp_path_factory.mktemp("opt") / "out"
    result = CliRunner().invoke(cli, ["optimize", SCENARIO, "--budget", "40e6", "--scenarios", "2000",
                                      "--verify-paths", "4000", *FAST, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_the_folder_holds_a_runnable_plan_and_its_verification(optimized):
    out, text = optimized
    assert {"allocation.json", "allocation.nc", "allocation.csv", "plan_scenario.toml", "plan_portfolio.csv",
            "frontier.nc", "frontier.csv", "frontier.png", "report.html", "scenario.toml"} <= {
        p.name for p in out.iterdir()}
    record = json.loads((out / "allocation.json").read_text())
    levers = record["levers"]
    assert sum(levers.values()) <= record["budget"] * (1 + 1e-9)
    assert record["verification"]["checks"]["pool_dry"]["verdict"] in ("holds", "within noise", "violated")
    assert "engine verification" in text and "binding limits" in text and "stability" in text
    ds = read_netcdf(out / "allocation.nc")
    assert ds.riskpool.kind == "allocation"
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Optimal allocation" in page and "engine verification" in page and "Optimizer frontier" in page


def test_running_the_plan_scenario_repeats_the_verification(optimized, tmp_path):
    out, _ = optimized
    record = json.loads((out / "allocation.json").read_text())
    check = record["verification"]
    sc = sim.load_scenario(out / "plan_scenario.toml")
    assert sc.contract.pool.size == pytest.approx(record["levers"]["pool"])
    book = sim.run(sc, n_paths=check["n_paths"], seed=check["seed"])
    assert book.attrs["portfolio_amount"] == pytest.approx(record["credit_supplied"],
                                                           abs=len(record["credit"]))
    credit = book.riskpool.estimate("credit_supplied_mean")
    assert credit.value == pytest.approx(check["credit_supplied"]["estimate"], rel=1e-12)
    if "pool_dry" in check["checks"]:
        assert book.riskpool.estimate("pool_exhaustion_prob").value == pytest.approx(
            check["checks"]["pool_dry"]["estimate"], abs=1e-15)
    result = CliRunner().invoke(cli, ["run", str(out / "plan_scenario.toml"), "--paths", "500",
                                      "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output


def test_frontier_never_gives_less_credit_for_more_budget(optimized):
    out, _ = optimized
    fr = read_netcdf(out / "frontier.nc")
    credit = fr.credit_supplied.values
    assert np.all(np.diff(credit) >= -1e-6 * np.nanmax(credit))
    split = fr.pool_size + fr.capital_injection + fr.reserve
    assert bool((split <= fr.budget * (1 + 1e-9)).all())


def test_a_plan_on_too_few_scenarios_is_caught_and_backed_off():
    sc = sim.load_scenario(SCENARIO, ["optimize.options={}", "contract.shares.score_loan.bank=0.2",
                                      "contract.shares.score_loan.pool=0.8",
                                      "contract.shares.score_loan.guarantor=0.0"])
    outcome = sim.optimize(sc, budget=20e6, n_scenarios=100, seed=3, verify_paths=20_000, stability_sets=0,
                           frontier_points=0)
    first, last = outcome.rounds[0].verification, outcome.rounds[-1].verification
    assert first.failing(), [(c.name, c.verdict) for c in first.checks]
    assert last.holds, [(c.name, c.estimate, c.se, c.limit) for c in last.checks]
    assert len(outcome.rounds) > 1 and outcome.rounds[-1].tightened


def test_a_payer_without_capital_is_refused(tmp_path):
    result = CliRunner().invoke(cli, ["optimize", SCENARIO, "--budget", "20e6", "--scenarios", "200",
                                      "--set", "contract.reguarantor.cap_total=inf",
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert "optimize.options.4321: sends 30% of each default to the reguarantor" in result.output
    assert "contract.reguarantor.cap_total" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("option", [["--budget", "nan"], ["--budget", "inf"], ["--budget", "-1"],
                                    ["--budget", "1e7", "--alpha", "nan"],
                                    ["--budget", "1e7", "--alpha", "1"],
                                    ["--budget", "1e7", "--loss-budget", "inf"]])
def test_bad_numbers_are_refused(option, tmp_path):
    result = CliRunner().invoke(cli, ["optimize", SCENARIO, *option, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "finite number" in result.output


def test_quiet_prints_only_where_the_results_went(tmp_path):
    out = tmp_path / "o"
    done = subprocess.run([sys.executable, "-m", "sim", "optimize", SCENARIO, "--budget", "20e6",
                           "--scenarios", "500", "--verify-paths", "0", "--set", "optimize.stability_sets=0",
                           "--set", "optimize.frontier_points=0", "--quiet", "--out", str(out)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"allocation written to {out} (run it: riskpool run "
                                        f"{out / 'plan_scenario.toml'})"]
