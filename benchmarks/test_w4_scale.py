"""W4 scale: the W1 book (sparse sampler, one 12-month period) at 2 k, 20 k and
200 k loans x 10 k, 100 k and 1 M paths, each cell in a fresh subprocess
(benchmarks/_child.py), through the engine's loss-only run as W1: throughput
in loan-paths/s and the peak RSS growth of the `simulate_losses` call, split
into the per-path output it allocates by design (8 bytes a path) and the rest
(the "working" memory, which should not depend on the path count).

Cells are run smallest first. A cell whose estimated time (from the
throughput of the cells before it) exceeds RISKPOOL_BENCH_CELL_S (default
20 s) runs with fewer paths, rounded down to two significant digits, and the
table says so; below 1 000 paths, or when that would (nearly) repeat a cell
already run with the same loans, it is skipped, with a note.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from benchmarks._report import CACHE, MEASUREMENTS, Measurement, mib, note, record
from benchmarks.workloads import ROOT

pytestmark = [pytest.mark.benchmark(group="W4 scale"), pytest.mark.usefixtures("warm_numba")]

LOANS = (2_000, 20_000, 200_000)
PATHS = (10_000, 100_000, 1_000_000)
BUDGET_S = float(os.environ.get("RISKPOOL_BENCH_CELL_S", "20"))
MIN_PATHS = 1_000
FALLBACK_RATE = 15e6  # loan-paths/s, only if nothing has been measured yet


def _estimated_rate(n_loans: int) -> float:
    own = CACHE.get(f"w4rate:{n_loans}")
    if own:
        return own
    measured = [v for k, v in CACHE.items() if k.startswith("w4rate:")]
    if measured:
        return measured[-1]
    w1 = MEASUREMENTS.get(("W1", "engine sparse"))
    return w1.rate if w1 else FALLBACK_RATE


def _two_digits_down(x: float) -> int:
    if x < 1:
        return 0
    scale = 10 ** max(int(math.floor(math.log10(x))) - 1, 0)
    return int(x // scale * scale)


def _run_cell(n_loans: int, n_paths: int) -> dict:
    proc = subprocess.run([sys.executable, "-m", "benchmarks._child", "cell", str(n_loans), str(n_paths)],
                          cwd=ROOT, capture_output=True, text=True, timeout=max(600, 4 * BUDGET_S))
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert proc.returncode == 0 and line, proc.stderr[-3000:]
    return json.loads(line[len("RESULT "):])


def _id(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


@pytest.mark.parametrize("n_paths", PATHS, ids=lambda n: _id(n) + "_paths")
@pytest.mark.parametrize("n_loans", LOANS, ids=lambda n: _id(n) + "_loans")
def test_w4_cell(benchmark, n_loans, n_paths):
    label = f"{_id(n_loans)} loans x {_id(n_paths)} paths"
    rate = _estimated_rate(n_loans)
    estimate = n_loans * n_paths / rate
    run_paths = n_paths
    if estimate > BUDGET_S:
        run_paths = _two_digits_down(BUDGET_S * rate / n_loans)
        if run_paths < MIN_PATHS:
            msg = (f"W4 cell {label}: SKIPPED, estimated {estimate:.0f} s at {rate / 1e6:.1f} M loan-paths/s "
                   f"(budget {BUDGET_S:g} s; even {MIN_PATHS} paths would exceed it)")
            note(msg)
            pytest.skip(msg)
        done = [p for p in CACHE.setdefault(f"w4ran:{n_loans}", set()) if p >= 0.75 * run_paths]
        if done:
            msg = (f"W4 cell {label}: SKIPPED, estimated {estimate:.0f} s at {rate / 1e6:.1f} M loan-paths/s "
                   f"(budget {BUDGET_S:g} s); shrunk to {run_paths:,} paths it would repeat the "
                   f"{max(done):,}-path cell already run")
            note(msg)
            pytest.skip(msg)
        note(f"W4 cell {label}: estimated {estimate:.0f} s at {rate / 1e6:.1f} M loan-paths/s > budget "
             f"{BUDGET_S:g} s: ran {run_paths:,} paths instead of {n_paths:,}")
    out = benchmark.pedantic(_run_cell, args=(n_loans, run_paths), rounds=1, iterations=1)
    CACHE[f"w4rate:{n_loans}"] = out["loan_paths_per_s"]
    CACHE.setdefault(f"w4ran:{n_loans}", set()).add(run_paths)
    growth = out["peak_growth_bytes"]
    working = None if growth is None else growth - out["outputs_bytes"]
    size = f"{n_loans:,} loans x {run_paths:,} paths" + (
        f" (of {n_paths:,} requested)" if run_paths != n_paths else "")
    memory = (f"peak +{mib(growth)} = outputs {mib(out['outputs_bytes'])} + working {mib(working)}"
              + ("" if out["exact_peak"] else " (ru_maxrss bound)"))
    if working is not None and working < 0 and not CACHE.get("w4:negative-noted"):
        CACHE["w4:negative-noted"] = True
        note("W4: a negative 'working' memory means the call's peak RSS grew by less than its output "
             "arrays, i.e. the allocator reused memory freed earlier in the process (small cells only)")
    record(Measurement("W4", label, "engine", out["seconds"], 1, float(n_loans * run_paths), size=size,
                       memory=memory, extra={**out, "n_loans": n_loans, "requested_paths": n_paths,
                                             "working_bytes": working}))
    benchmark.extra_info.update(out)
