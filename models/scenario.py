"""Scenario files: one TOML file describes a portfolio, its default and loss
models, the risk-sharing contract, fiscal policy and simulation settings.

`load_scenario(path)` parses and validates a file and returns a frozen
`Scenario`. Every problem is reported as a `ScenarioError` that names the
file, the dotted key path (e.g. ``contract.pool.size``) and the allowed
values. Units: money in yuan, rates and probabilities as fractions, time in
months unless a key says otherwise.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from models.parties import PARTIES
from models.tail import parse_tail

STAGES: tuple[str, ...] = ("startup", "growth", "mature")

Money = Annotated[float, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, le=1)]
Score = Annotated[float, Field(ge=0, le=1000)]
Months = Annotated[int, Field(ge=0, le=600)]
Seed = Annotated[int, Field(ge=0, le=2**63 - 1)]  # what a result file's int64 seed attribute holds
INF = math.inf
MAX_PATHS = 100_000_000  # the most Monte Carlo paths a run may ask for (memory is bounded at any count)


class ScenarioError(ValueError):
    """A scenario (or an override of it) is invalid; the message says where and why."""


class _Model(BaseModel):
    # strict: TOML has real types, so "50" or true where a number belongs is a mistake
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class StageValues(_Model):
    """One number per lifecycle stage."""

    startup: float
    growth: float
    mature: float

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.startup, self.growth, self.mature)


class StageProbabilities(StageValues):
    startup: Probability
    growth: Probability
    mature: Probability


class StageScores(StageValues):
    startup: Score
    growth: Score
    mature: Score


class StageWeights(StageValues):
    startup: Annotated[float, Field(ge=0)]
    growth: Annotated[float, Field(ge=0)]
    mature: Annotated[float, Field(ge=0)]

    @model_validator(mode="after")
    def _positive_total(self) -> StageWeights:
        if sum(self.as_tuple()) <= 0:
            raise ValueError("stage weights must not all be zero")
        return self


class SyntheticPortfolio(_Model):
    """Settings of the synthetic portfolio generator (one loan per whitelisted firm)."""

    n_firms: Annotated[int, Field(ge=1, le=5_000_000)] = 2000
    stage_mix: StageWeights = StageWeights(startup=561, growth=830, mature=609)
    score_mean: StageScores = StageScores(startup=450, growth=580, mature=680)
    score_sd: Annotated[float, Field(gt=0, le=500)] = 110.0
    whitelist_min_score: Score = 0.0
    sectors: dict[str, Annotated[float, Field(ge=0)]] = {"all": 1.0}
    products: dict[str, Annotated[float, Field(ge=0)]] = {"score_loan": 1.0}
    amount_min: Annotated[float, Field(gt=0)] = 1e6
    amount_max: Annotated[float, Field(gt=0)] = 5e6
    amount_rounding: Annotated[float, Field(gt=0)] = 1e4
    term_months: list[Annotated[int, Field(ge=1, le=600)]] = [12]
    start_month_max: Months = 0
    credit_line: Annotated[float, Field(gt=0)] = INF
    seed: Seed = 0

    @model_validator(mode="after")
    def _consistent(self) -> SyntheticPortfolio:
        if self.amount_max < self.amount_min:
            raise ValueError(
                f"amount_max ({self.amount_max:g}) must be >= amount_min ({self.amount_min:g})"
            )
        for name, weights in (("sectors", self.sectors), ("products", self.products)):
            if not weights or sum(weights.values()) <= 0:
                raise ValueError(f"{name} needs at least one positive weight")
        if not self.term_months:
            raise ValueError("term_months needs at least one term")
        return self


class PortfolioSpec(_Model):
    """Where the loans come from: a CSV/Parquet file (`path`) or the generator."""

    path: Annotated[str, Field(min_length=1)] | None = None
    synthetic: SyntheticPortfolio | None = None
    # a file's columns that riskpool does not read (a branch code, say): refused, or ignored
    extra_columns: Literal["refuse", "ignore"] = "refuse"

    @model_validator(mode="after")
    def _one_source(self) -> PortfolioSpec:
        if (self.path is None) == (self.synthetic is None):
            raise ValueError("give exactly one of 'path' or a [portfolio.synthetic] table")
        return self


class DefaultModel(_Model):
    """Score-to-PD map, copula and stress (see models/scoring.py)."""

    pd_annual: StageProbabilities = StageProbabilities(startup=0.06, growth=0.03, mature=0.015)
    score_slope: Annotated[float, Field(ge=0, le=10)] = 0.5
    pd_floor: Annotated[float, Field(gt=0, lt=1)] = 1e-4
    pd_cap: Annotated[float, Field(gt=0, lt=1)] = 0.5
    rho_systematic: Annotated[float, Field(ge=0, lt=1)] = 0.12
    rho_sector: Annotated[float, Field(ge=0, lt=1)] = 0.05
    copula: Literal["gaussian", "student_t"] = "gaussian"
    t_dof: Annotated[float, Field(gt=2, le=1000)] = 6.0
    moral_hazard_beta: Annotated[float, Field(ge=0, le=10)] = 0.0
    stress: list[Annotated[float, Field(ge=0, le=100)]] = []

    @model_validator(mode="after")
    def _consistent(self) -> DefaultModel:
        if self.rho_systematic + self.rho_sector >= 1:
            raise ValueError(
                "rho_systematic + rho_sector must be < 1 "
                f"(got {self.rho_systematic:g} + {self.rho_sector:g})"
            )
        if self.pd_floor >= self.pd_cap:
            raise ValueError("pd_floor must be < pd_cap")
        for stage, target in zip(STAGES, self.pd_annual.as_tuple()):
            if not self.pd_floor <= target <= self.pd_cap:
                raise ValueError(
                    f"pd_annual.{stage} = {target:g} must lie in [pd_floor, pd_cap] = "
                    f"[{self.pd_floor:g}, {self.pd_cap:g}]"
                )
        return self


class Product(_Model):
    """Loss model of one loan product."""

    amortization: Literal["bullet", "equal_principal"] = "bullet"
    recovery_mean: Probability = 0.3
    recovery_sd: Annotated[float, Field(ge=0, lt=0.5)] = 0.0
    recovery_downturn: Annotated[float, Field(ge=0, le=5)] = 0.0
    recovery_lag_months: Months = 24

    @model_validator(mode="after")
    def _beta_feasible(self) -> Product:
        m, s = self.recovery_mean, self.recovery_sd
        if s > 0 and s * s >= m * (1 - m):
            raise ValueError(
                f"recovery_sd {s:g} too large for recovery_mean {m:g}: "
                f"need sd^2 < mean*(1-mean) = {m * (1 - m):g}"
            )
        return self


class Pricing(_Model):
    """Loan rate as a function of score, and the bank's costs (annual rates)."""

    rate_at_500: Annotated[float, Field(ge=0, le=1)] = 0.045
    rate_slope_per_100: Annotated[float, Field(ge=0, le=1)] = 0.004
    rate_floor: Annotated[float, Field(ge=0, le=1)] = 0.03
    rate_cap: Annotated[float, Field(ge=0, le=1)] = 0.08
    funding_cost: Annotated[float, Field(ge=0, le=1)] = 0.025
    operating_cost: Annotated[float, Field(ge=0, le=1)] = 0.005

    @model_validator(mode="after")
    def _floor_below_cap(self) -> Pricing:
        if self.rate_floor > self.rate_cap:
            raise ValueError("rate_floor must be <= rate_cap")
        return self


