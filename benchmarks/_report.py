"""Collects what the benchmarks measure during one pytest run and renders the
summary table (terminal) and benchmarks/RESULTS.md.

Tests call `record(...)`, `note(...)` and `cache`; benchmarks/conftest.py
prints `render()` in `pytest_terminal_summary` and writes RESULTS.md.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@dataclass
class Measurement:
    workload: str  # "W1", "W2", ...
    name: str  # e.g. "engine sparse", "numpy peer"
    role: str  # engine | peer | floor | diag
    seconds: float  # median wall time of the timed call
    rounds: int
    work: float = math.nan  # units of work per call (loan-paths, paths, scenarios)
    unit: str = "loan-paths/s"
    threads: int = 1
    size: str = ""  # human description of the size
    memory: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.work / self.seconds if self.seconds > 0 else math.nan


MEASUREMENTS: dict[tuple[str, str], Measurement] = {}
NOTES: list[str] = []
CACHE: dict[str, Any] = {}  # e.g. loss samples shared between tests
STARTED = time.time()
LOAD_AT_START = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3


def record(m: Measurement) -> Measurement:
    MEASUREMENTS[(m.workload, m.name)] = m
    return m


def note(text: str) -> None:
    NOTES.append(text)


def timed(benchmark, fn, rounds: int, *args, **kwargs):
    """Run `fn` `rounds` times under pytest-benchmark (pedantic, no warm-up
    rounds: numba is warmed by the session fixture) and return (result,
    median seconds from our own perf_counter, so it also works when
    pytest-benchmark is disabled)."""
    times: list[float] = []

    def wrapped():
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        times.append(time.perf_counter() - t)
        return out

    result = benchmark.pedantic(wrapped, rounds=rounds, iterations=1, warmup_rounds=0)
    if not times:  # benchmarks disabled and pedantic did not call: run once ourselves
        result = wrapped()
    return result, statistics.median(times)


# --- formatting -------------------------------------------------------------

def si(x: float, unit: str = "") -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    for div, pre in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g} {pre}{unit}"
    return f"{x:.3g} {unit}".rstrip()


def mib(b: float | None) -> str:
    return "n/a" if b is None or not math.isfinite(b) else f"{b / 2**20:.1f} MiB"


def _get(workload: str, name: str) -> Measurement | None:
    return MEASUREMENTS.get((workload, name))


def _ratio(a: Measurement | None, b: Measurement | None) -> float:
    if a is None or b is None:
        return math.nan
    return a.rate / b.rate


def goals() -> list[tuple[str, str, str, bool | None]]:
    """(goal, target, measured, ok) rows; ok None when not measured."""
    rows: list[tuple[str, str, str, bool | None]] = []
    eng = _get("W1", "engine sparse")
    for target_name, peer_name, target in (("NumPy peer", "numpy peer", 30.0),
                                           ("dense floor", "dense floor", 1.0)):
        r = _ratio(eng, _get("W1", peer_name))
        rows.append((f"W1 engine (sparse, 1 thread) vs {target_name}", f">= {target:g}x",
                     f"{r:.3g}x" if math.isfinite(r) else "not measured",
                     None if not math.isfinite(r) else r >= target))
    w2 = _get("W2", "sim.run default scenario")
    at_size = w2 is not None and w2.work == 100_000
    rows.append(("W2 default scenario, warm, 100 k paths", "< 2 s",
                 (f"{w2.seconds:.2f} s"
                  + ("" if at_size else f" at {w2.work:,.0f} paths (not the goal size)"))
                 if w2 else "not measured", w2.seconds < 2.0 if at_size else None))
    w3 = _get("W3", "cold start")
    w3_size = w3 is not None and w3.extra.get("n_paths") == 100_000
    rows.append(("W3 cold start (empty numba cache) to first result", "< 30 s",
                 (f"{w3.seconds:.1f} s" + ("" if w3_size else f" at {w3.extra.get('n_paths'):,} paths"))
                 if w3 else "not measured", (w3.seconds < 30.0) if w3_size else None))
    cells = [m for (w, _), m in MEASUREMENTS.items() if w == "W4" and m.role == "engine"]
    if cells:
        rates = [m.rate for m in cells]
        spread = max(rates) / min(rates) - 1.0
        rows.append(("W4 throughput across sizes (max/min - 1)", "<= 20 %",
                     f"{100 * spread:.0f} % ({si(min(rates))}..{si(max(rates))} loan-paths/s)",
                     spread <= 0.20))
        by_loans: dict[int, list[Measurement]] = {}
        for m in cells:
            by_loans.setdefault(m.extra["n_loans"], []).append(m)
        worst = 0.0
        parts = []
        for n_loans, ms in sorted(by_loans.items()):
            work = [m.extra.get("working_bytes") for m in ms if m.extra.get("working_bytes") is not None]
            if len(work) >= 2:
                gap = max(work) - min(work)
                rel = gap / max(max(work), 1.0)
                worst = max(worst, rel if gap > 32 * 2**20 else 0.0)
                parts.append(f"{n_loans:,} loans: {mib(min(work))}..{mib(max(work))}")
        if parts:
            rows.append(("W4 working memory (peak RSS growth - per-path outputs) vs path count",
                         "independent (< 25 % or < 32 MiB apart)", "; ".join(parts), worst < 0.25))
    for (w, name), m in MEASUREMENTS.items():
        if w == "W7" and "time_ratio" in m.extra:
            ratio = m.extra["time_ratio"]
            rows.append((f"W7 {name.split(':')[0]}: time to 10 % rel. error, plain MC / IS", ">= 100x",
                         f"{ratio:,.0f}x", ratio >= 100.0))
    return rows


def _w1_line() -> list[str] | None:
    eng = _get("W1", "engine sparse")
    if eng is None:
        return None
    peers = [m for m in (_get("W1", "numpy peer"), _get("W1", "financepy peer")) if m]
    floor = _get("W1", "dense floor")
    ratios = [f"{_ratio(eng, p):.3g}x {p.name}" for p in peers]
    if floor:
        ratios.append(f"{_ratio(eng, floor):.3g}x floor")
    return ["W1 kernel (sparse, 1 thr)", f"{si(eng.rate)} loan-paths/s",
            "; ".join(f"{p.name}: {si(p.rate)}" for p in peers) or "-",
            si(floor.rate) if floor else "-", "; ".join(ratios), "-"]


def summary_rows() -> list[list[str]]:
    """One row per measurement: workload | what | size | time | throughput | vs | memory."""
    rows = []
    ref = {"W1": _get("W1", "numpy peer")}
    floor = _get("W1", "dense floor")
    for (w, name), m in sorted(MEASUREMENTS.items(),
                               key=lambda kv: (kv[0][0], _ROLE_ORDER.get(kv[1].role, 9))):
        vs = ""
        if w == "W1" and m.role in ("engine", "diag"):
            parts = []
            if ref["W1"] is not None:
                parts.append(f"{_ratio(m, ref['W1']):.3g}x NumPy")
            if floor is not None:
                parts.append(f"{_ratio(m, floor):.3g}x floor")
            vs = ", ".join(parts)
        rows.append([w, f"{name} ({m.role})", m.size,
                     f"{m.seconds:.3g} s" + (f" x{m.rounds}" if m.rounds > 1 else ""),
                     f"{si(m.rate)} {m.unit}" if math.isfinite(m.work) else "-",
                     f"{m.threads}", vs, m.memory or "-"])
    return rows


_ROLE_ORDER = {"engine": 0, "diag": 1, "peer": 2, "floor": 3}
HEAD = ["workload", "what", "size", "time (median)", "throughput", "threads", "ratios", "memory"]


def _table(head: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        out += ["| " + " | ".join(str(c).replace("|", "/") for c in r) + " |" for r in rows]
        return out
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return ([fmt.format(*head), fmt.format(*("-" * w for w in widths))]
            + [fmt.format(*map(str, r)) for r in rows])


def render(markdown: bool = False) -> list[str]:
    lines: list[str] = []
    w1 = _w1_line()
    if w1:
        lines += ["W1 at a glance (ratios are throughput ratios, engine / other):"]
        lines += _table(["workload", "engine", "peers", "floor", "ratios", "memory"], [w1], markdown)
        lines.append("")
    lines += _table(HEAD, summary_rows(), markdown)
    g = goals()
    if g:
        lines += ["", "Goals:"]
        mark = {True: "MET", False: "NOT MET", None: "-"}
        lines += _table(["goal", "target", "measured", "verdict"],
                        [[a, b, c, mark[d]] for a, b, c, d in g], markdown)
    if NOTES:
        lines += ["", "Notes:"]
        lines += [f"- {n}" for n in NOTES]
    return lines


def machine() -> list[str]:
    import numba
    import numpy

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return [
        f"- date: {_dt.datetime.now().isoformat(timespec='seconds')}, wall time of the run "
        f"{time.time() - STARTED:.0f} s",
        f"- machine: {cpu}, {os.cpu_count()} logical CPUs, load average at start "
        f"{LOAD_AT_START[0]:.2f} (other work shares these CPUs: absolute figures are noisy, "
        "ratios measured in the same run less so)",
        f"- python {platform.python_version()}, numpy {numpy.__version__}, numba {numba.__version__}, "
        f"NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}",
        f"- command: `{' '.join(['python', '-m', 'pytest'] + sys.argv[1:])}`",
    ]


def write_markdown(path: Path = HERE / "RESULTS.md") -> Path:
    body = ["# riskpool benchmark results", "",
            "Written by `make bench` (benchmarks/conftest.py). Single-thread figures unless the "
            "threads column says otherwise; times are medians over the rounds shown.", ""]
    body += machine() + [""] + render(markdown=True) + [""]
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(body), encoding="utf-8")
    tmp.replace(path)
    return path
