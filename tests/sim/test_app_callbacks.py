"""The page's callbacks without a browser: controls from the schema, validation as on the command
line, results equal to `sim.run` of the same setting and seed, a newer run superseding an older
one, the exported scenario repeating the run, uploads checked, the language toggle."""

from __future__ import annotations

import asyncio
import re
import threading
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

import sim
from models.scenario import DefaultModel, Pool, Simulation, load_scenario
from sim.app.controls import schema_bounds, scheme_controls, share_controls
from sim.app.jobs import LatestRunner
from sim.app.labels import message, money
from sim.app.page import Page
from sim.app.server import scenario_menu
from sim.cli.main import cli
from sim.report.tables import probability

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "scenarios" / "shijiazhuang_score_loan.toml"
PATHS = 2000


@pytest.fixture
def page(tmp_path: Path) -> Page:
    """A page on the default scenario whose runs are started by the test (`recompute`)."""
    return Page(scenario_menu(DEFAULT), PATHS, tmp_path / "uploads", schedule=lambda callback: None)


def recompute(page: Page) -> bool:
    return asyncio.run(page.recompute())


def dry(ds) -> str:
    return probability(ds, "pool_exhaustion_prob", 3)


def test_ranges_come_from_the_schema():
    bounds = {c.dotted: c.bounds for c in scheme_controls()}
    assert bounds["contract.pool.size"].low == Pool.model_fields["size"].metadata[0].ge == 0
    rho = bounds["default.rho_systematic"]
    assert (rho.low, rho.high, rho.open_high) == (0, 1, True)
    assert DefaultModel.model_fields["rho_systematic"].metadata[1].lt == 1
    assert schema_bounds(["default", "stress", "0"]).high == 100  # a list item's own constraint
    assert schema_bounds(["n_paths"], Simulation).high == 100_000_000
    assert [c.key[-1] for c in share_controls("score_loan")] == ["pool", "guarantor", "insurer", "appraiser",
                                                                  "reguarantor", "government"]


def test_the_page_shows_what_sim_run_gives(page: Page):
    assert recompute(page)
    field = page.form.field("contract.pool.size")
    assert field.widget.value == 4000.0  # 40 M yuan in 万元
    field.widget.value = 1000.0
    assert recompute(page)
    sc = load_scenario(DEFAULT, ["contract.pool.size=1e7"])
    ds = sim.run(sc, n_paths=PATHS, seed=sc.simulation.seed)
    assert page.ds.riskpool.headline() == ds.riskpool.headline()
    assert page.headline.object.iloc[0, 1] == dry(ds)
    assert page.parties.object.iloc[-1, 1].endswith("万元")


def test_an_invalid_value_is_marked_and_the_page_keeps_working(page: Page):
    assert recompute(page)
    shown = page.ds
    field = page.form.field("contract.pool.size")
    field.widget.value = -5.0
    assert not recompute(page)
    assert field.message.visible and "contract.pool.size" in field.message.object
    assert "greater than or equal to 0" in field.message.object
    assert page.ds is shown  # the last valid results stay
    field.widget.value = 3000.0
    assert recompute(page) and not field.message.visible


def test_an_invalid_value_is_explained_in_the_pages_language(page: Page):
    page.set_language("zh")
    field = page.form.field("contract.pool.size")
    field.widget.value = -5.0
    assert not recompute(page)
    shown = field.message.object
    assert "contract.pool.size: 应大于或等于 0（输入值 -50000.0）" in shown, shown
    field.widget.value = 3000.0
    assert recompute(page) and not field.message.visible
    page.set_language("en")


@pytest.mark.parametrize("english, chinese", [
    ("Input should be less than or equal to 1 (got 1.5)", "应小于或等于 1（输入值 1.5）"),
    ("Input should be greater than 0 (got 0.0)", "应大于 0（输入值 0.0）"),
    ("Input should be a valid number, unable to parse string as a number (got 'x')",
     "应为数字（输入值 'x'）"),
    ("pd_floor must be < pd_cap", "pd_floor must be < pd_cap"),  # a message it has no words for: as is
])
def test_the_schemas_messages_in_chinese(english, chinese):
    assert message(english, "zh") == chinese and message(english, "en") == english


def test_shares_keep_summing_to_one(page: Page):
    pool_share = page.form.shares["score_loan"][0]
    pool_share.widget.value = 0.3
    assert page.form.bank_keeps("score_loan") == pytest.approx(0.1)
    assert recompute(page)
    shares = page.shown_setting.scenario().contract.shares["score_loan"]
    assert (shares.bank, shares.pool, shares.guarantor) == (0.1, 0.3, 0.6)
    pool_share.widget.value = 0.5  # the others now pass 1: the bank's rest would be negative
    assert not recompute(page)
    assert "bank" in page.form.share_messages["score_loan"].object