class Pool(_Model):
    """The government risk-compensation pool: a fixed fund that pays until empty."""

    size: Money = 0.0
    cap_per_loan: Money = INF
    cumulative_cap: Money = INF
    claim_lag_months: Months = 1
    top_up: Literal["none", "add", "to_target"] = "none"
    top_up_amount: Money = 0.0
    top_up_every_months: Annotated[int, Field(ge=1, le=600)] = 12


class Guarantor(_Model):
    """Government financing-guarantee company with finite capital."""

    capital: Money = INF
    leverage: Annotated[float, Field(gt=0)] = INF
    lag_months: Months = 3
    cap_per_loan: Money = INF


class CappedParty(_Model):
    """Insurer, appraiser or re-guarantor: pays its share up to optional caps."""

    cap_per_loan: Money = INF
    cap_total: Money = INF
    lag_months: Months = 3


class StopRule(_Model):
    """New lending stops once a cumulative rate (by amount) passes its threshold."""

    default_rate: Probability | None = None
    compensation_rate: Probability | None = None


class Shares(_Model):
    """Share of each defaulted yuan owed by each party; must sum to 1."""

    bank: Probability = 0.0
    pool: Probability = 0.0
    guarantor: Probability = 0.0
    insurer: Probability = 0.0
    appraiser: Probability = 0.0
    reguarantor: Probability = 0.0
    government: Probability = 0.0

    @model_validator(mode="after")
    def _sum_to_one(self) -> Shares:
        total = sum(self.as_tuple())
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"shares must sum to 1 (got {total:.6g})")
        return self

    def as_tuple(self) -> tuple[float, ...]:
        return tuple(getattr(self, p) for p in PARTIES)


