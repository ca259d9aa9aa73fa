"""Loan portfolios: a struct-of-arrays table, a synthetic generator and a
CSV/Parquet loader that names every bad row and column.

Columns (one row per loan), as a bank would export them:

| column | unit / values |
|---|---|
| loan_id, firm_id | text; loan_id unique |
| score | innovation score, 0-1000 |
| stage | startup / growth / mature |
| sector | text |
| amount | principal, yuan, > 0 |
| term_months | months, >= 1 |
| start_month | month the loan is disbursed, >= 0 (0 = simulation start) |
| product | a product defined in the scenario |
| pd_annual | optional: the bank's own annual PD, in [0, 1); overrides the score model |
| rate | optional: annual loan rate, in [0, 1]; overrides the pricing model |
| recovery | optional: expected recovery fraction, in [0, 1]; overrides the product's |
| turnover | optional: the firm's annual turnover (sales), yuan, >= 0; the IRB SME size adjustment |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models.scenario import STAGES, SyntheticPortfolio
from models.tables import bad_rows, numeric_column, read_table, text_column

REQUIRED_COLUMNS = (
    "loan_id",
    "firm_id",
    "score",
    "stage",
    "sector",
    "amount",
    "term_months",
    "start_month",
    "product",
)
OPTIONAL_COLUMNS = ("pd_annual", "rate", "recovery", "turnover")
# What `riskpool portfolio --csv` adds to each loan (the model's PD and rate, lifetime PD, expected
# loss, segment): read back, these are left out, never taken for the bank's own inputs.
ASSIGNED_COLUMNS = ("model_pd_annual", "model_rate", "lifetime_pd", "expected_loss", "segment")


class PortfolioError(ValueError):
    """A portfolio file or table is invalid; the message names rows and columns."""


@dataclass(frozen=True)
class Portfolio:
    """Loans as parallel arrays. Categorical columns are integer codes into the
    `*_names` tuples; optional overrides are NaN where the model applies."""

    loan_id: np.ndarray
    firm_id: np.ndarray
    score: np.ndarray
    stage: np.ndarray
    sector: np.ndarray
    amount: np.ndarray
    term_months: np.ndarray
    start_month: np.ndarray
    product: np.ndarray
    pd_annual: np.ndarray
    rate: np.ndarray
    recovery: np.ndarray
    sector_names: tuple[str, ...]
    product_names: tuple[str, ...]
    turnover: np.ndarray | None = None  # yuan a year; NaN (None: all NaN) where not known

    def __post_init__(self) -> None:
        if self.turnover is None:
            object.__setattr__(self, "turnover", np.full(self.amount.size, np.nan))

    def __len__(self) -> int:
        return int(self.amount.size)

    @property
    def total_amount(self) -> float:
        """Total principal, yuan."""
        return float(self.amount.sum())

    def to_frame(self) -> pd.DataFrame:
        """The table with categorical codes turned back into names."""
        return pd.DataFrame(
            {
                "loan_id": self.loan_id,
                "firm_id": self.firm_id,
                "score": self.score,
                "stage": np.asarray(STAGES)[self.stage],
                "sector": np.asarray(self.sector_names)[self.sector],
                "amount": self.amount,
                "term_months": self.term_months,
                "start_month": self.start_month,
                "product": np.asarray(self.product_names)[self.product],
                "pd_annual": self.pd_annual,
                "rate": self.rate,
                "recovery": self.recovery,
                "turnover": self.turnover,
            }
        )

    def select(self, mask: np.ndarray) -> Portfolio:
        """The loans where `mask` is true (same category names)."""
        cols = {
            name: getattr(self, name)[mask]
            for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS
        }
        return Portfolio(**cols, sector_names=self.sector_names, product_names=self.product_names)


def segment_index(portfolio: Portfolio, score_bands: list[float]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Segment of each loan and the labels of the non-empty segments."""
    bands = np.asarray(score_bands, dtype=float)
    band = np.clip(np.searchsorted(bands, portfolio.score, side="right") - 1, 0, bands.size - 2)
    raw = (portfolio.stage.astype(np.int64) * (bands.size - 1) + band) * len(portfolio.product_names) \
        + portfolio.product
    codes, index = np.unique(raw, return_inverse=True)
    labels = []
    for code in codes:
        rest, product = divmod(int(code), len(portfolio.product_names))
        stage, b = divmod(rest, bands.size - 1)
        labels.append(f"{STAGES[stage]}|{bands[b]:g}-{bands[b + 1]:g}|{portfolio.product_names[product]}")
    return index.astype(np.int64), tuple(labels)


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer counts proportional to `weights` that add up to `total` exactly."""
    raw = weights / weights.sum() * total
    counts = np.floor(raw).astype(np.int64)
    short = total - counts.sum()
    counts[np.argsort(-(raw - counts), kind="stable")[:short]] += 1
    return counts


def generate_portfolio(spec: SyntheticPortfolio, products: Sequence[str]) -> Portfolio:
    """Synthetic portfolio: `n_firms` scored firms split by stage, one loan for each
    firm at or above the whitelist score, funded in start-month order until the
    credit line is used. Deterministic for a given `spec.seed`."""
    unknown = sorted(set(spec.products) - set(products))
    if unknown:
        raise ValueError(
            f"portfolio.synthetic.products {unknown} not among the scenario's products {list(products)}"
        )
    rng = np.random.default_rng(spec.seed)
    counts = _largest_remainder(np.asarray(spec.stage_mix.as_tuple()), spec.n_firms)
    stage = np.repeat(np.arange(len(STAGES), dtype=np.int8), counts)
    means = np.asarray(spec.score_mean.as_tuple())[stage]
    score = np.clip(np.round(rng.normal(means, spec.score_sd)), 0.0, 1000.0)
    sector_names = tuple(spec.sectors)
    sector_w = np.asarray(list(spec.sectors.values()), dtype=float)
    sector = rng.choice(len(sector_names), size=spec.n_firms, p=sector_w / sector_w.sum())
    product_names = tuple(products)
    product_w = np.asarray([spec.products.get(p, 0.0) for p in product_names], dtype=float)
    product = rng.choice(len(product_names), size=spec.n_firms, p=product_w / product_w.sum())
    log_amount = rng.uniform(np.log(spec.amount_min), np.log(spec.amount_max), spec.n_firms)
    amount = np.clip(
        np.round(np.exp(log_amount) / spec.amount_rounding) * spec.amount_rounding,
        spec.amount_min,
        spec.amount_max,
    )
    term = rng.choice(np.asarray(spec.term_months, dtype=np.int32), size=spec.n_firms)
    start = rng.integers(0, spec.start_month_max + 1, size=spec.n_firms).astype(np.int32)

    order = np.argsort(start, kind="stable")
    eligible = order[score[order] >= spec.whitelist_min_score]
    funded = eligible[np.cumsum(amount[eligible]) <= spec.credit_line]
    keep = np.sort(funded)
    n = keep.size
    nan = np.full(n, np.nan)
    firm_id = np.array([f"F{i:06d}" for i in keep], dtype=object)
    return Portfolio(
        loan_id=np.array([f"L{i:06d}" for i in keep], dtype=object),
        firm_id=firm_id,
        score=score[keep],
        stage=stage[keep],
        sector=sector[keep].astype(np.int32),
        amount=amount[keep],
        term_months=term[keep],
        start_month=start[keep],
        product=product[keep].astype(np.int32),
        pd_annual=nan,
        rate=nan.copy(),
        recovery=nan.copy(),
        sector_names=sector_names,
        product_names=product_names,
    )


def _check_columns(frame: pd.DataFrame, source: str, extra_columns: str = "refuse") -> pd.DataFrame:
    """The table without columns riskpool does not read (`extra_columns` "ignore"); raise unless it
    has every required column, no unknown one ("refuse") and at least one row."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise PortfolioError(
            f"{source}: missing required columns {missing}; "
            f"required: {list(REQUIRED_COLUMNS)}, optional: {list(OPTIONAL_COLUMNS)}"
        )
    frame = frame.drop(columns=[c for c in ASSIGNED_COLUMNS if c in frame.columns])
    unknown = [c for c in frame.columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown and extra_columns != "ignore":
        raise PortfolioError(
            f"{source}: unknown columns {unknown}; "
            f"allowed: {list(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)} "
            '(set portfolio.extra_columns = "ignore" to load a file with columns of its own)'
        )
    if len(frame) == 0:
        raise PortfolioError(f"{source}: no loans (the table has a header but no rows)")
    return frame.drop(columns=unknown)


def _label_columns(frame: pd.DataFrame, products: Sequence[str], source: str, line: np.ndarray,
                   errors: list[str]) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Stage (lower case), product and loan_id as text; bad labels, blanks, repeated ids go to `errors`."""
    stage_text = text_column(frame, "stage").str.lower()
    stage_bad = ~stage_text.isin(STAGES).to_numpy()
    if stage_bad.any():
        errors.append(bad_rows(source, "stage", line[stage_bad], frame["stage"][stage_bad],
                                f"must be one of {list(STAGES)}"))
    product_text = text_column(frame, "product")
    product_bad = ~product_text.isin(list(products)).to_numpy()
    if product_bad.any():
        errors.append(bad_rows(source, "product", line[product_bad], frame["product"][product_bad],
                                f"must be a product of the scenario: {list(products)}"))
    for col in ("loan_id", "firm_id", "sector"):
        blank = (text_column(frame, col) == "") | frame[col].isna()
        if blank.any():
            errors.append(bad_rows(source, col, line[blank.to_numpy()], frame[col][blank],
                                    "must not be blank"))
    loan_id = text_column(frame, "loan_id")
    dup = loan_id.duplicated(keep="first").to_numpy()
    if dup.any():
        errors.append(bad_rows(source, "loan_id", line[dup], frame["loan_id"][dup], "must be unique"))
    return stage_text, product_text, loan_id


def portfolio_from_frame(
    frame: pd.DataFrame, products: Sequence[str], source: str = "<portfolio>",
    lines: np.ndarray | None = None, extra_columns: str = "refuse",
) -> Portfolio:
    """Validate a loan table and build a Portfolio. Messages give each row's line
    in the file (`lines`; by default row order with the header as line 1);
    columns riskpool does not read are refused, or dropped with `extra_columns` "ignore"."""
    cols = [str(c).strip() for c in frame.columns]
    frame = _check_columns(frame.set_axis(cols, axis=1), source, extra_columns)
    line = np.arange(len(frame)) + 2 if lines is None else np.asarray(lines)
    errors: list[str] = []

    def numeric(col: str, lo: float, hi: float, allowed: str, **kind: bool) -> np.ndarray:
        """`_numeric` on this table."""
        return numeric_column(frame, col, lo, hi, allowed, source, line, errors, **kind)

    score = numeric("score", 0, 1000, "must be a number in [0, 1000]")
    amount = numeric("amount", 0, np.inf, "must be a yuan amount > 0", lo_open=True, hi_open=True)
    term = numeric("term_months", 1, 600, "must be a whole number of months in [1, 600]", integer=True)
    start = numeric("start_month", 0, 600, "must be a whole month in [0, 600]", integer=True)
    optional = {}
    for col, hi_open, allowed in (
        ("pd_annual", True, "must be blank or a probability in [0, 1)"),
        ("rate", False, "must be blank or an annual rate in [0, 1]"),
        ("recovery", False, "must be blank or a fraction in [0, 1]"),
    ):
        if col in frame.columns:
            optional[col] = numeric(col, 0, 1, allowed, optional=True, hi_open=hi_open)
        else:
            optional[col] = np.full(len(frame), np.nan)
    optional["turnover"] = (numeric("turnover", 0, np.inf, "must be blank or a yuan turnover >= 0",
                                    optional=True, hi_open=True)
                            if "turnover" in frame.columns else np.full(len(frame), np.nan))
    stage_text, product_text, loan_id = _label_columns(frame, products, source, line, errors)
    if errors:
        raise PortfolioError("\n".join(errors))

    sector_text = text_column(frame, "sector")
    sector_names = tuple(dict.fromkeys(sector_text))
    sector_code = {name: i for i, name in enumerate(sector_names)}
    product_code = {name: i for i, name in enumerate(products)}
    return Portfolio(
        loan_id=loan_id.to_numpy(dtype=object),
        firm_id=text_column(frame, "firm_id").to_numpy(dtype=object),
        score=score,
        stage=stage_text.map({s: i for i, s in enumerate(STAGES)}).to_numpy(dtype=np.int8),
        sector=sector_text.map(sector_code).to_numpy(dtype=np.int32),
        amount=amount,
        term_months=term.astype(np.int32),
        start_month=start.astype(np.int32),
        product=product_text.map(product_code).to_numpy(dtype=np.int32),
        pd_annual=optional["pd_annual"],
        rate=optional["rate"],
        recovery=optional["recovery"],
        sector_names=sector_names,
        product_names=tuple(products),
        turnover=optional["turnover"],
    )


def load_portfolio(path: str | Path, products: Sequence[str], extra_columns: str = "refuse") -> Portfolio:
    """Load and validate a CSV or Parquet loan table (see the module docstring); `extra_columns`
    "ignore" drops columns riskpool does not read instead of refusing the file."""
    p = Path(path)
    if p.is_dir():
        raise PortfolioError(f"{p}: is a folder, expected a .csv or .parquet file")
    frame, lines = read_table(p, PortfolioError)
    return portfolio_from_frame(frame, products, source=str(p), lines=lines, extra_columns=extra_columns)


def write_portfolio_csv(portfolio: Portfolio, path: str | Path) -> None:
    """Write the portfolio as CSV (blank optional columns stay blank)."""
    portfolio.to_frame().to_csv(path, index=False, float_format="%.10g")


# How a book's loans are grouped for risk contributions (`grouping`).
GROUPINGS = ("segment", "sector", "stage", "product", "loan")


def grouping(portfolio: Portfolio, by: str,
             score_bands: Sequence[float]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Group of each loan and the groups' labels, grouped `by` one of GROUPINGS (segments: stage x
    score band x product, bands from `score_bands`; only groups that hold a loan are labelled)."""
    if by == "segment":
        return segment_index(portfolio, list(score_bands))
    if by == "loan":
        return np.arange(len(portfolio), dtype=np.int64), tuple(str(x) for x in portfolio.loan_id)
    names = {"sector": portfolio.sector_names, "stage": STAGES, "product": portfolio.product_names}.get(by)
    if names is None:
        raise ValueError(f"unknown grouping {by!r}; allowed: {', '.join(GROUPINGS)}")
    codes, index = np.unique(getattr(portfolio, by), return_inverse=True)
    return index.astype(np.int64), tuple(str(names[c]) for c in codes)
