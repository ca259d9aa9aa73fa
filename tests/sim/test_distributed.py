"""Distributed runs (sim.scale.executor) against the in-process engine: identical
Datasets bit for bit, also when a worker is killed mid-run; sweeps identical
to run_sweep; a clear message without Dask."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import xarray as xr

import sim
import sim.scale.executor as distributed_mod
from sim.engine.outputs import output_bytes
from sim.engine.run import RunSpec
from sim.scale.executor import ENV_ADDRESS, client_for, resolve_scheduler
from sim.scale.sweep import run_sweep
from tests.helpers import make_scenario, streamed_pair

needs_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                reason="needs dask[distributed] (pip install riskpool[dask])")
TIMEOUT = 120  # seconds: no test here may wait longer for a run
N_PATHS = 2000


def scenario(n_firms: int = 200, tail: str = "off"):
    return make_scenario(
        portfolio={"synthetic": {"n_firms": n_firms, "seed": 1}},
        default={"rho_systematic": 0.1, "rho_sector": 0.05},
        contract={"shares": {"loan": {"bank": 0.3, "pool": 0.3, "guarantor": 0.4}},
                  "pool": {"size": 5e6}},
        simulation={"horizon_months": 24, "period_months": 3, "block_size": 512, "tail": tail},
    )


@pytest.fixture(scope="module")
def client():
    """One LocalCluster for the module, made by client_for("local") itself
    (2 worker processes, 1 thread each); closed at the end."""
    pytest.importorskip("distributed")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(distributed_mod, "_local_workers", lambda: 2)
        with client_for("local") as c:
            c.wait_for_workers(2, timeout=60)
            yield c


def _block_runs_since(dask_scheduler, t0: float) -> dict:
    """How many times each block task went to `processing` since t0."""
    runs: dict = {}
    for t in dask_scheduler.transition_log:
        if t.timestamp >= t0 and t.finish == "processing" and str(t.key).startswith("riskpool-block-"):
            runs[t.key] = runs.get(t.key, 0) + 1
    return runs


def _riskpool_tasks_left(client, wait_s: float = 30.0) -> list:
    """riskpool's tasks still known to the scheduler, once it has had up to
    `wait_s` seconds to process the client's releases and cancellations."""
    deadline = time.monotonic() + wait_s
    while True:
        left = client.run_on_scheduler(
            lambda dask_scheduler: [k for k in dask_scheduler.tasks if str(k).startswith("riskpool-")])
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


@needs_dask
def test_run_is_identical_to_in_process(client):
    sc = scenario()
    reference = sim.run(sc, n_paths=N_PATHS, seed=5)  # block_size 512 from the scenario
    seen = []
    ds = sim.run(sc, n_paths=N_PATHS, seed=5, block_size=250, scheduler=client,
                         progress=seen.append, timeout=TIMEOUT)
    xr.testing.assert_identical(ds, reference)
    assert sorted(seen) == [250] * 8
    # The comparison can fail: another seed gives another Dataset.
    other = sim.run(sc, n_paths=N_PATHS, seed=6, block_size=250, scheduler=client, timeout=TIMEOUT)
    with pytest.raises(AssertionError):
        xr.testing.assert_identical(other, reference)
    # Nothing is left on the cluster once the run returns (releases reach the
    # scheduler asynchronously, so allow it a moment to forget them).
    assert _riskpool_tasks_left(client) == []


@needs_dask
def test_an_importance_sampled_run_is_identical_to_in_process(client):
    sc = scenario(tail="pool_dry")
    reference = sim.run(sc, n_paths=N_PATHS, seed=5)
    assert reference.attrs["effective_paths"] < N_PATHS  # weighted: importance sampling is on
    ds = sim.run(sc, n_paths=N_PATHS, seed=5, block_size=300, scheduler=client, timeout=TIMEOUT)
    xr.testing.assert_identical(ds, reference)