class Contract(_Model):
    """Who pays for a default, with what money and on which rules."""

    shares: dict[str, Shares]
    pool: Pool = Pool()
    guarantor: Guarantor = Guarantor()
    insurer: CappedParty = CappedParty()
    appraiser: CappedParty = CappedParty()
    reguarantor: CappedParty = CappedParty()
    stop_rule: StopRule = StopRule()


class Policy(_Model):
    """Fiscal incentives: interest subsidy, guarantee compensation, bank rewards."""

    interest_subsidy_share: Probability = 0.0
    interest_subsidy_cap_principal: Probability = 1.0
    interest_subsidy_cap_firm: Money = INF
    guarantee_compensation_rate: Probability = 0.0
    guarantee_compensation_cap_annual: Money = INF
    bank_reward_step: Annotated[float, Field(gt=0)] = 100e6
    bank_reward_amount: Money = 0.0


class Simulation(_Model):
    """Monte Carlo settings."""

    horizon_months: Annotated[int, Field(ge=1, le=600)] = 60
    period_months: Annotated[int, Field(ge=1, le=120)] = 3
    n_paths: Annotated[int, Field(ge=1, le=MAX_PATHS)] = 100_000
    seed: Seed = 20240101
    block_size: Annotated[int, Field(ge=1, le=1_000_000)] = 4096
    method: Literal["sparse", "dense"] = "sparse"
    quantiles: Annotated[list[Annotated[float, Field(gt=0, lt=1)]], Field(min_length=1)] = [
        0.5, 0.9, 0.95, 0.99, 0.999,
    ]
    tail: str = "off"  # the far-tail event to importance-sample (grammar: models.tail)
    # the most memory a run's per-path results may take, GiB: past it the run streams its paths
    memory_gib: Annotated[float, Field(gt=0, le=1e6)] = 2.0

    @field_validator("tail")
    @classmethod
    def _tail_grammar(cls, value: str) -> str:
        parse_tail(value)
        return value.strip()

    @model_validator(mode="after")
    def _period_divides_horizon(self) -> Simulation:
        if self.horizon_months % self.period_months:
            raise ValueError(
                f"period_months ({self.period_months}) must divide horizon_months "
                f"({self.horizon_months})"
            )
        if sorted(set(self.quantiles)) != list(self.quantiles):
            raise ValueError("quantiles must be strictly increasing")
        return self


