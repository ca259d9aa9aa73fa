"""`riskpool size` and `--tail` as a user meets them: the answer with its
interval, the curve, a grid of curves, and bad inputs with exit code 2."""

from __future__ import annotations

import pytest

from models.tail import GRAMMAR
from sim.results.io import read_netcdf
from tests.sim.test_cli import SCENARIO, assert_png, invoke


def test_size_answers_with_an_interval_and_writes_the_curve(tmp_path):
    out = tmp_path / "size"
    result = invoke("size", SCENARIO, "--target", "0.02", "--paths", "4000", "--out", str(out))
    assert result.exit_code == 0, result.output
    ds = read_netcdf(out / "results.nc")
    answer = ds.riskpool.required_pool()
    assert answer.value == float(ds.required_pool_quantile.sel(quantile=0.98))
    assert f"{answer.value / 1e4:,.1f} ± {answer.se / 1e4:,.1f}" in result.output
    assert "95 % CI" in result.output and ds.attrs["sizing_target"] == 0.02
    # the curve agrees with the answer: P(dry) at the answer is about the target
    at = ds.pool_dry_by_size.sel(pool_grid=answer.value, method="nearest")
    assert 0.005 < float(at) < 0.06
    assert_png(out / "pool_sizing.png")


def test_size_on_a_grid_gives_a_line_per_point(tmp_path):
    out = tmp_path / "grid"
    result = invoke("size", SCENARIO, "--target", "0.05", "--paths", "2000", "--tail", "pool_dry",
                    "--grid", "default.rho_systematic=0.08,0.2", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "rho_systematic=0.08" in result.output and "rho_systematic=0.2" in result.output
    assert "importance sampling for pool_dry" in result.output
    assert_png(out / "pool_sizing.png")


def test_run_with_tail_weights_every_estimate(tmp_path):
    out = tmp_path / "tail"
    result = invoke("run", SCENARIO, "--tail", "gross_loss>=1.2e8", "--paths", "3000", "--out", str(out))
    assert result.exit_code == 0, result.output
    ds = read_netcdf(out / "results.nc")
    assert ds.attrs["tail"] == "gross_loss>=1.2e8" and ds.attrs["effective_paths"] < 3000
    assert ds.attrs["tail_shift"][0] < 0  # towards bad years
    assert 'tail = "gross_loss>=1.2e8"' in (out / "scenario.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize("event", ["pooldry", "bank>=", "bank>=-5e7", "gross_loss>=inf", "loss>=1e8",
                                   "gross_loss<=1e8"])
def test_a_bad_tail_event_exits_2_with_the_grammar(event, tmp_path):
    out = tmp_path / "never"
    result = invoke("run", SCENARIO, "--tail", event, "--out", str(out))
    assert result.exit_code == 2
    assert GRAMMAR in " ".join(result.output.split()) and not out.exists()


@pytest.mark.parametrize("target", ["0", "1", "-0.1", "1.5", "abc", "nan"])
def test_a_bad_target_exits_2(target, tmp_path):
    result = invoke("size", SCENARIO, "--target", target, "--out", str(tmp_path / "never"))
    assert result.exit_code == 2 and "--target" in result.output
    assert not (tmp_path / "never").exists()


def test_a_bad_tail_in_the_scenario_names_the_key():
    result = invoke("run", SCENARIO, "--set", 'simulation.tail="pool_empty"')
    assert result.exit_code == 2 and "simulation.tail" in result.output
