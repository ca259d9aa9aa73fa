"""W1 kernel: 2 000 loans, PDs uniform in [0.5 %, 8 %], amounts uniform in
[1 M, 10 M], one-factor Gaussian copula rho = 0.15, one 12-month period, no
recovery; per-path total loss over W1_PATHS paths (default 20 000).

Engine = sim.engine.run.simulate_losses(compile_plan(scenario, portfolio, "sparse"),
...) with threads=1, the engine's loss-only run (also "dense", one 2-thread
figure, and the full engine with its waterfall, `simulate_paths`). Peers: the NumPy baseline,
the dense floor, financepy (when available). The last test is the
correctness gate: engine and NumPy peer agree on the mean and the 99 %
quantile within 4 combined standard errors.
"""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

from benchmarks._report import CACHE, Measurement, note, record, timed
from benchmarks.peers.dense_floor import floor_losses
from benchmarks.peers.numpy_peer import numpy_losses
from benchmarks.workloads import (
    ROOT,
    W1_PATHS,
    W1_SEED,
    agreement,
    engine_full_losses,
    engine_losses,
    summary,
    w1_expected_mean,
    w1_loans,
    w1_plan,
)

pytestmark = [pytest.mark.benchmark(group="W1 kernel"), pytest.mark.usefixtures("warm_numba")]

LOANS = w1_loans()
SIZE = f"{LOANS.n:,} loans x {W1_PATHS:,} paths"
WORK = float(LOANS.n * W1_PATHS)
FINANCEPY_TRIALS = int(os.environ.get("RISKPOOL_BENCH_FINANCEPY_TRIALS", "500"))


def _keep(name: str, losses: np.ndarray, m: Measurement) -> None:
    CACHE[f"w1:{name}"] = losses
    s = summary(losses)
    m.extra.update(mean=s["mean"], q99=s["q99"])


@pytest.mark.parametrize("method, rounds", [("sparse", 3), ("dense", 2)])
def test_w1_engine(benchmark, method, rounds):
    plan = w1_plan(LOANS, method)
    losses, sec = timed(benchmark, engine_losses, rounds, plan, W1_PATHS, W1_SEED, 1)
    m = record(Measurement("W1", f"engine {method}", "engine", sec, rounds, WORK, size=SIZE,
                           extra={"buckets": int(plan.bucket_threshold.size)}))
    _keep(f"engine {method}", losses, m)
    if method == "sparse":
        note("W1 'engine' rows time the engine's loss-only run "
             "(sim.engine.run.simulate_losses: the defaults, "
             "exposures and recoveries of sim.run, no waterfall); 'engine full waterfall' times "
             "simulate_paths, which is what the W1 engine row timed before the loss-only run existed")
    benchmark.extra_info.update(loan_paths_per_s=m.rate, mean=m.extra["mean"], q99=m.extra["q99"])


def test_w1_engine_two_threads(benchmark):
    from sim.engine.lanes import default_threads

    if default_threads() < 2:
        pytest.skip("NUMBA_NUM_THREADS < 2 (one CPU): no 2-thread figure")
    plan = w1_plan(LOANS, "sparse")
    losses, sec = timed(benchmark, engine_losses, 3, plan, W1_PATHS, W1_SEED, 2)
    m = record(Measurement("W1", "engine sparse, 2 threads", "engine", sec, 3, WORK, threads=2, size=SIZE))
    one = CACHE.get("w1:engine sparse")
    if one is not None:  # the engine's promise: bit-identical for any thread count
        assert np.array_equal(one, losses)
    benchmark.extra_info.update(loan_paths_per_s=m.rate)


def test_w1_engine_full_waterfall(benchmark):
    """The full engine on W1: default months, exposures, recoveries and the
    waterfall settled on every path (what `sim.run` does); same defaults as the
    loss-only run, so the same per-path gross loss."""
    plan = w1_plan(LOANS, "sparse")
    losses, sec = timed(benchmark, engine_full_losses, 2, plan, W1_PATHS, W1_SEED, 1)
    m = record(Measurement("W1", "engine full waterfall", "engine", sec, 2, WORK, size=SIZE))
    lean = CACHE.get("w1:engine sparse")
    if lean is not None:
        np.testing.assert_allclose(losses, lean, rtol=1e-12)
    benchmark.extra_info.update(loan_paths_per_s=m.rate)


def test_w1_numpy_peer(benchmark):
    losses, sec = timed(benchmark, numpy_losses, 3, LOANS.pd, LOANS.amount, LOANS.rho, W1_PATHS, W1_SEED + 1)
    m = record(Measurement("W1", "numpy peer", "peer", sec, 3, WORK, size=SIZE,
                           memory="chunks of 16 MiB"))
    _keep("numpy peer", losses, m)
    benchmark.extra_info.update(loan_paths_per_s=m.rate)