class Optimize(_Model):
    """Settings of `riskpool optimize`: segments, sharing menu and the LP's limits."""

    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.99
    score_bands: Annotated[list[Score], Field(min_length=2)] = [0.0, 500.0, 600.0, 700.0, 1000.0]
    demand_multiplier: Annotated[float, Field(ge=0)] = 1.5
    min_credit_share: Probability = 0.0
    pool_leverage: Annotated[float, Field(gt=0)] = INF
    max_credit: Money = INF
    max_pool: Money = INF
    max_capital_injection: Money = INF
    max_reserve: Money = INF
    loss_budget: Money = INF
    objective: Literal["credit", "firms"] = "credit"
    option_by: Literal["scheme", "stage", "score_band", "segment"] = "scheme"
    n_scenarios: Annotated[int, Field(ge=100, le=1_000_000)] = 20_000
    verify_paths: Annotated[int, Field(ge=0, le=10_000_000)] = 100_000
    max_rounds: Annotated[int, Field(ge=1, le=20)] = 5
    stability_sets: Annotated[int, Field(ge=0, le=50)] = 5
    frontier_points: Annotated[int, Field(ge=0, le=100)] = 9
    options: dict[str, Shares] = {}

    @model_validator(mode="after")
    def _bands_increase(self) -> Optimize:
        b = self.score_bands
        if any(hi <= lo for lo, hi in zip(b, b[1:])) or b[0] != 0 or b[-1] != 1000:
            raise ValueError(f"score_bands must increase strictly from 0 to 1000 (got {b})")
        return self


RiskWeight = Annotated[float, Field(ge=0, le=12.5)]  # 1250 % is the largest Basel risk weight
ProtectionRiskWeights = dict[Literal[PARTIES], RiskWeight]  # type: ignore[valid-type]


class Capital(_Model):
    """The bank's capital (`riskpool capital`; sim.risk.capital cites the Basel paragraphs) and the
    costs of the breakeven guarantee fee. The scheme's shares are guarantees substituted by each
    payer's risk weight (standardised) or PD (IRB); the pool's only where `pool_cover` says so."""

    # standardised risk weight of the borrowers: 0.85 corporate SME, 0.75 regulatory retail, 1.0 corporate
    risk_weight: RiskWeight = 0.85
    # risk weight of the share each payer covers (assumptions: sovereign 0 %, public funds 20 %,
    # corporates, guarantee companies and insurers 100 %)
    protection_risk_weight: ProtectionRiskWeights = {
        "government": 0.0, "pool": 0.2, "reguarantor": 0.2, "guarantor": 1.0, "insurer": 1.0,
        "appraiser": 1.0}
    # annual PD of each payer for IRB substitution (assumptions; 0 = no floor, a sovereign)
    protection_pd: dict[Literal[PARTIES], Probability] = {  # type: ignore[valid-type]
        "government": 0.0, "pool": 0.0005, "reguarantor": 0.0005, "guarantor": 0.01, "insurer": 0.003,
        "appraiser": 0.02}
    # a finite pool's cover is not an unconditional guarantee (CRE22): no relief unless "guarantee"
    pool_cover: Literal["none", "guarantee"] = "none"
    irb_class: Literal["corporate", "retail"] = "corporate"
    lgd: Probability = 0.40                  # F-IRB senior unsecured, other corporates (CRE32.6)
    protection_lgd: Probability = 0.45       # F-IRB, the payers: financial institutions (CRE32.6)
    # effective maturity M, years: F-IRB's 2.5 (CRE32.44), or "term": each loan's term (clamped to 1-5)
    maturity_years: Annotated[float, Field(ge=0, le=50)] | Literal["term"] = 2.5
    level: Annotated[float, Field(gt=0.5, lt=1)] = 0.999   # economic capital's confidence level
    measure: Literal["es", "var"] = "es"     # economic capital = measure at `level` - expected loss
    cost_of_capital: Probability = 0.10      # a year, on capital held (RAROC hurdle, breakeven fee)
    admin_cost: Probability = 0.005          # a guarantor's running cost, a year per yuan guaranteed


