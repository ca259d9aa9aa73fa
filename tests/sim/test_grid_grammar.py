"""The --grid grammar (lists, ranges, sharing names as strings), sweeping a
list-valued key end to end, and the files a user opens in Excel."""

from __future__ import annotations

import csv

import pytest
from rich.cells import cell_len

from models.scenario import ScenarioError, parse_override
from sim.report.tables import text_table
from sim.results.io import read_netcdf
from sim.scale.grid import parse_grid
from tests.sim.test_cli import SCENARIO, invoke


@pytest.mark.parametrize("text, values", [
    ("default.stress=[],[1.5,2,1.5]", [[], [1.5, 2, 1.5]]),
    ("sharing=2:2:6,4321", ["2:2:6", "4321"]),
    ("sharing='a b',\"4321\"", ["a b", "4321"]),
    ("contract.pool.size=10e6:40e6:10e6", [10e6, 20e6, 30e6, 40e6]),
    ("contract.pool.size=5e6:40e6:x2", [5e6, 10e6, 20e6, 40e6]),
    ("contract.pool.size=5e6:50e6:x2", [5e6, 10e6, 20e6, 40e6]),
    ("default.rho_systematic=0.1:0.3:0.1", [0.1, 0.2, 0.3]),
    ("simulation.horizon_months=12:36:12", [12, 24, 36]),
    ("default.copula=gaussian,\"student_t\"", ["gaussian", "student_t"]),
    ("contract.pool.size=1e6, 2e6", [1e6, 2e6]),
])
def test_grid_values(text, values):
    [(key, got)] = parse_grid([text]).items()
    assert got == values and all(type(g) is type(v) for g, v in zip(got, values))


@pytest.mark.parametrize("text", ["contract.pool.size=40e6:10e6:10e6", "contract.pool.size=1:2:0",
                                  "contract.pool.size=1:2:x1", "contract.pool.size=0:1e9:1",
                                  "contract.pool.size=1e6,,2e6", "contract.pool.size=", "=1,2"])
def test_bad_grids_say_the_grammar(text):
    with pytest.raises(ScenarioError, match="expected KEY="):
        parse_grid([text])


def test_the_same_value_twice_is_refused_before_the_run():
    from models.scenario import load_scenario
    from sim.scale.grid import sweep_axes

    sc = load_scenario(SCENARIO)
    with pytest.raises(ScenarioError, match="values repeat"):
        sweep_axes(sc, parse_grid(["contract.pool.size=1e7,10000000"]))


def test_a_quoted_key_part_stays_whole():
    assert parse_override('sweep.grid."default.stress"=[[], [2.0]]') == (
        ["sweep", "grid", "default.stress"], [[], [2.0]])
    with pytest.raises(ScenarioError, match="dotted key"):
        parse_override("a..b=1")


def test_sweeping_a_stress_vector_writes_a_tidy_csv(tmp_path):
    out = tmp_path / "sw"
    result = invoke("sweep", SCENARIO, "--grid", "default.stress=[],[1.5,2,1.5]",
                    "--grid", "contract.pool.size=20e6:40e6:20e6", "--paths", "1000", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "2,000 万元" in result.output and "±" in result.output
    ds = read_netcdf(out / "results.nc")
    assert list(ds.default_stress.values) == ["[]", "[1.5, 2, 1.5]"]
    stressed = ds.riskpool.estimate("gross_loss_mean", default_stress="[1.5, 2, 1.5]", pool_size=20e6)
    base = ds.riskpool.estimate("gross_loss_mean", default_stress="[]", pool_size=20e6)
    assert stressed.value > base.value + 4 * (stressed.se + base.se)  # the stress is applied
    with (out / "sweep.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 * 7 * ds.sizes["quantile"]  # a row per point, party and quantile
    assert list(rows[0])[:4] == ["default_stress", "pool_size", "party", "quantile"]
    assert {"loss_quantile_se", "pool_exhaustion_prob_se"} <= set(rows[0])


def test_summary_csv_holds_every_level_with_its_error(tmp_path):
    out = tmp_path / "run"
    result = invoke("run", SCENARIO, "--paths", "1000", "--quiet", "--out", str(out),
                    "--set", "simulation.quantiles=[0.9,0.99,0.999]")
    assert result.exit_code == 0, result.output
    with (out / "summary.csv").open(encoding="utf-8") as fh:
        rows = {r["figure"]: r for r in csv.DictReader(fh)}
    for q in ("0.9", "0.99", "0.999"):
        for figure in (f"gross_loss_var{q}", f"gross_loss_es{q}", f"bank_loss_var{q}", f"pool_loss_es{q}"):
            assert rows[figure]["standard_error"] != "", figure
    assert rows["pool_exhaustion_prob"]["unit"] == "probability" and rows["gross_loss_mean"]["unit"] == "yuan"


def test_the_table_level(tmp_path):
    out = tmp_path / "q"
    result = invoke("run", SCENARIO, "--paths", "500", "--quantile", "0.999", "--out", str(out))
    assert result.exit_code == 0 and "VaR 99.9%" in result.output
    result = invoke("run", SCENARIO, "--paths", "500", "--out", str(tmp_path / "d"),
                    "--set", "simulation.quantiles=[0.9,0.995]")
    assert result.exit_code == 0 and "VaR 90.0%" in result.output  # the highest up to 0.99
    result = invoke("run", SCENARIO, "--quantile", "0.97", "--out", str(tmp_path / "never"))
    assert result.exit_code == 2 and "simulation.quantiles" in result.output


def test_terminal_tables_measure_wide_characters():
    lines = text_table(["key", "E[loss] 万元"], [["a", "27,724.1 ± 102.6"], ["bb", "162,555.0 ± 1,750.5"]],
                       sections=(0,)).splitlines()
    ends = {cell_len(line) for line in lines if line.strip()}
    assert len(ends) == 1  # right-aligned columns end together: the wide 万元 is measured as two
    assert "E[loss] 万元" in lines[0] and "162,555.0 ± 1,750.5" in lines[-1]
