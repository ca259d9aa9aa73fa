"""The allocation verified by the engine: written as a runnable scenario (a
book of the allocated credit, the chosen sharing as contract shares, the
pool and the guarantor's capital) and simulated in full -- finite pool,
lags, recoveries, caps, top-ups, stop rules -- on a fresh seed.

The book: each segment's loans of the source portfolio, in portfolio order,
taken again and again (copy c of a loan is a new loan of a new firm, ids
suffixed ``~c``) until their principal reaches the allocated credit, the
last one cut to the remainder (in whole yuan). With one option per group, a group's
loans carry the product ``<product>@<option>`` (the source product's terms,
that option's shares) unless the whole scheme shares one option, when the
products keep their names.

Each limit gets a verdict at one-sided 95 %: *holds* when estimate +
1.645 SE <= limit, *violated* when estimate - 1.645 SE > limit, else
*within noise* (`sim.risk.estimators.verdict`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.portfolio import Portfolio, portfolio_from_frame, write_portfolio_csv
from models.scenario import PortfolioSpec, Scenario, Shares, scenario_from_mapping, to_toml
from sim.engine.plan import APPRAISER, BANK, GOVERNMENT, GUARANTOR, INSURER, POOL, REGUARANTOR, compile_plan
from sim.engine.run import RunSpec
from sim.optimizer.model import CAPPED_PAYERS, AllocationResult
from sim.risk import estimators
from sim.scale.runs import simulate_runs

PLAN_SCENARIO = "plan_scenario.toml"
PLAN_PORTFOLIO = "plan_portfolio.csv"
PARTY_INDEX = {"reguarantor": REGUARANTOR, "insurer": INSURER, "appraiser": APPRAISER}


@dataclass(frozen=True)
class Check:
    """One limit of the allocation measured by the engine (units as `units`)."""

    name: str
    description: str
    estimate: float
    se: float
    limit: float
    verdict: str
    units: str


@dataclass(frozen=True)
class Verification:
    """The engine's verdicts on an allocation, and the credit it actually supplied (yuan)."""

    checks: tuple[Check, ...]
    n_paths: int
    seed: int
    planned_credit: float
    credit: estimators.Estimate

    @property
    def holds(self) -> bool:
        return all(c.verdict == "holds" for c in self.checks)

    def failing(self) -> list[Check]:
        return [c for c in self.checks if c.verdict != "holds"]


@dataclass(frozen=True)
class PlanScenario:
    """The allocation as a scenario and its book."""

    scenario: Scenario
    portfolio: Portfolio

    def write(self, folder: Path) -> None:
        """plan_scenario.toml and plan_portfolio.csv into `folder`: `riskpool run` runs them as they are."""
        write_portfolio_csv(self.portfolio, folder / PLAN_PORTFOLIO)
        relative = self.scenario.model_copy(update={"portfolio": PortfolioSpec(path=PLAN_PORTFOLIO)})
        (folder / PLAN_SCENARIO).write_text(to_toml(relative), encoding="utf-8")