class Sweep(_Model):
    """Keys to sweep (dotted paths, or `sharing`) and the named sharing options."""

    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = {}
    sharing: dict[str, Shares] = {}


class Scenario(_Model):
    """A complete, validated scenario."""

    name: str = "scenario"
    description: str = ""
    portfolio: PortfolioSpec
    default: DefaultModel = DefaultModel()
    products: dict[str, Product] = {"score_loan": Product()}
    pricing: Pricing = Pricing()
    contract: Contract
    policy: Policy = Policy()
    simulation: Simulation = Simulation()
    sweep: Sweep | None = None
    optimize: Optimize = Optimize()
    capital: Capital = Capital()
    _source: str = PrivateAttr(default="<scenario>")

    @property
    def source(self) -> str:
        """The file the scenario was read from, for messages."""
        return self._source

    @model_validator(mode="after")
    def _products_have_contracts(self) -> Scenario:
        missing = sorted(set(self.products) - set(self.contract.shares))
        if missing:
            raise ValueError(
                f"products {missing} have no [contract.shares.<product>] table"
            )
        unknown = sorted(set(self.contract.shares) - set(self.products))
        if unknown:
            raise ValueError(
                f"contract.shares names products {unknown} not defined in [products]; "
                f"defined: {sorted(self.products)}"
            )
        synthetic = self.portfolio.synthetic
        if synthetic is not None and synthetic.start_month_max >= self.simulation.horizon_months:
            raise ValueError(
                f"portfolio.synthetic.start_month_max ({synthetic.start_month_max}) must be < "
                f"simulation.horizon_months ({self.simulation.horizon_months})"
            )
        if self.portfolio.synthetic is not None:
            bad = sorted(set(self.portfolio.synthetic.products) - set(self.products))
            if bad:
                raise ValueError(
                    f"portfolio.synthetic.products names {bad} not defined in [products]; "
                    f"defined: {sorted(self.products)}"
                )
        return self

    @property
    def product_names(self) -> tuple[str, ...]:
        return tuple(self.products)


def _unwrap_optional(annotation: Any) -> Any:
    """`X | None` -> X; anything else unchanged."""
    args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
    if getattr(annotation, "__origin__", None) is not dict and len(args) == 1:
        return args[0]
    return annotation


