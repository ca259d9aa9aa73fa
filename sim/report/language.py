"""The words of the run's table and report in English (the default) or
Chinese, with the domain's own terms (风险补偿资金池, 代偿, 贴息, ...)."""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("en", "zh")

ZH = {
    # parties
    "bank": "银行", "pool": "风险补偿资金池", "guarantor": "政府性融资担保公司", "insurer": "保险公司",
    "appraiser": "评估机构", "reguarantor": "再担保机构", "government": "政府", "total": "合计",
    # the per-party table
    "party": "承担方", "E[loss]": "预期损失", "expected loss": "预期损失", "share": "占比",
    "VaR": "在险价值 VaR", "ES": "预期短缺 ES",
    # the figures under it
    "pool exhaustion probability": "资金池耗尽概率", "stop rule triggered": "触发暂停新增贷款",
    "credit forgone": "因此少发放信贷", "default rate (loans)": "违约率（按笔数）",
    "recovered (share of EAD)": "回收率（占违约敞口）", "credit supplied": "信贷投放",
    "fiscal cost": "财政成本", "of which interest subsidy": "其中贷款贴息", "bank net income": "银行净收入",
    "interest subsidy": "贷款贴息", "guarantee compensation": "担保代偿补偿", "bank rewards": "银行奖励",
    "default rate (share of loans)": "违约率（按笔数）", "yuan": "元",
    "public money committed": "投入公共资金", "-> cover written": "-> 名义担保与补偿责任",
    "-> credit supplied": "-> 信贷投放", "fiscal cost per 100 yuan": "每百元贷款财政成本",
    "(pool and finite guarantor capital)": "（资金池与担保公司资本金）", "(notional)": "（名义）",
    # headings and notes of the report
    "riskpool report": "riskpool 报告", "Headline per party": "各承担方的损失",
    "Loss distributions": "损失分布", "Pool balance over time": "资金池余额变化",
    "Pool sizing": "资金池规模测算",
    "Who carries the tail (risk contributions)": "尾部风险由谁承担（风险贡献）",
    "Inputs (the resolved scenario, as run)": "输入（实际运行的情景）",
    "plain Monte Carlo": "普通蒙特卡洛", "importance sampling for": "重要性抽样，针对",
    "effective paths": "条有效路径", "paths": "条路径", "seed": "随机种子", "loans": "笔贷款",
    "lent": "放贷", "money in 万元 (10 000 yuan), ± 1 standard error": "金额单位：万元，± 1 个标准误",
    "Money in 万元 (10 000 yuan), ± 1 s.e.": "金额单位：万元，± 1 个标准误。",
    "pool_sizing_text": "若资金池以各规模起步，其耗尽的概率（同一批路径，按每条路径所需的资金池规模）。",
}
EN = {"pool_sizing_text": "The probability that the pool runs dry had it started at each size, from the same "
                          "paths (each path's required pool)."}


def words(lang: str) -> Callable[[str], str]:
    """The translator of `lang` ("en" or "zh"): English text in, the language's text out."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; allowed: {', '.join(LANGUAGES)}")
    table = ZH if lang == "zh" else EN
    return lambda text: table.get(text, text)
