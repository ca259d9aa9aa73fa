"""The calibration as TOML: the fitted keys as a scenario fragment, or the
calibrated scenario in full, each fitted key commented with its 95 %
interval, its method and the data it came from."""

from __future__ import annotations

import tomli_w

from models.scenario import set_key, to_toml
from sim.calibration.fit import Calibration


def _nested(keys: dict[str, float]) -> dict:
    out: dict = {}
    for dotted, value in keys.items():
        set_key(out, dotted.split("."), value)
    return out


def _comments(cal: Calibration) -> dict[str, str]:
    """The comment of each fitted key (dotted name -> text)."""
    out = {}
    rows: dict = {}
    for r in cal.estimates.itertuples():  # the first of a parameter's rows is the one used
        rows.setdefault(r.parameter, r)
    for dotted in cal.keys:
        product_wide = dotted.split(".")
        lookup = dotted if dotted in rows else ".".join([product_wide[0], "*", *product_wide[2:]])
        row = rows.get(lookup)
        if row is None:
            out[dotted] = "fitted (median months to recovery)"
            continue
        out[dotted] = f"fitted: 95 % CI [{row.low:.4g}, {row.high:.4g}], {row.method}; {row.data}"
    return out


def _annotate(text: str, comments: dict[str, str]) -> str:
    """Append each key's comment to its line (tables tracked by their [headers])."""
    lines, table = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            table = stripped.strip("[]").replace('"', "")
        elif "=" in stripped:
            key = stripped.split("=", 1)[0].strip().strip('"')
            note = comments.get(f"{table}.{key}" if table else key)
            if note:
                line = f"{line}  # {note}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def header(cal: Calibration, history: str) -> str:
    notes = "".join(f"# note: {n}\n" for n in cal.notes)
    return (f"# Calibrated by `riskpool calibrate` from {history}; every fitted key says its interval.\n"
            f"{notes}")


def fragment_toml(cal: Calibration, history: str) -> str:
    """The fitted keys alone, to paste into a scenario."""
    return header(cal, history) + _annotate(tomli_w.dumps(_nested(cal.keys)), _comments(cal))


def scenario_toml(cal: Calibration, history: str) -> str:
    """The calibrated scenario in full (runnable: its portfolio path is absolute)."""
    assert cal.scenario is not None
    return header(cal, history) + _annotate(to_toml(cal.scenario), _comments(cal))
