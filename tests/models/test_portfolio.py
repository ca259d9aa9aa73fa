"""Synthetic generator calibrated to the scenario, and a bank's own CSV/Parquet book."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim
from models.portfolio import PortfolioError, generate_portfolio, load_portfolio
from models.scenario import SyntheticPortfolio, load_scenario


def test_generator_matches_stage_counts_and_ranges():
    spec = SyntheticPortfolio(n_firms=2000, amount_min=1e6, amount_max=5e6, term_months=[12, 24],
                              start_month_max=23, seed=3)
    pf = generate_portfolio(spec, ["score_loan"])
    assert len(pf) == 2000
    np.testing.assert_array_equal(np.bincount(pf.stage), [561, 830, 609])  # seed 001 stage mix
    assert pf.amount.min() >= 1e6 and pf.amount.max() <= 5e6
    assert set(np.unique(pf.term_months)) == {12, 24}
    assert pf.start_month.min() >= 0 and pf.start_month.max() <= 23
    assert ((pf.score >= 0) & (pf.score <= 1000)).all()
    means = [pf.score[pf.stage == k].mean() for k in range(3)]
    assert means[0] < means[1] < means[2]


def test_whitelist_and_credit_line_are_respected():
    spec = SyntheticPortfolio(n_firms=2000, whitelist_min_score=500, credit_line=800e6, seed=1)
    pf = generate_portfolio(spec, ["score_loan"])
    assert pf.score.min() >= 500
    assert pf.total_amount <= 800e6
    assert pf.total_amount > 800e6 - spec.amount_max  # the line is used up to the last loan that fits


def test_generator_is_deterministic_for_a_seed():
    spec = SyntheticPortfolio(n_firms=300, seed=9)
    a, b = generate_portfolio(spec, ["score_loan"]), generate_portfolio(spec, ["score_loan"])
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())


def test_a_banks_own_portfolio_with_its_own_pds_loads_and_runs(tmp_path):
    book = pd.DataFrame({
        "loan_id": ["A1", "A2", "A3", "A4"], "firm_id": ["f1", "f2", "f3", "f3"],
        "score": [720, 610, 480, 480], "stage": ["mature", "growth", "startup", "startup"],
        "sector": ["software", "software", "biotech", "biotech"],
        "amount": [3e6, 1.5e6, 5e5, 5e5], "term_months": [12, 24, 12, 12], "start_month": [0, 0, 3, 6],
        "product": ["score_loan"] * 4, "pd_annual": [0.5, "", 0.5, 0.5], "rate": [0.05, "", "", ""],
        "recovery": ["", "", 0.1, ""],
    })
    path = tmp_path / "book.csv"
    book.to_csv(path, index=False)
    base = load_scenario("scenarios/shijiazhuang_score_loan.toml")
    pf = load_portfolio(path, base.product_names)
    assert np.isnan(pf.pd_annual[1]) and pf.pd_annual[0] == 0.5
    ds = sim.run(base, n_paths=2000, portfolio=pf)
    # three of four loans carry a 50 % annual PD: the book's default rate is far above the model's
    assert float(ds.default_rate_mean) > 0.3
    assert ds.attrs["n_loans"] == 4


def test_parquet_round_trip(tmp_path):
    spec = SyntheticPortfolio(n_firms=50, seed=4)
    pf = generate_portfolio(spec, ["score_loan"])
    path = tmp_path / "book.parquet"
    pf.to_frame().to_parquet(path)
    back = load_portfolio(path, ["score_loan"])
    np.testing.assert_array_equal(back.amount, pf.amount)
    np.testing.assert_array_equal(back.stage, pf.stage)


def test_bad_rows_are_named_by_line_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("loan_id,firm_id,score,stage,sector,amount,term_months,start_month,product\n"
                    "A,f,500,growth,s,1e6,12,0,score_loan\n"
                    "B,f,1200,growth,s,-5,12,0,score_loan\n")
    with pytest.raises(PortfolioError) as err:
        load_portfolio(path, ["score_loan"])
    msg = str(err.value)
    assert "bad.csv" in msg and "'score'" in msg and "line 3" in msg and "'amount'" in msg


def test_generator_rejects_products_the_scenario_lacks():
    with pytest.raises(ValueError, match="not among the scenario's products"):
        generate_portfolio(SyntheticPortfolio(n_firms=10), ["ip_pledge"])


def test_columns_of_a_banks_own_are_refused_or_ignored(tmp_path):
    book = pd.DataFrame({
        "loan_id": ["A1", "A2"], "firm_id": ["f1", "f2"], "score": [720, 610], "stage": ["mature", "growth"],
        "sector": ["software", "software"], "amount": [3e6, 1.5e6], "term_months": [12, 24],
        "start_month": [0, 0], "product": ["score_loan"] * 2, "branch": ["Qiaoxi", "Yuhua"],
    })
    path = tmp_path / "book.csv"
    book.to_csv(path, index=False)
    products = load_scenario("scenarios/shijiazhuang_score_loan.toml").product_names
    with pytest.raises(PortfolioError, match=r"unknown columns \['branch'\].*extra_columns"):
        load_portfolio(path, products)
    kept = load_portfolio(path, products, extra_columns="ignore")
    book.drop(columns="branch").to_csv(tmp_path / "plain.csv", index=False)
    plain = load_portfolio(tmp_path / "plain.csv", products)
    np.testing.assert_array_equal(kept.amount, plain.amount)
    assert list(kept.loan_id) == list(plain.loan_id)
    # the scenario key reaches the loader
    scenario = tmp_path / "s.toml"
    text = open("scenarios/shijiazhuang_score_loan.toml", encoding="utf-8").read()
    start, end = text.index("[portfolio.synthetic]"), text.index("[default]")
    table = f'[portfolio]\npath = "{path}"\nextra_columns = "ignore"\n\n'
    scenario.write_text(text[:start] + table + text[end:], encoding="utf-8")
    assert sim.run(load_scenario(scenario), n_paths=100).attrs["n_loans"] == 2
