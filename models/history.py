"""A bank's default history: one row per firm and year, read and validated
like a portfolio (every error names the file, the column and the lines).

| column | unit / values |
|---|---|
| firm_id | text, not blank |
| year | calendar year, whole; (firm_id, year) unique; the years present run without gaps |
| score | innovation score at the start of the year, 0-1000 |
| stage | startup / growth / mature |
| defaulted | 0 or 1: the firm defaulted within the year |
| sector | optional: text |
| product | optional: the loan product (recoveries are fitted per product) |
| exposure | optional: exposure at default, yuan, >= 0 |
| recovered | optional: the fraction of the exposure recovered, in [0, 1]; defaulted rows only |
| recovery_months | optional: months from default to recovery, >= 0; defaulted rows only |
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models.scenario import STAGES
from models.tables import bad_rows, numeric_column, read_table, text_column

HISTORY_REQUIRED = ("firm_id", "year", "score", "stage", "defaulted")
HISTORY_OPTIONAL = ("sector", "product", "exposure", "recovered", "recovery_months")


class HistoryError(ValueError):
    """A history file is invalid; the message names the file, columns and lines."""


@dataclass(frozen=True)
class History:
    """Firm-years as parallel arrays; `stage` holds codes into STAGES, optional columns NaN (numbers)
    or None (text) where absent."""

    firm_id: np.ndarray
    year: np.ndarray
    score: np.ndarray
    stage: np.ndarray
    defaulted: np.ndarray
    sector: np.ndarray | None
    product: np.ndarray | None
    exposure: np.ndarray
    recovered: np.ndarray
    recovery_months: np.ndarray
    source: str

    def __len__(self) -> int:
        return int(self.year.size)

    @property
    def years(self) -> np.ndarray:
        """The calendar years covered, ascending."""
        return np.unique(self.year)


def _columns(frame: pd.DataFrame, source: str) -> None:
    missing = [c for c in HISTORY_REQUIRED if c not in frame.columns]
    unknown = [c for c in frame.columns if c not in HISTORY_REQUIRED + HISTORY_OPTIONAL]
    if missing or unknown:
        raise HistoryError(f"{source}: {'missing columns ' + str(missing) if missing else ''}"
                           f"{'; ' if missing and unknown else ''}"
                           f"{'unknown columns ' + str(unknown) if unknown else ''}; required: "
                           f"{list(HISTORY_REQUIRED)}, optional: {list(HISTORY_OPTIONAL)}")
    if len(frame) == 0:
        raise HistoryError(f"{source}: no rows (the table has a header but no firm-years)")


def _consistency(frame: pd.DataFrame, year: np.ndarray, defaulted: np.ndarray, recovered: np.ndarray,
                 source: str, line: np.ndarray, errors: list[str]) -> None:
    """Repeated firm-years, gaps between years, recoveries on rows that did not default."""
    firm = text_column(frame, "firm_id")
    repeated = pd.DataFrame({"f": firm, "y": year}).duplicated(keep=False).to_numpy() & ~np.isnan(year)
    if repeated.any():
        shown = firm[repeated] + " " + frame["year"][repeated].astype(str)
        errors.append(bad_rows(source, "firm_id", line[repeated], shown,
                               "each (firm_id, year) must appear once"))
    years = np.unique(year[~np.isnan(year)])
    span = set(range(int(years.min()), int(years.max()) + 1)) if years.size else set()
    gaps = sorted(span - set(years.astype(int)))
    if gaps:
        errors.append(f"{source}: column 'year': the years must run without gaps; missing {gaps}")
    stray = ~np.isnan(recovered) & (defaulted == 0)
    if stray.any():
        errors.append(bad_rows(source, "recovered", line[stray], frame["recovered"][stray],
                               "must be blank on rows that did not default"))


def history_from_frame(frame: pd.DataFrame, source: str = "<history>",
                       lines: np.ndarray | None = None) -> History:
    """Validate a firm-year table (module doc) and build a History."""
    frame = frame.set_axis([str(c).strip() for c in frame.columns], axis=1)
    _columns(frame, source)
    line = np.arange(len(frame)) + 2 if lines is None else np.asarray(lines)
    errors: list[str] = []

    def numeric(col: str, lo: float, hi: float, allowed: str, **kind: bool) -> np.ndarray:
        if col not in frame.columns:
            return np.full(len(frame), np.nan)
        return numeric_column(frame, col, lo, hi, allowed, source, line, errors, **kind)

    year = numeric("year", 1900, 2200, "must be a whole calendar year in [1900, 2200]", integer=True)
    score = numeric("score", 0, 1000, "must be a number in [0, 1000]")
    defaulted = numeric("defaulted", 0, 1, "must be 0 or 1", integer=True)
    exposure = numeric("exposure", 0, np.inf, "must be blank or a yuan amount >= 0", optional=True,
                       hi_open=True)
    recovered = numeric("recovered", 0, 1, "must be blank or a fraction in [0, 1]", optional=True)
    months = numeric("recovery_months", 0, 600, "must be blank or whole months in [0, 600]", optional=True,
                     integer=True)
    stage_text = text_column(frame, "stage").str.lower()
    bad_stage = ~stage_text.isin(STAGES).to_numpy()
    if bad_stage.any():
        errors.append(bad_rows(source, "stage", line[bad_stage], frame["stage"][bad_stage],
                               f"must be one of {list(STAGES)}"))
    blank_firm = (text_column(frame, "firm_id") == "").to_numpy()
    if blank_firm.any():
        errors.append(bad_rows(source, "firm_id", line[blank_firm], frame["firm_id"][blank_firm],
                               "must not be blank"))
    if not errors:
        _consistency(frame, year, defaulted, recovered, source, line, errors)
    if errors:
        raise HistoryError("\n".join(errors))
    text = lambda col: text_column(frame, col).to_numpy(dtype=object) if col in frame.columns else None  # noqa: E731
    return History(firm_id=text("firm_id"), year=year.astype(np.int64), score=score,
                   stage=stage_text.map({s: i for i, s in enumerate(STAGES)}).to_numpy(np.int8),
                   defaulted=defaulted.astype(bool), sector=text("sector"), product=text("product"),
                   exposure=exposure, recovered=recovered, recovery_months=months, source=source)


def load_history(path: str | Path) -> History:
    """Load and validate a CSV or Parquet firm-year history (module doc)."""
    p = Path(path)
    if p.is_dir():
        raise HistoryError(f"{p}: is a folder, expected a .csv or .parquet file")
    frame, lines = read_table(p, HistoryError)
    return history_from_frame(frame, str(p), lines)
