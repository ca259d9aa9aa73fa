"""Benchmark session set-up: single-thread BLAS, numba warmed once, and the
summary table printed at the end (and written to benchmarks/latest.md).

Run with `make bench`, i.e.
    python -m pytest benchmarks --benchmark-only --benchmark-json=benchmarks/latest.json
Knobs (environment): RISKPOOL_BENCH_W1_PATHS (default 20000), RISKPOOL_BENCH_W2_PATHS,
RISKPOOL_BENCH_CELL_S (W4 per-cell time budget, default 20 s),
RISKPOOL_BENCH_RESULTS (where to write the markdown summary; by default the
untracked benchmarks/latest.md, and only when W1-W4 all ran; `make
bench-record` writes the tracked benchmarks/RESULTS.md),
RISKPOOL_FINANCEPY_PYTHON (an interpreter with financepy installed, for the
financepy peer without installing it in this venv).
"""

from __future__ import annotations

import os

# Before NumPy loads: one BLAS thread, so the NumPy peer is single-threaded too.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from benchmarks import _report  # noqa: E402


@pytest.fixture(scope="session")
def warm_numba():
    """Compile (or load from the numba cache) everything the timed calls use."""
    t = time.perf_counter()
    import sim
    from benchmarks.peers import dense_floor
    from benchmarks.workloads import DEFAULT_SCENARIO, engine_full_losses, engine_losses, w1_loans, w1_plan
    from models.scenario import load_scenario

    loans = w1_loans(50)
    for method in ("sparse", "dense"):
        plan = w1_plan(loans, method)
        engine_losses(plan, 70, threads=1)
        engine_losses(plan, 70, threads=2)
        engine_full_losses(plan, 70, threads=1)
    dense_floor.warm()
    sim.run(load_scenario(DEFAULT_SCENARIO), n_paths=70, threads=1)
    seconds = time.perf_counter() - t
    _report.note(f"session warm-up (numba cache load or compile) took {seconds:.1f} s")
    return seconds


@pytest.fixture
def report():
    return _report


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _report.MEASUREMENTS:
        return
    tr = terminalreporter
    tr.section("riskpool benchmark summary")
    for line in _report.render():
        tr.write_line(line)
    forced = os.environ.get("RISKPOOL_BENCH_RESULTS")
    measured = {w for w, _ in _report.MEASUREMENTS}
    if not forced and not {"W1", "W2", "W3", "W4"} <= measured:
        tr.write_line("\nbenchmarks/latest.md not written: "
                      f"partial run ({', '.join(sorted(measured))} only); "
                      "set RISKPOOL_BENCH_RESULTS=<path> to write this run's summary somewhere")
        return
    try:
        path = _report.write_markdown(Path(forced) if forced else _report.HERE / "latest.md")
        tr.write_line(f"\nwrote {path}")
    except OSError as exc:  # pragma: no cover - read-only checkout
        tr.write_line(f"\ncould not write the summary: {exc}")