def _allowed_keys(model: type[BaseModel], loc: Sequence[Any]) -> list[str] | None:
    """Field names of the table found at `loc` (the parent of an unknown key)."""
    current: Any = model
    for part in loc:
        current = _unwrap_optional(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            current = field.annotation if field else None
        elif getattr(current, "__origin__", None) is dict:
            current = current.__args__[1]  # `part` is the user's own key
        else:
            return None
    current = _unwrap_optional(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return None


def format_validation_error(source: str, err: ValidationError) -> str:
    """One line per problem: `source: key.path: what is wrong (got value)`."""
    lines = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        where = ".".join(loc) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(Scenario, e["loc"][:-1])
            msg = "unknown key" + (f"; allowed keys here: {', '.join(allowed)}" if allowed else "")
            lines.append(f"{source}: {where}: {msg}")
            continue
        shown = e.get("input")
        got = "" if isinstance(shown, dict) else f" (got {shown!r})"
        lines.append(f"{source}: {where}: {msg}{got}")
    return "\n".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value``; the value is read as TOML, else kept as a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    path = key_path(key) if sep and key else None
    if not path:
        raise ScenarioError(f"override {text!r}: expected KEY=VALUE with a dotted key "
                            '(a part with dots in quotes: sweep.grid."contract.pool.size"=[...])')
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return path, value


def key_path(key: str) -> list[str] | None:
    """The parts of a dotted TOML key (quoted parts kept whole), or None if it is not one."""
    try:
        node: Any = tomllib.loads(f"{key} = 0")
    except tomllib.TOMLDecodeError:
        return None
    path = []
    while isinstance(node, dict) and len(node) == 1:
        (part, node), = node.items()
        path.append(part)
    return path if node == 0 and path else None


def set_key(data: dict[str, Any], path: Sequence[str], value: Any) -> None:
    """Set the key at `path` (its parts) of a nested mapping to `value`, creating the tables on the
    way; TypeError naming the part that holds a value rather than a table."""
    node = data
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise TypeError(part)
        node = child
    node[path[-1]] = value


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of the raw scenario mapping with ``KEY=VALUE`` overrides set."""
    data = _deep_copy(raw)
    for text in overrides:
        path, value = parse_override(text)
        try:
            set_key(data, path, value)
        except TypeError as exc:
            raise ScenarioError(f"override {text!r}: {exc.args[0]!r} is a value, not a table") from None
    return data


def _deep_copy(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in raw.items()}


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file, turning every failure into a ScenarioError naming the file."""
    p = Path(path)
    try:
        # utf-8-sig: a byte-order mark (as Windows editors write) is not part of the TOML
        return tomllib.loads(p.read_bytes().decode("utf-8-sig"))
    except FileNotFoundError:
        raise ScenarioError(f"{p}: file not found") from None
    except IsADirectoryError:
        raise ScenarioError(f"{p}: is a folder, expected a .toml file") from None
    except PermissionError:
        raise ScenarioError(f"{p}: cannot be read (permission denied)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{p}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{p}: not a UTF-8 text file") from None


def scenario_from_mapping(
    raw: Mapping[str, Any], source: str = "<scenario>", base_dir: Path | None = None
) -> Scenario:
    """Validate a raw mapping; relative portfolio paths resolve against `base_dir`."""
    data = _deep_copy(raw)
    portfolio = data.get("portfolio")
    if base_dir is not None and isinstance(portfolio, dict):
        path = portfolio.get("path")
        if isinstance(path, str) and path and not Path(path).is_absolute():
            portfolio["path"] = str((base_dir / path).resolve())
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(source, exc)) from None
    scenario._source = source
    return scenario


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Load and validate a scenario file, applying ``KEY=VALUE`` overrides first.

    Parameters
    ----------
    path : str or Path
        A TOML scenario (keys in scenarios/README.md); a relative portfolio
        path resolves against its folder.
    overrides : sequence of str
        ``dotted.key=value`` settings applied before validation (values read as TOML).

    Returns
    -------
    Scenario
        The validated, frozen scenario.

    Raises
    ------
    ScenarioError
        Naming the file, the key (or line and column) and the allowed range.
    """
    p = Path(path)
    raw = apply_overrides(read_toml(p), overrides)
    return scenario_from_mapping(raw, source=str(p), base_dir=p.resolve().parent)


def _without_none(value: Any) -> Any:
    """TOML has no null: drop None values (unset optional keys), keep the rest."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def to_toml(scenario: Scenario) -> str:
    """The resolved scenario as TOML (defaults filled in), to repeat a run exactly."""
    return tomli_w.dumps(_without_none(scenario.model_dump(mode="python")))


# Settings that change how a run is computed, not its numbers (bit for bit the same at any block size
# and memory budget, tested): left out of the scenario's hash, so such runs share one identity.
HOW_NOT_WHAT = ("block_size", "memory_gib")


def scenario_sha256(scenario: Scenario) -> str:
    """Hash of the resolved scenario less HOW_NOT_WHAT and, for a file portfolio, the file's bytes."""
    what = scenario.model_copy(update={
        "simulation": scenario.simulation.model_copy(update=dict.fromkeys(HOW_NOT_WHAT))})
    h = hashlib.sha256(to_toml(what).encode())
    if scenario.portfolio.path is not None:
        p = Path(scenario.portfolio.path)
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()
