"""The bank's view: capital with and without the scheme (substitution by hand,
economic capital against the run's own ES), run comparison (zero for
identical runs, paired below unpaired on common random numbers, unpaired
with a note otherwise) and the command line's answers and refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim
from models.scenario import PARTIES
from sim.engine.plan import build_portfolio, compile_plan
from sim.engine.run import RunSpec
from sim.results.compare import compare_runs
from sim.risk import capital as basel
from sim.scale.capital import bank_capital, regulatory
from tests.helpers import equal_loans, make_scenario
from tests.sim.test_capital_formulas import ref_corporate_k
from tests.sim.test_cli import invoke
from tests.sim.test_cli_failures import _main

BANK_BOOK = "scenarios/bank_book.toml"
FOUR_THREE_TWO_ONE = "scenarios/national_4321.toml"


def test_standardised_and_irb_substitution_by_hand_on_the_4321_book():
    sc = sim.load_scenario(FOUR_THREE_TWO_ONE, ["contract.guarantor.leverage=1e6"])  # every loan admitted
    pf = build_portfolio(sc)
    reg = regulatory(RunSpec.resolve(sc, n_paths=10, portfolio=pf), pf, sc.capital)
    ead = pf.amount
    # 8 % x EAD x (bank 20 % at 85 % + guarantor 40 % at 100 % + re-guarantor 30 % at 20 % + state 10 % at 0)
    by_hand = 0.08 * ead * (0.2 * 0.85 + 0.4 * 1.0 + 0.3 * 0.2)
    np.testing.assert_allclose(reg["sa_scheme"], by_hand, rtol=1e-12)
    np.testing.assert_allclose(reg["sa"], 0.08 * 0.85 * ead, rtol=1e-12)
    k_guarantor = basel.irb_capital(0.01, 0.45, 2.5)  # payers: F-IRB LGD of financials, M 2.5 years
    k_reguarantor = basel.irb_capital(0.0005, 0.45, 2.5)
    # the state's share (PD 0) needs no capital
    expected = (0.2 * reg["k"] + 0.4 * k_guarantor + 0.3 * k_reguarantor) * ead
    np.testing.assert_allclose(reg["irb_scheme"], expected, rtol=1e-12)
    assert (reg["irb_scheme"] < reg["irb"]).all()


def test_a_pool_gives_capital_relief_only_when_its_cover_is_recognised():
    base = sim.load_scenario("scenarios/shijiazhuang_score_loan.toml")
    pf = build_portfolio(base)
    out = {}
    for cover in ("none", "guarantee"):
        sc = sim.load_scenario("scenarios/shijiazhuang_score_loan.toml", [f"capital.pool_cover={cover!r}"])
        out[cover] = regulatory(RunSpec.resolve(sc, n_paths=10, portfolio=pf), pf, sc.capital)
    shares = base.contract.shares["score_loan"]
    assert shares.pool > 0
    ead = pf.amount
    kept_guarantor = 0.08 * ead * (shares.guarantor * 1.0)
    sa = 0.08 * 0.85 * ead
    # the guarantor (100 %) weighs more than the borrower (85 %): its cover alone would raise the
    # requirement, so the bank does not recognise it (CRE22)
    guarantor_only = 0.08 * ead * 0.85 * (1 - shares.guarantor) + kept_guarantor
    assert (guarantor_only > sa).all()
    np.testing.assert_allclose(out["none"]["sa_scheme"], sa, rtol=1e-12)
    np.testing.assert_allclose(out["guarantee"]["sa_scheme"],
                               0.08 * ead * (0.85 * (1 - shares.guarantor - shares.pool) + 0.2 * shares.pool)
                               + kept_guarantor, rtol=1e-12)


def test_economic_capital_is_the_runs_own_es_less_el_and_its_euler_parts_add_up():
    sc = sim.load_scenario(BANK_BOOK, ["simulation.quantiles=[0.99]", "capital.level=0.99"])
    ds = bank_capital(sc, n_paths=3000, seed=9)
    run = sim.run(sc, n_paths=3000, seed=9)
    es = run.riskpool.estimate("loss_es", party="bank", quantile=0.99)
    el = run.riskpool.estimate("loss_mean", party="bank")
    assert float(ds.economic_capital_horizon) == pytest.approx(es.value - el.value, rel=1e-12)
    assert float(ds.expected_loss_horizon) == pytest.approx(el.value, rel=1e-12)
    for by in ("segment", "product"):
        assert float(ds[f"economic_capital_{by}"].sum()) == pytest.approx(float(ds.economic_capital_horizon),
                                                                         rel=1e-9)
        assert float(ds[f"expected_loss_{by}"].sum()) == pytest.approx(el.value, rel=1e-9)
        assert float(ds[f"irb_capital_{by}"].sum()) == pytest.approx(float(ds.irb_capital), rel=1e-12)
    # one year of defaults loses less than the whole horizon's
    assert float(ds.expected_loss_year) < float(ds.expected_loss_horizon)
    fee = ds.breakeven_fee_segment.values
    assert ((fee > sc.capital.admin_cost) & (fee < 1)).all()


def test_the_breakeven_fee_and_raroc_by_hand_on_a_one_segment_book():
    sc = make_scenario(pricing={"funding_cost": 0.02, "operating_cost": 0.005},
                       simulation={"quantiles": [0.99]}, capital={"level": 0.99})
    pf = equal_loans(200, 0.02, recovery=0.3)  # growth stage, score 500: one segment
    ds = bank_capital(sc, n_paths=2000, seed=3, portfolio=pf)
    assert ds.sizes["segment"] == 1
    k = ref_corporate_k(0.02, 0.40, 2.5)  # the test file's own evaluation of the IRB formula
    fee = 0.02 * (1 - 0.3) + sc.capital.admin_cost + sc.capital.cost_of_capital * k
    assert float(ds.breakeven_fee_segment[0]) == pytest.approx(fee, rel=1e-9)
    rate = float(compile_plan(sc, pf).rate[0])
    income = 200 * 1e6 * (rate - 0.025)  # a year's margin after funding and operating cost, bullet loans
    assert float(ds.net_interest_segment[0]) == pytest.approx(income, rel=1e-9)
    raroc = (income - float(ds.expected_loss_segment[0])) / float(ds.economic_capital_segment[0])
    assert float(ds.raroc_segment[0]) == pytest.approx(raroc, rel=1e-9)


@pytest.fixture(scope="module")
def three_runs():
    sc = sim.load_scenario("scenarios/shijiazhuang_score_loan.toml")
    stressed = sim.load_scenario("scenarios/shijiazhuang_score_loan.toml", ["default.stress=[1.5,2,1.5]"])
    other = sim.load_scenario("scenarios/baoding_pool.toml")
    return (sim.run(sc, n_paths=3000, seed=1), sim.run(stressed, n_paths=3000, seed=1),
            sim.run(other, n_paths=3000, seed=1))


def test_identical_runs_compare_to_zero_differences(three_runs):
    base = three_runs[0]
    cmp = compare_runs([base, base.copy(deep=True)], ["a", "b"])
    assert bool(cmp.paired.sel(run="b"))
    np.testing.assert_array_equal(cmp.difference.sel(run="b").values, 0.0)
    paired_figures = [f for f in map(str, cmp.figure.values) if not f.endswith("_var")]
    np.testing.assert_array_equal(cmp.difference_se.sel(run="b", figure=paired_figures).values, 0.0)


def test_paired_standard_errors_are_below_unpaired_ones_on_common_random_numbers(three_runs):
    base, stressed, _ = three_runs
    cmp = compare_runs([base, stressed], ["base", "stressed"])
    assert bool(cmp.paired.sel(run="stressed")) and cmp.attrs["notes"] == ""
    for figure in ("gross_loss_mean", "bank_loss_mean", "fiscal_cost_mean", "gross_loss_es", "bank_loss_es"):
        paired = float(cmp.difference_se.sel(run="stressed", figure=figure))
        unpaired = float(np.hypot(cmp.value_se.sel(run="base", figure=figure),
                                  cmp.value_se.sel(run="stressed", figure=figure)))
        assert paired < 0.7 * unpaired, figure
        value = float(cmp.difference.sel(run="stressed", figure=figure))
        assert value == pytest.approx(float(cmp.value.sel(run="stressed", figure=figure)
                                            - cmp.value.sel(run="base", figure=figure)), rel=1e-9)


def test_runs_of_different_books_compare_unpaired_with_a_note(three_runs):
    base, _, other = three_runs
    cmp = compare_runs([base, other], ["shijiazhuang", "baoding"])
    assert not bool(cmp.paired.sel(run="baoding"))
    assert "unpaired standard errors: different books" in cmp.attrs["notes"]
    se = cmp.difference_se.sel(run="baoding")
    expected = np.hypot(cmp.value_se.sel(run="shijiazhuang"), cmp.value_se.sel(run="baoding"))
    np.testing.assert_allclose(se.values, expected.values, rtol=1e-12)


def test_the_command_line_compares_two_run_folders(tmp_path):
    for name, extra in (("base", []), ("stressed", ["--set", "default.stress=[1.5,2,1.5]"])):
        result = invoke("run", "scenarios/shijiazhuang_score_loan.toml", "--paths", "1500", "--quiet",
                        "--out", str(tmp_path / name), *extra)
        assert result.exit_code == 0, result.output
    result = invoke("compare", str(tmp_path / "base"), str(tmp_path / "stressed"),
                    "--out", str(tmp_path / "c"))
    assert result.exit_code == 0, result.output
    assert "stressed - base (paired)" in result.output
    table = pd.read_csv(tmp_path / "c" / "compare.csv")
    assert set(table.run) == {"base", "stressed"} and table.paired[table.run == "stressed"].all()
    assert (tmp_path / "c" / "report.html").read_text(encoding="utf-8").count("<img") == 1


def test_run_contributions_and_capital_write_their_csv(tmp_path):
    result = invoke("run", BANK_BOOK, "--paths", "1500", "--contributions", "sector,product", "--out",
                    str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert "Who carries the tail, by sector" in result.output
    table = pd.read_csv(tmp_path / "run" / "contributions.csv")
    assert set(table.grouping) == {"sector", "product"} and set(table.loss_of) == {"gross", *PARTIES}
    gross = table[(table.grouping == "sector") & (table.loss_of == "gross")]
    shares = gross.groupby("quantile").es_share.sum()
    np.testing.assert_allclose(shares.values, 1.0, rtol=1e-8)  # 10 significant digits in the CSV
    result = invoke("capital", BANK_BOOK, "--paths", "1500", "--out", str(tmp_path / "capital"))
    assert result.exit_code == 0, result.output
    assert "relief" in result.output and "RAROC" in result.output
    capital = pd.read_csv(tmp_path / "capital" / "capital.csv")
    assert {"segment", "product", "total"} <= set(capital.grouping)


@pytest.mark.parametrize("args, needle", [
    (["run", BANK_BOOK, "--contributions", "sector,branch"], "branch: not a grouping; allowed: segment"),
    (["run", BANK_BOOK, "--contributions", "sector", "--engine", "des"],
     "--contributions is the mc engine's"),
    (["compare", "results/nowhere"], "compare needs two results folders or more"),
])
def test_bad_bank_view_requests_exit_2(args, needle, capsys):
    code, text = _main(args, capsys)
    assert code == 2 and needle in text and "Traceback" not in text


def test_a_negative_turnover_names_its_file_column_and_line(tmp_path, capsys):
    book = pd.read_csv("scenarios/data/bank_book.csv")
    book.loc[6, "turnover"] = -5e6
    csv_path = tmp_path / "book.csv"
    book.to_csv(csv_path, index=False)
    code, text = _main(["validate", BANK_BOOK, "--set", f"portfolio.path={str(csv_path)!r}"], capsys)
    assert code == 2 and "turnover" in text and "line 8" in text and str(csv_path) in text
    assert "must be blank or a yuan turnover >= 0" in text


def test_the_leverage_chain_and_the_fiscal_cost_per_yuan_by_hand():
    sc = sim.load_scenario(FOUR_THREE_TWO_ONE, ["contract.guarantor.leverage=1e6"])
    ds = sim.run(sc, n_paths=500, seed=2)
    assert float(ds.public_money) == 150e6  # the guarantor's capital; the 4321 scheme has no pool
    book = float(ds.attrs["portfolio_amount"])
    assert float(ds.cover_written) == pytest.approx(0.8 * book, rel=1e-12)  # all but the bank's 20 %
    ratio = float(ds.fiscal_cost_mean) / float(ds.credit_supplied_mean)
    assert float(ds.fiscal_cost_per_credit) == pytest.approx(ratio, rel=1e-12)
    tight = sim.run(sim.load_scenario(FOUR_THREE_TWO_ONE, ["contract.guarantor.leverage=2"]),
                    n_paths=500, seed=2)
    assert float(tight.cover_written) < float(ds.cover_written)  # past the leverage limit: the bank's