def test_a_newer_run_supersedes_an_older_one():
    runner = LatestRunner()
    started, release = threading.Event(), threading.Event()

    def slow(progress):
        started.set()
        release.wait(10)
        progress(1)  # the engine's call after a block: raises once superseded
        return "old"

    async def both():
        old = asyncio.ensure_future(runner.submit(slow))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        new = asyncio.ensure_future(runner.submit(lambda progress: "new"))
        release.set()
        return await old, await new

    assert asyncio.run(both()) == ((False, None), (True, "new"))


def test_the_exported_scenario_repeats_the_run(page: Page, tmp_path: Path):
    page.form.field("default.rho_systematic").widget.value = 0.2
    page.form.stress[1].widget.value = 2.0
    assert recompute(page)
    exported = tmp_path / "exported.toml"
    exported.write_text(page.export_toml().getvalue(), encoding="utf-8")
    assert tomllib.loads(exported.read_text())["simulation"]["n_paths"] == PATHS
    sc = load_scenario(exported)
    assert list(sc.default.stress) == [1.0, 2.0]
    assert sim.run(sc).riskpool.headline() == page.ds.riskpool.headline()
    assert page.export_csv().getvalue().splitlines()[0] == "figure,value,standard_error,unit"


def test_pinned_baseline_is_compared_path_by_path(page: Page):
    assert recompute(page)
    page.pin_baseline()
    page.form.field("contract.pool.size").widget.value = 2000.0
    assert recompute(page)
    frame = page.comparison.object
    row = frame[frame.iloc[:, 0] == "P(pool runs dry)"].iloc[0]
    assert row.iloc[1] != row.iloc[2] and not row.iloc[3].startswith("0.000%")


def test_the_comparison_speaks_the_pages_language(page: Page):
    assert recompute(page)
    page.pin_baseline()
    page.form.field("contract.pool.size").widget.value = 2000.0
    assert recompute(page)
    english = list(page.comparison.object.iloc[:, 0])
    page.set_language("zh")
    frame = page.comparison.object
    labels = list(frame.iloc[:, 0])
    assert list(frame.columns) == ["指标", "基准", "当前", "差异"] and len(labels) == len(english)
    assert {"资金池耗尽概率", "总损失 预期短缺 ES 99.0%", "银行损失 预期短缺 ES 99.0%",
            "政府性融资担保公司损失 均值"} <= set(labels)
    assert not [text for text in labels if re.search(r"[a-z]{2,}", text.replace("VaR", ""))], labels
    page.set_language("en")
    assert list(page.comparison.object.iloc[:, 0]) == english


def test_uploads_are_checked_as_on_the_command_line(page: Page):
    page.upload_toml("bad.toml", b"name = 1\n")
    assert page.message.visible and "bad" in page.message.object
    page.upload_csv("book.csv", b"firm,amount\n1,2\n")
    assert page.message.visible and page.portfolio is None
    ip_book = (ROOT / "scenarios" / "data" / "ip_pledge_26.csv").read_bytes()
    page.upload_csv("ip book.csv", ip_book)  # its product is not one of the scenario's
    assert page.message.visible and "ip_pledge" in page.message.object and page.portfolio is None
    book = ip_book.replace(b"ip_pledge", b"score_loan")
    page.upload_csv("score book.csv", book)
    assert page.portfolio is not None and Path(page.portfolio["path"]).read_bytes() == book
    assert recompute(page)
    assert page.ds.attrs["n_loans"] == 26
    assert page.shown_setting.scenario().portfolio.path == page.portfolio["path"]


def test_language_toggle_relabels(page: Page):
    assert recompute(page)
    page.set_language("zh")
    assert page.form.field("contract.pool.size").widget.label.startswith("资金池规模")
    assert page.parties.object.columns[0] == "承担方"
    page.set_language("en")
    assert page.form.field("contract.pool.size").widget.label.startswith("pool size")


def test_money_in_wan_and_yi():
    assert money(4e7) == "4,000.0 万元"
    assert money(8e8) == "8.000 亿元"
    assert money(-2.5e4) == "-2.5 万元"


def test_app_command_checks_its_options():
    runner = CliRunner()
    for args in (["app", "--port", "0"], ["app", "--paths", "0"], ["app", "missing.toml"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, args
