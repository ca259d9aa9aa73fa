"""Subprocess bodies for the benchmarks that need a fresh process.

    python -m benchmarks._child cold SCENARIO N_PATHS
        W3: import, load the scenario, `sim.run` to the Dataset (threads=1), in
        whatever NUMBA_CACHE_DIR the parent set (a fresh, empty one).
    python -m benchmarks._child cell N_LOANS N_PATHS
        W4: build the W1 plan with N_LOANS loans (sparse), warm the kernels on
        a few paths, then time the loss-only run `simulate_losses` over N_PATHS
        paths (threads=1)
        and measure the peak RSS growth of that call alone (Linux: VmHWM reset
        through /proc/self/clear_refs; elsewhere ru_maxrss, an upper bound).

Each prints one line `RESULT {json}` on stdout.
"""

from __future__ import annotations

import json
import resource
import sys
import time

T0 = time.perf_counter()


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _trim_heap() -> None:
    """Give freed heap memory back to the OS (glibc), so RSS is live memory and
    the measured call's own allocations show as growth."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _rss_bytes() -> int:
    kib = _status_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    import psutil

    return int(psutil.Process().memory_info().rss)


def _peak_bytes() -> int:
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def cold(scenario: str, n_paths: int) -> dict:
    import sim
    from models.scenario import load_scenario

    t_import = time.perf_counter() - T0
    sc = load_scenario(scenario)
    ds = sim.run(sc, n_paths=n_paths, threads=1)
    t_first = time.perf_counter() - T0
    t1 = time.perf_counter()
    sim.run(sc, n_paths=n_paths, threads=1)  # the same again, now compiled: what remains is run time
    t_warm = time.perf_counter() - t1
    return {"import_s": t_import, "first_result_s": t_first, "warm_run_s": t_warm,
            "n_paths": n_paths, "n_vars": len(ds.data_vars)}


def cell(n_loans: int, n_paths: int) -> dict:
    from benchmarks.workloads import engine_losses, w1_loans, w1_plan

    engine_losses(w1_plan(w1_loans(50), "sparse"), 64)  # load the cached kernels on a tiny book, so
    # the big book's scratch arrays are first allocated inside the measured call
    loans = w1_loans(n_loans)
    plan = w1_plan(loans, "sparse")
    outputs = n_paths * 8  # the per-path loss, float64
    import gc

    gc.collect()
    _trim_heap()
    exact = _reset_peak()
    rss0 = _rss_bytes()
    peak_before = _peak_bytes()
    t = time.perf_counter()
    losses = engine_losses(plan, n_paths, threads=1)
    seconds = time.perf_counter() - t
    peak = _peak_bytes()
    growth = peak - rss0 if exact or peak > peak_before else None
    return {"n_loans": n_loans, "n_paths": n_paths, "seconds": seconds,
            "loan_paths_per_s": n_loans * n_paths / seconds,
            "peak_growth_bytes": growth, "outputs_bytes": outputs, "exact_peak": exact,
            "mean_loss": float(losses.mean())}


if __name__ == "__main__":
    what, *args = sys.argv[1:]
    result = cold(args[0], int(args[1])) if what == "cold" else cell(int(args[0]), int(args[1]))
    print("RESULT " + json.dumps(result), flush=True)
