"""The Chinese table and report: the domain's terms, the same structure as the English report, and
`report --lang` switching an existing folder."""

from __future__ import annotations

import re

from tests.sim.test_cli import SCENARIO, invoke
from tests.sim.test_cli_failures import _main


def _structure(page: str) -> tuple[int, int, int]:
    return page.count("<table"), page.count("<img"), len(re.findall(r"<h2>", page))


def test_the_chinese_table_and_report_use_the_domains_terms(tmp_path):
    english = invoke("run", SCENARIO, "--paths", "1500", "--out", str(tmp_path / "en"), "--progress", "off")
    chinese = invoke("run", SCENARIO, "--paths", "1500", "--out", str(tmp_path / "zh"), "--progress", "off",
                     "--lang", "zh")
    assert english.exit_code == 0 and chinese.exit_code == 0, chinese.output
    for term in ("风险补偿资金池", "政府性融资担保公司", "银行", "合计", "预期损失", "资金池耗尽概率",
                 "万元", "亿元", "其中贷款贴息", "投入公共资金"):
        assert term in chinese.output, term
    assert "pool exhaustion probability" not in chinese.output
    en = (tmp_path / "en" / "report.html").read_text(encoding="utf-8")
    zh = (tmp_path / "zh" / "report.html").read_text(encoding="utf-8")
    assert "<html lang='zh'>" in zh and "<html lang='en'>" in en
    assert _structure(zh) == _structure(en)
    for term in ("各承担方的损失", "损失分布", "资金池余额变化", "风险补偿资金池", "金额单位：万元"):
        assert term in zh, term
    # the same numbers whatever the language
    assert re.findall(r"[\d,]+\.\d ± [\d,]+\.\d", en) == re.findall(r"[\d,]+\.\d ± [\d,]+\.\d", zh)


def test_report_lang_rewrites_a_folder_in_the_other_language(tmp_path):
    assert invoke("run", SCENARIO, "--paths", "800", "--out", str(tmp_path / "r"), "--quiet").exit_code == 0
    assert invoke("report", str(tmp_path / "r"), "--lang", "zh").exit_code == 0
    assert "各承担方的损失" in (tmp_path / "r" / "report.html").read_text(encoding="utf-8")


def test_an_unknown_language_exits_2(tmp_path, capsys):
    code, text = _main(["run", SCENARIO, "--lang", "fr", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "'fr' is not one of 'en', 'zh'" in text