def _replicate(amounts: np.ndarray, credit: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Loans (indices into `amounts`), their copy numbers and principals summing to `credit`."""
    if credit <= 0.5 or amounts.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    full, rest = divmod(credit, amounts.sum())
    cum = np.cumsum(amounts)
    partial = int(np.searchsorted(cum, rest, side="left")) if rest > 0.5 else 0
    index = np.concatenate([np.tile(np.arange(amounts.size), int(full)), np.arange(partial + (rest > 0.5))])
    copy = np.concatenate([np.repeat(np.arange(int(full)), amounts.size),
                           np.full(partial + (rest > 0.5), int(full))]).astype(np.int64)
    principal = amounts[index].astype(float)
    if rest > 0.5:  # whole yuan, so that the plan's CSV holds it exactly
        principal[-1] = round(rest - (cum[partial - 1] if partial > 0 else 0.0))
    return index.astype(np.int64), copy, principal


def plan_book(portfolio: Portfolio, segment: np.ndarray, credit_by_option: np.ndarray,
              product_of_option) -> Portfolio:
    """The book of the allocation: for each segment s and option k, loans of segment s taken in
    portfolio order up to credit_by_option[s, k] yuan; `product_of_option(product, k)` names
    their product. Copies are new loans of new firms."""
    names: list[str] = []
    parts = []
    for s, k in zip(*np.nonzero(credit_by_option > 0.5)):
        rows = np.flatnonzero(segment == s)
        index, copy, principal = _replicate(portfolio.amount[rows], float(credit_by_option[s, k]))
        rows = rows[index]
        product = []
        for p in portfolio.product[rows]:
            name = product_of_option(portfolio.product_names[p], int(k))
            if name not in names:
                names.append(name)
            product.append(names.index(name))
        suffix = np.char.add("~", copy.astype(str))
        parts.append(dict(
            loan_id=np.char.add(portfolio.loan_id[rows].astype(str), suffix).astype(object),
            firm_id=np.char.add(portfolio.firm_id[rows].astype(str), suffix).astype(object),
            score=portfolio.score[rows], stage=portfolio.stage[rows], sector=portfolio.sector[rows],
            amount=principal, term_months=portfolio.term_months[rows],
            start_month=portfolio.start_month[rows], product=np.asarray(product, np.int32),
            pd_annual=portfolio.pd_annual[rows], rate=portfolio.rate[rows],
            recovery=portfolio.recovery[rows], turnover=portfolio.turnover[rows]))
    if not parts:
        raise ValueError("the allocation lends nothing: there is no book to verify")
    columns = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    book = Portfolio(**columns, sector_names=portfolio.sector_names, product_names=tuple(names))
    # through the CSV reader's own coding (sectors in order of first appearance), so that the book
    # verified here and the one `riskpool run plan_scenario.toml` reads are the same, draw for draw
    return portfolio_from_frame(book.to_frame(), names, source="<plan book>")


def plan_scenario(scenario: Scenario, portfolio: Portfolio, segment: np.ndarray, result: AllocationResult,
                  options: dict[str, Shares], group_of: np.ndarray, guarantor_capital: float) -> PlanScenario:
    """The allocation as a runnable scenario: its book, the chosen shares, pool P and capital C0 + dC."""
    chosen = [result.options.index(result.chosen[g]) for g in result.groups]
    by_group = len(set(chosen)) > 1
    option_names = result.options

    def product_of_option(product: str, k: int) -> str:
        return f"{product}@{option_names[k]}" if by_group else product

    book = plan_book(portfolio, segment, result.credit_by_option, product_of_option)
    raw = scenario.model_dump(mode="python")
    raw["name"] = f"{scenario.name}-plan"
    raw["description"] = (f"The allocation of riskpool optimize on {scenario.name} (budget "
                          f"{result.pool_size + result.capital_injection + result.reserve:.6g} yuan used)")
    raw["portfolio"] = {"path": "<in memory>"}
    products, shares = {}, {}
    for name in book.product_names:
        source, _, option = name.partition("@")
        products[name] = raw["products"][source]
        option = option or result.chosen_option
        shares[name] = options[option].model_dump()
    raw["products"], raw["contract"]["shares"] = products, shares
    raw["contract"]["pool"]["size"] = float(result.pool_size)
    raw["contract"]["guarantor"]["capital"] = float(guarantor_capital + result.capital_injection)
    raw["sweep"] = None
    raw["optimize"]["options"] = {}
    sc = scenario_from_mapping({k: v for k, v in raw.items() if v is not None},
                               source=f"{scenario.source} [plan]")
    return PlanScenario(sc, book)


def public_costs_by_path(out) -> np.ndarray:
    """Pay-as-you-go public costs of each path, yuan: the government's share, interest subsidies,
    guarantee compensation and bank rewards."""
    return out.party_loss[:, GOVERNMENT] + out.subsidy + out.compensation + out.reward


def verify(plan: PlanScenario, result: AllocationResult, alpha: float, *, n_paths: int, seed: int,
           loss_budget: float = math.inf, scheduler=None) -> Verification:
    """Run the plan's scenario through the full engine and give each limit its verdict."""
    spec = RunSpec.resolve(plan.scenario, n_paths=n_paths, seed=seed, portfolio=plan.portfolio,
                           importance=False)
    [out] = simulate_runs([spec], scheduler=scheduler)
    compiled = compile_plan(plan.scenario, plan.portfolio)
    tail_mass = 1.0 - alpha
    checks: list[Check] = []

    def probability(name: str, description: str, flags: np.ndarray) -> None:
        est = estimators.probability(flags)
        checks.append(Check(name, description, est.value, est.se, tail_mass,
                            estimators.probability_verdict(flags, tail_mass), "probability"))

    if result.pool_size > 0 or out.party_loss[:, POOL].any():
        probability("pool_dry", "P(pool runs dry)", out.exhausted)
    if out.party_loss[:, GUARANTOR].any():
        probability("guarantor_dry", "P(guarantor capital runs out)", out.short[:, GUARANTOR])
    for payer in CAPPED_PAYERS:
        j = PARTY_INDEX[payer]
        if out.party_loss[:, j].any() and math.isfinite(compiled.cap_total[j]):
            probability(f"{payer}_cap", f"P({payer} reaches its cap)", out.short[:, j])
    public = public_costs_by_path(out)
    cvar = estimators.cvar(public, alpha)
    checks.append(Check("public_costs_cvar", f"CVaR {alpha:g} of pay-as-you-go public costs vs reserve",
                        cvar.value, cvar.se, result.reserve, estimators.verdict(cvar, result.reserve),
                        "yuan"))
    bank = estimators.Estimate(*map(float, estimators.mean(out.party_loss[:, BANK])))
    margin = float(compiled.margin_full.sum())
    checks.append(Check("bank_loss", "bank's expected retained loss vs its margin", bank.value, bank.se,
                        margin, estimators.verdict(bank, margin), "yuan"))
    public_loss = (out.party_loss[:, POOL] + out.party_loss[:, GUARANTOR] + out.party_loss[:, REGUARANTOR]
                   + public)
    loss = estimators.Estimate(*map(float, estimators.mean(public_loss)))
    checks.append(Check("public_loss", "expected public net loss vs loss budget", loss.value, loss.se,
                        loss_budget, estimators.verdict(loss, loss_budget), "yuan"))
    credit = estimators.Estimate(*map(float, estimators.mean(out.credit)))
    return Verification(tuple(checks), n_paths, seed, result.objective, credit)
