"""The page's words in English or Chinese and its money in 万元 / 亿元. The domain's terms come from
the report's table (sim.report.language); only the page's own words are added here."""

from __future__ import annotations

import re
from collections.abc import Callable

from sim.report.language import words
from sim.risk.estimators import Estimate

WAN, YI = 1e4, 1e8

PAGE_ZH = {
    "riskpool — scheme designer": "riskpool — 风险分担方案设计", "scenario": "情景",
    "language": "语言", "pool size": "资金池规模", "guarantor capital": "担保公司资本金",
    "guarantor leverage": "担保放大倍数", "stop at default rate": "暂停阈值：违约率",
    "stop at compensation rate": "暂停阈值：代偿率", "systematic correlation": "系统性相关系数",
    "sector correlation": "行业相关系数", "annual PD, startup": "年违约概率：初创期",
    "annual PD, growth": "年违约概率：成长期", "annual PD, mature": "年违约概率：成熟期",
    "interest subsidy share": "贷款贴息比例", "paths": "模拟路径数", "fraction": "比例",
    "probability": "概率", "× hazard": "× 违约强度", "×": "倍", "empty: unlimited": "留空：不设上限",
    "empty: off": "留空：不设", "empty: 1": "留空：1", "pool share": "资金池分担比例",
    "guarantor share": "担保公司分担比例", "insurer share": "保险公司分担比例",
    "appraiser share": "评估机构分担比例", "reguarantor share": "再担保机构分担比例",
    "government share": "政府分担比例", "the bank keeps": "银行自留", "computing…": "计算中…",
    "up to date": "已更新", "Scheme": "方案", "Default model": "违约模型", "Sharing of losses": "损失分担",
    "Simulation": "模拟", "P(pool runs dry)": "资金池耗尽概率", "Pool balance": "资金池余额",
    "Loss exceedance": "损失超越概率", "Pool sizing": "资金池规模测算", "month": "月",
    "pool balance (万元)": "资金池余额（万元）", "loss (万元)": "损失（万元）",
    "probability of a larger loss": "损失更大的概率", "initial pool (万元)": "初始资金池（万元）",
    "mean": "均值", "Export": "导出", "scenario TOML": "情景 TOML", "results CSV": "结果 CSV",
    "Baseline": "基准", "pin as baseline": "设为基准", "baseline": "基准", "current": "当前",
    "difference": "差异", "figure": "指标", "Upload": "上传", "scenario file (TOML)": "情景文件（TOML）",
    "portfolio file (CSV)": "贷款组合文件（CSV）", "stress, year": "压力倍数，第",
    "no baseline pinned yet": "尚未设定基准", "fix the marked values": "请修正标出的数值",
    "ran in": "用时", "seed": "随机种子", "range": "范围",
}


# What `sim.results.compare` compares, by its figure keys: `<subject>_<measure>` or a probability.
SUBJECTS_ZH = {"gross_loss": "总损失", "fiscal_cost": "财政成本", "credit_supplied": "信贷投放"}
PROBABILITIES_ZH = {"pool_exhaustion_prob": "资金池耗尽概率", "stop_rule_prob": "触发暂停新增贷款概率"}


# The schema's messages about a value, in Chinese (in this order: the longer phrase first); any other
# message is shown as the schema words it.
MESSAGES_ZH = (
    (r"Input should be greater than or equal to (\S+)", r"应大于或等于 \1"),
    (r"Input should be greater than (\S+)", r"应大于 \1"),
    (r"Input should be less than or equal to (\S+)", r"应小于或等于 \1"),
    (r"Input should be less than (\S+)", r"应小于 \1"),
    (r"Input should be a valid number[^(]*", "应为数字"),
    (r"shares must sum to 1", "分担比例之和应为 1"),
    (r" ?\(got (.+)\)$", r"（输入值 \1）"),
)


def message(text: str, lang: str) -> str:
    """A validation message about a value in `lang` (the schema's own English in "en")."""
    if lang == "en":
        return text
    for pattern, replacement in MESSAGES_ZH:
        text = re.sub(pattern, replacement, text)
    return text


def figure_label(key: str, english: str, quantile: float, lang: str) -> str:
    """A compared figure's label in `lang`: in English compare's own (`english`), in Chinese its
    subject then its measure in the domain's terms (`bank_loss_es` -> 银行损失 预期短缺 ES 99.0%)."""
    if lang == "en":
        return english
    if key in PROBABILITIES_ZH:
        return PROBABILITIES_ZH[key]
    w = translator(lang)
    subject, measure = key.rsplit("_", 1)
    whose = SUBJECTS_ZH.get(subject) or f"{w(subject.removesuffix('_loss'))}损失"
    level = {"mean": w("mean"), "var": f"{w('VaR')} {quantile:.1%}", "es": f"{w('ES')} {quantile:.1%}"}
    return f"{whose} {level[measure]}"


def translator(lang: str) -> Callable[[str], str]:
    """English text in, the page's text in `lang` ("en" or "zh") out."""
    report = words(lang)
    if lang == "en":
        return report
    return lambda text: PAGE_ZH.get(text, report(text))


def money(yuan: float) -> str:
    """An amount in 亿元 from 1 亿 up, else in 万元."""
    if abs(yuan) >= YI:
        return f"{yuan / YI:,.3f} 亿元"
    return f"{yuan / WAN:,.1f} 万元"


def money_se(estimate: Estimate) -> str:
    """`value ± se` in the value's unit (亿元 from 1 亿 up, else 万元)."""
    value, se = estimate
    if abs(value) >= YI:
        return f"{value / YI:,.3f} ± {se / YI:,.3f} 亿元"
    return f"{value / WAN:,.1f} ± {se / WAN:,.1f} 万元"