@needs_dask
def test_sweep_is_identical_to_run_sweep(client, monkeypatch):
    sc = scenario()
    grid = {"contract.pool.size": [2e6, 8e6], "default.rho_systematic": [0.05, 0.15]}
    reference = run_sweep(sc, grid, n_paths=500, seed=3)
    # Through the scheduler address in $DASK_SCHEDULER_ADDRESS (a Client(address) of its own).
    monkeypatch.setenv(ENV_ADDRESS, client.scheduler.address)
    seen = []
    ds = run_sweep(sc, grid, n_paths=500, seed=3, scheduler="env", progress=seen.append,
                           block_size=125, timeout=TIMEOUT)
    xr.testing.assert_identical(ds, reference)
    assert sum(seen) == 4 * 500 and len(seen) == 4 * 4


def test_sweep_in_waves_of_bounded_memory_is_identical(client, monkeypatch):
    import sim.scale.sweep as sweep_mod

    sc = scenario()
    grid = {"contract.pool.size": [2e6, 4e6, 8e6]}
    reference = run_sweep(sc, grid, n_paths=400, seed=5)
    waves = []
    simulate_runs = sweep_mod.simulate_runs
    monkeypatch.setattr(sweep_mod, "simulate_runs",
                        lambda specs, **kw: waves.append(len(specs)) or simulate_runs(specs, **kw))
    one_point = _one_point_bytes(sc, 400)
    ds = run_sweep(sc, grid, n_paths=400, seed=5, scheduler=client, timeout=TIMEOUT,
                           memory_bytes=2 * one_point)
    assert waves == [2, 1]  # at most two points' per-path arrays in memory at once
    xr.testing.assert_identical(ds, reference)


def _one_point_bytes(sc, n_paths: int) -> int:
    spec = RunSpec.resolve(sc, n_paths=n_paths)
    return output_bytes(spec.n_periods, spec.n_paths)


def _interrupt(n):
    raise KeyboardInterrupt


@needs_dask
@pytest.mark.parametrize(("error", "kwargs"), [
    (KeyboardInterrupt, {"progress": _interrupt, "timeout": TIMEOUT}),  # Ctrl-C while gathering
    (TimeoutError, {"timeout": 1e-3}),
])
def test_interrupted_run_cancels_its_blocks(client, error, kwargs):
    with pytest.raises(error):
        sim.run(scenario(), n_paths=N_PATHS, seed=8, block_size=100, scheduler=client, **kwargs)
    assert _riskpool_tasks_left(client) == []


@needs_dask
def test_killed_worker_gives_the_identical_result(client):
    """SIGKILL a worker while blocks run: its blocks run again elsewhere (or on
    the restarted worker) and the Dataset is still identical to sim.run."""
    sc = scenario(n_firms=3000)
    n_paths, block_size = 4000, 100  # 40 small blocks, so the kill lands mid-run
    reference = sim.run(sc, n_paths=n_paths, seed=11)
    pids = client.run(os.getpid)
    done: list[int] = []
    result: dict = {}

    def target():
        try:
            result["ds"] = sim.run(sc, n_paths=n_paths, seed=11, block_size=block_size,
                                           scheduler=client, progress=done.append, timeout=TIMEOUT)
        except BaseException as exc:  # reported below
            result["error"] = exc

    t0 = time.time()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while sum(done) < n_paths // 4 and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.002)
    assert thread.is_alive() and sum(done) < n_paths, "the run ended before a worker could be killed"
    victim = sorted(pids)[0]
    os.kill(pids[victim], signal.SIGKILL)
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "the run hung after a worker was killed"
    assert "error" not in result, result.get("error")
    xr.testing.assert_identical(result["ds"], reference)
    assert sum(done) == n_paths
    runs = client.run_on_scheduler(_block_runs_since, t0=t0)
    assert len(runs) == n_paths // block_size
    assert max(runs.values()) >= 2, "no block was interrupted by the kill: the test proved nothing"
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker


def test_client_for_without_dask_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(RuntimeError, match=r"pip install riskpool\[dask\]"):
        with client_for("local"):
            pass


def test_module_imports_without_dask():
    code = ("import sys; sys.modules['dask'] = sys.modules['distributed'] = None; "
            "import sim.scale.executor as d; print(d.resolve_scheduler(None))")
    env = {**os.environ, "DASK_SCHEDULER_ADDRESS": ""}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))), env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "None"


