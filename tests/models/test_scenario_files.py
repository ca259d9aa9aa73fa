"""Scenario files end to end: the seed scenarios load and validate; every file in
tests/data/broken is rejected by the loader and by the CLI (exit code 2, message
on stderr, nothing written), with a message that names the file and the key or
column; overrides and relative portfolio paths behave as documented."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from models.portfolio import PortfolioError
from models.scenario import ScenarioError, load_scenario, scenario_sha256
from sim.cli import cli
from sim.engine.plan import build_portfolio

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml"))
BROKEN = ROOT / "tests" / "data" / "broken"
MANIFEST = BROKEN / "EXPECTED.toml"
EXPECTED: dict[str, list[str]] = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
RISKPOOL = Path(sys.executable).with_name("riskpool")
GOOD_CSV = (
    "loan_id,firm_id,score,stage,sector,amount,term_months,start_month,product\n"
    "L1,F1,620,growth,electronic_info,3000000,12,0,score_loan\n"
    "L2,F2,540,startup,biomedicine,1500000,24,3,score_loan\n"
)
SHARES = "[contract.shares.score_loan]\nbank = 0.2\npool = 0.8\n"


def run_cli(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def rejection(path: Path) -> ScenarioError | PortfolioError:
    """The error raised while loading `path` and building its portfolio."""
    with pytest.raises((ScenarioError, PortfolioError)) as info:
        build_portfolio(load_scenario(path))
    return info.value


def named_file(path: Path, error: Exception) -> str:
    """The file a message must name: the portfolio file for errors in a loan file,
    the scenario for everything else (a synthetic book included)."""
    if not isinstance(error, PortfolioError):
        return path.name
    portfolio = tomllib.loads(path.read_text(encoding="utf-8"))["portfolio"].get("path")
    if portfolio is None:
        return path.name
    return Path(portfolio).name or path.parent.name  # "." names the folder itself


# --- seed scenarios ----------------------------------------------------------

@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_seed_scenario_loads_and_validates(path: Path) -> None:
    scenario = load_scenario(path)
    portfolio = build_portfolio(scenario)
    assert len(portfolio) > 0
    assert set(portfolio.product_names) == set(scenario.products)
    result = run_cli("validate", str(path))
    assert result.exit_code == 0, result.stderr
    assert "valid" in result.stdout and result.stderr == ""


def test_seed_scenarios_exist() -> None:
    assert len(SCENARIOS) >= 5


def test_validate_subprocess_exit_code_zero() -> None:
    path = ROOT / "scenarios" / "shijiazhuang_score_loan.toml"
    proc = subprocess.run([str(RISKPOOL), "validate", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout


# --- broken inputs -----------------------------------------------------------

def test_manifest_covers_every_broken_file() -> None:
    assert len(EXPECTED) >= 20
    scenario_files = {p.name for p in BROKEN.glob("*.toml")} - {MANIFEST.name}
    assert scenario_files - set(EXPECTED) == set(), "broken scenarios without a manifest entry"
    assert set(EXPECTED) - scenario_files == set(), "manifest entries without a file"
    referenced = set()
    for name in EXPECTED:
        try:
            path = tomllib.loads((BROKEN / name).read_text(encoding="utf-8"))["portfolio"]["path"]
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, KeyError, TypeError):
            continue
        referenced.add(Path(path).name)
    data_files = {p.name for p in BROKEN.iterdir() if p.suffix != ".toml"}
    assert data_files - referenced == set(), "portfolio files no broken scenario uses"
    for name, substrings in EXPECTED.items():
        assert substrings and all(isinstance(s, str) and s for s in substrings), name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_input_is_rejected(name: str, tmp_path: Path) -> None:
    path = BROKEN / name
    error = rejection(path)
    message = str(error)
    assert named_file(path, error) in message
    for substring in EXPECTED[name]:
        assert substring in message, f"{substring!r} not in {message!r}"

    result = run_cli("validate", str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr

    out = tmp_path / "out"
    result = run_cli("run", str(path), "--out", str(out), "--paths", "10", "--quiet")
    assert result.exit_code == 2
    assert message in result.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["pool_size_negative.toml", "csv_amount_not_numeric.toml"])
def test_broken_input_subprocess(name: str, tmp_path: Path) -> None:
    """The installed console script really exits 2 and writes nothing."""
    path = BROKEN / name
    message = str(rejection(path))
    command = "validate" if name.startswith("pool") else "run"
    out = tmp_path / "out"
    extra = ["--out", str(out), "--paths", "10", "--quiet"] if command == "run" else []
    proc = subprocess.run([str(RISKPOOL), command, str(path), *extra],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert proc.stdout == ""
    assert not out.exists()


# --- overrides ---------------------------------------------------------------

SEED = ROOT / "scenarios" / "shijiazhuang_score_loan.toml"


def test_override_changes_value() -> None:
    assert load_scenario(SEED).contract.pool.size == 40e6
    scenario = load_scenario(SEED, ["contract.pool.size=60e6"])
    assert scenario.contract.pool.size == 60e6
    scenario = load_scenario(SEED, ['default.copula="student_t"', "simulation.n_paths=1000"])
    assert scenario.default.copula == "student_t"
    assert scenario.simulation.n_paths == 1000


def test_the_scenario_hash_names_what_is_computed_not_how() -> None:
    """Block size and memory budget leave a run's numbers as they are: not part of its hash; every
    other setting is."""
    base = scenario_sha256(load_scenario(SEED))
    assert scenario_sha256(load_scenario(SEED, ["simulation.block_size=512",
                                                "simulation.memory_gib=0.25"])) == base
    for other in ("simulation.n_paths=1000", "simulation.seed=7", "contract.pool.size=60e6",
                  'simulation.method="dense"'):
        assert scenario_sha256(load_scenario(SEED, [other])) != base, other


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("contract.pool.size=-1", ["contract.pool.size", "greater than or equal to 0"]),
        ("contract.nope=1", ["contract.nope", "unknown key", "pool"]),
        ("no_equals_sign", ["no_equals_sign", "KEY=VALUE"]),
        ("contract..size=1", ["contract..size", "KEY=VALUE"]),
        ("name.x=1", ["name.x", "'name' is a value, not a table"]),
    ],
)
def test_bad_override_names_the_key(override: str, expected: list[str]) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(SEED, [override])
    for substring in expected:
        assert substring in str(info.value)


def test_bad_override_on_the_cli() -> None:
    result = run_cli("validate", str(SEED), "--set", "contract.pool.size=-1")
    assert result.exit_code == 2
    assert "contract.pool.size" in result.stderr
    result = run_cli("validate", str(SEED), "--set", "contract.pool.size=60e6")
    assert result.exit_code == 0, result.stderr


# --- relative portfolio paths ------------------------------------------------

def test_relative_portfolio_path_resolves_against_scenario_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = tmp_path / "case"
    (case / "data").mkdir(parents=True)
    (case / "data" / "loans.csv").write_text(GOOD_CSV, encoding="utf-8")
    (case / "scenario.toml").write_text(
        '[portfolio]\npath = "data/loans.csv"\n\n' + SHARES, encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "data").mkdir(parents=True)
    # A decoy with the same relative path in the working directory must not be used.
    (elsewhere / "data" / "loans.csv").write_text("not,a,portfolio\n", encoding="utf-8")
    monkeypatch.chdir(elsewhere)

    scenario = load_scenario(Path("..") / "case" / "scenario.toml")
    assert Path(scenario.portfolio.path) == (case / "data" / "loans.csv").resolve()
    portfolio = build_portfolio(scenario)
    assert list(portfolio.loan_id) == ["L1", "L2"]
    assert portfolio.total_amount == 4.5e6
    result = run_cli("validate", str(Path("..") / "case" / "scenario.toml"))
    assert result.exit_code == 0, result.stderr
