"""Same scenario and seed -> bit-identical Dataset, whatever the threads or block size."""

from __future__ import annotations

import pytest
import xarray as xr

import sim
from models.scenario import load_scenario

SCENARIO = "scenarios/shijiazhuang_score_loan.toml"


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(SCENARIO)


@pytest.fixture(scope="module")
def reference(scenario):
    return sim.run(scenario, n_paths=3000, threads=1, block_size=4096)


def test_thread_count_does_not_change_results(scenario, reference):
    xr.testing.assert_identical(reference, sim.run(scenario, n_paths=3000, threads=2, block_size=4096))


@pytest.mark.parametrize("block_size", [1, 100, 777])
def test_block_size_does_not_change_results(scenario, reference, block_size):
    xr.testing.assert_identical(reference, sim.run(scenario, n_paths=3000, threads=2, block_size=block_size))


def test_different_seeds_differ(scenario, reference):
    other = sim.run(scenario, n_paths=3000, seed=reference.attrs["seed"] + 1)
    assert float(other.gross_loss_mean) != float(reference.gross_loss_mean)


def test_student_t_and_dense_paths_are_reproducible_too(scenario):
    sc = load_scenario(SCENARIO, ["default.copula=\"student_t\"", "simulation.method=\"dense\""])
    a = sim.run(sc, n_paths=500, threads=1, block_size=64)
    b = sim.run(sc, n_paths=500, threads=2, block_size=500)
    xr.testing.assert_identical(a, b)