def test_w1_dense_floor(benchmark):
    losses, sec = timed(benchmark, floor_losses, 5, LOANS.pd, LOANS.amount, LOANS.rho, W1_PATHS, W1_SEED + 2)
    m = record(Measurement("W1", "dense floor", "floor", sec, 5, WORK, size=SIZE))
    _keep("dense floor", losses, m)
    benchmark.extra_info.update(loan_paths_per_s=m.rate)


def _financepy_subprocess(python: str) -> dict:
    cmd = [python, str(ROOT / "benchmarks" / "peers" / "financepy_peer.py"),
           str(LOANS.n), str(FINANCEPY_TRIALS), str(W1_SEED % 2**31)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        raise RuntimeError(f"financepy peer failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(line[len("RESULT "):])


def test_w1_financepy_peer(benchmark):
    """financepy.models.gauss_copula.default_times_gc on W1, 2 x FINANCEPY_TRIALS
    antithetic paths (its Python loop over credits x trials is slow: fewer
    paths, same loans). Runs in-process when financepy imports here, else in
    RISKPOOL_FINANCEPY_PYTHON when that interpreter is given."""
    python = os.environ.get("RISKPOOL_FINANCEPY_PYTHON")
    if python:
        out = benchmark.pedantic(_financepy_subprocess, args=(python,), rounds=1, iterations=1)
        losses, sec, version = np.asarray(out["losses"]), out["seconds"], out["version"]
        where = "subprocess, RISKPOOL_FINANCEPY_PYTHON"
    else:
        pytest.importorskip("financepy", reason="financepy not installed (optional external peer)")
        from importlib.metadata import version as _version

        from benchmarks.peers.financepy_peer import financepy_losses

        financepy_losses(LOANS.pd[:2], LOANS.amount[:2], LOANS.rho, 2, 1)  # its numba warm-up
        losses, sec = timed(benchmark, financepy_losses, 1, LOANS.pd, LOANS.amount, LOANS.rho,
                            FINANCEPY_TRIALS, W1_SEED % 2**31)
        version, where = _version("financepy"), "in-process"
    n_paths = losses.size
    m = record(Measurement("W1", "financepy peer", "peer", sec, 1, float(LOANS.n * n_paths),
                           size=f"{LOANS.n:,} loans x {n_paths:,} paths (antithetic pairs)",
                           extra={"version": version}))
    _keep("financepy peer", losses, m)
    note(f"financepy {version} ({where}): default_times_gc(curves, corr, num_trials={FINANCEPY_TRIALS}, "
         f"seed) with a full {LOANS.n}x{LOANS.n} correlation matrix; {n_paths} paths")
    benchmark.extra_info.update(loan_paths_per_s=m.rate, version=version)


def test_w1_engine_agrees_with_numpy_peer(benchmark):
    """Correctness gate: engine (sparse and dense) vs the NumPy peer, mean and
    99 % quantile within 4 combined standard errors; also each against the
    exact mean sum(pd * amount). The dense floor and financepy are reported,
    not gated (the floor rounds Z to a 1/64 grid; financepy's paths are
    antithetic pairs)."""
    def sample(name, make):
        if f"w1:{name}" not in CACHE:
            CACHE[f"w1:{name}"] = make()
        return CACHE[f"w1:{name}"]

    peer = sample("numpy peer",
                  lambda: numpy_losses(LOANS.pd, LOANS.amount, LOANS.rho, W1_PATHS, W1_SEED + 1))
    exact = w1_expected_mean(LOANS)
    failures = []

    def check():
        for method in ("sparse", "dense"):
            eng = sample(f"engine {method}", lambda m=method: engine_losses(w1_plan(LOANS, m), W1_PATHS))
            ok, msg = agreement(eng, peer)
            note(f"W1 gate, engine {method} vs NumPy peer: {msg}")
            if not ok:
                failures.append(f"engine {method}: {msg}")
            s = summary(eng)
            if abs(s["mean"] - exact) > 4 * s["mean_se"]:
                failures.append(f"engine {method} mean {s['mean']:.6g} vs exact {exact:.6g}")
        for name in ("dense floor", "financepy peer"):
            other = CACHE.get(f"w1:{name}")
            if other is not None:
                ok, msg = agreement(other, peer)
                note(f"W1 check (not gated), {name} vs NumPy peer: {msg}")

    benchmark.pedantic(check, rounds=1, iterations=1)
    s = summary(peer)
    assert abs(s["mean"] - exact) < 4 * s["mean_se"], (s, exact)
    assert not failures, "; ".join(failures)
