"""Reading a table a user gives (CSV or Parquet) so that every error names
the file, the column and the lines: the helpers the portfolio and history
loaders share."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

# Bad values listed per column in a message (the rest are counted).
MAX_REPORTED_ROWS = 10


def read_table(path: Path, error: type[Exception]) -> tuple[pd.DataFrame, np.ndarray]:
    """The table and each row's line number in the file (header = line 1); `error` is raised,
    naming the file, when it cannot be read."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with warnings.catch_warnings():
                # rows longer than the header would otherwise be cut silently
                warnings.simplefilter("error", pd.errors.ParserWarning)
                frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True,
                                    index_col=False, skip_blank_lines=False)
            lines = np.arange(len(frame)) + 2
            blank = (frame.apply(lambda col: col.str.strip()) == "").all(axis=1).to_numpy()
            return frame[~blank].reset_index(drop=True), lines[~blank]
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
            return frame, np.arange(len(frame)) + 2
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except pd.errors.ParserWarning:
        raise error(
            f"{path}: rows have more fields than the header's columns; check delimiters and quoting"
        ) from None
    except pd.errors.EmptyDataError:
        raise error(f"{path}: the file is empty (expected a header row)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise error(f"{path}: cannot be read as {suffix[1:]}: {exc}") from None
    raise error(f"{path}: unsupported file type {suffix!r}; use .csv or .parquet")


def bad_rows(source: str, column: str, rows: np.ndarray, values: pd.Series, allowed: str) -> str:
    shown = ", ".join(
        f"line {int(r)} ({values.iloc[i]!r})" for i, r in enumerate(rows[:MAX_REPORTED_ROWS])
    )
    more = f" and {rows.size - MAX_REPORTED_ROWS} more" if rows.size > MAX_REPORTED_ROWS else ""
    return f"{source}: column {column!r}: {allowed}; bad values at {shown}{more}"


def text_column(frame: pd.DataFrame, col: str) -> pd.Series:
    """Column `col` as stripped text."""
    return frame[col].astype(str).str.strip()


def numeric_column(frame: pd.DataFrame, col: str, lo: float, hi: float, allowed: str, source: str,
                   line: np.ndarray, errors: list[str], *, optional: bool = False, integer: bool = False,
                   lo_open: bool = False, hi_open: bool = False) -> np.ndarray:
    """Column `col` as floats (NaN where blank and `optional`); rows that break its rule go to `errors`."""
    raw = frame[col]
    blank = raw.isna() | (raw.astype(str).str.strip() == "")
    values = pd.to_numeric(raw.where(~blank), errors="coerce").to_numpy(dtype=float)
    bad = np.isnan(values) & ~(blank.to_numpy() & optional)
    ok = ~np.isnan(values)
    bad |= ok & ((values <= lo) if lo_open else (values < lo))
    bad |= ok & ((values >= hi) if hi_open else (values > hi))
    if integer:
        bad |= ok & (values != np.round(values))
    if bad.any():
        errors.append(bad_rows(source, col, line[bad], raw[bad], allowed))
    return values
