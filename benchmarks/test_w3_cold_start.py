"""W3: W2 in a fresh process with an empty numba cache (NUMBA_CACHE_DIR set
to a new temporary folder): wall time from starting the interpreter to the
first Dataset. Goal < 30 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

from benchmarks._report import Measurement, note, record
from benchmarks.workloads import DEFAULT_SCENARIO, ROOT

pytestmark = pytest.mark.benchmark(group="W3 cold start")

N_PATHS = int(os.environ.get("RISKPOOL_BENCH_W2_PATHS", "100000"))


def _cold_run() -> dict:
    with tempfile.TemporaryDirectory(prefix="riskpool-numba-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks._child", "cold", str(DEFAULT_SCENARIO), str(N_PATHS)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        wall = time.perf_counter() - t
        assert os.listdir(cache), "the child wrote nothing to NUMBA_CACHE_DIR: was the cache really cold?"
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert proc.returncode == 0 and line, proc.stderr[-3000:]
    out = json.loads(line[len("RESULT "):])
    out["process_wall_s"] = wall
    return out


def test_w3_cold_start(benchmark):
    out = benchmark.pedantic(_cold_run, rounds=1, iterations=1)
    # time to first result = interpreter start-up + imports + compile + run;
    # the child's own clock starts after the interpreter is up, so use the
    # parent's wall clock minus the second (warm) run the child does after.
    first = out["process_wall_s"] - out["warm_run_s"]
    compile_s = out["first_result_s"] - out["import_s"] - out["warm_run_s"]
    record(Measurement("W3", "cold start", "engine", first, 1, size=f"default scenario, {N_PATHS:,} paths",
                       extra=out))
    note(f"W3 breakdown: imports {out['import_s']:.1f} s, numba compilation ~{compile_s:.1f} s "
         f"(first result {out['first_result_s']:.1f} s minus a warm run of {out['warm_run_s']:.1f} s)")
    benchmark.extra_info.update(**out)