def test_scheduler_rule(monkeypatch):
    monkeypatch.delenv(ENV_ADDRESS, raising=False)
    assert resolve_scheduler(None) is None
    assert resolve_scheduler("local") == "local"
    monkeypatch.setenv(ENV_ADDRESS, "tcp://10.0.0.1:8786")
    assert resolve_scheduler(None) == "tcp://10.0.0.1:8786"
    assert resolve_scheduler("local") == "local"
    with pytest.raises(ValueError, match="in process"):
        with client_for(None):
            pass


def test_cli_with_a_local_cluster_writes_the_same_results(tmp_path):
    from click.testing import CliRunner

    from sim.cli import cli
    from sim.results.io import read_netcdf

    args = ["run", "scenarios/shijiazhuang_score_loan.toml", "--paths", "1500", "--quiet"]
    here = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "here")])
    there = CliRunner().invoke(cli, [*args, "--scheduler", "local", "--out", str(tmp_path / "there")])
    assert here.exit_code == 0 and there.exit_code == 0, (here.output, there.output)
    xr.testing.assert_identical(read_netcdf(tmp_path / "here" / "results.nc"),
                                read_netcdf(tmp_path / "there" / "results.nc"))
    for name in ("summary.json", "summary.csv", "scenario.toml"):
        assert (tmp_path / "here" / name).read_bytes() == (tmp_path / "there" / name).read_bytes()


@needs_dask
def test_optimizer_scenarios_on_the_cluster_are_identical(client):
    import numpy as np

    from models.scenario import Shares, load_scenario
    from sim.engine.plan import build_portfolio
    from sim.optimizer.segments import segment_losses

    sc = load_scenario("scenarios/shijiazhuang_score_loan.toml")
    pf = build_portfolio(sc)
    options = {"own": sc.contract.shares["score_loan"], "bank20_pool80": Shares(bank=0.2, pool=0.8)}
    here = segment_losses(sc, pf, options, [0, 600, 1000], n_paths=1500, seed=4)
    there = segment_losses(sc, pf, options, [0, 600, 1000], n_paths=1500, seed=4, scheduler=client)
    np.testing.assert_array_equal(here.party_loss, there.party_loss)
    np.testing.assert_array_equal(here.public_costs, there.public_costs)


def test_sweep_into_a_zarr_store_is_identical(client, tmp_path):
    pytest.importorskip("zarr")
    sc = scenario()
    grid = {"contract.pool.size": [2e6, 4e6, 8e6]}
    reference = run_sweep(sc, grid, n_paths=400, seed=5)
    one_point = _one_point_bytes(sc, 400)
    ds = run_sweep(sc, grid, n_paths=400, seed=5, scheduler=client, timeout=TIMEOUT,
                           memory_bytes=2 * one_point, store=tmp_path / "sweep.zarr")
    xr.testing.assert_identical(ds.load(), reference)
    xr.testing.assert_identical(xr.open_zarr(tmp_path / "sweep.zarr").load(), reference)


@needs_dask
def test_back_to_back_runs_of_one_plan_do_not_lose_it(client):
    """A run right after an identical one must not share its scattered plan's
    key while the scheduler is still forgetting it (with content-hashed keys
    about half of such runs failed with "Key lost during replication")."""
    sc = scenario()
    first = [sim.run(sc, n_paths=N_PATHS, seed=5 + i % 2, block_size=250, scheduler=client,
                             timeout=TIMEOUT) for i in range(30)]
    for i, ds in enumerate(first[2:], start=2):
        xr.testing.assert_identical(ds, first[i % 2])


def test_a_streamed_run_on_dask_is_the_in_process_one(client):
    """Past its memory budget a run streams; on Dask its chunks run in waves and are reduced in path
    order: the same bits as in process."""
    small, _, n = streamed_pair([], on_dask=True)
    assert RunSpec.resolve(small, n_paths=n).streamed
    here = sim.run(small, n_paths=n, seed=4)
    there = sim.run(small, n_paths=n, seed=4, scheduler=client, timeout=TIMEOUT)
    xr.testing.assert_identical(there, here)
