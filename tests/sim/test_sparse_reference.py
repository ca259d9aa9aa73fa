"""The sparse sampler against its definition, draw for draw.

The reference below takes a bucket's candidates one at a time, exactly as
the module docstring of `sim.engine.sampling` defines them: skip draw k of the bucket
gives floor(E rate) failures before the next candidate, acceptance draw k its
value u p_bar, and the candidate defaults iff Phi^-1(u p_bar) lies below its
own bound. It uses no squeeze and no batch. The engine must find the same
defaulting loans on every path: its batches, vector passes and squeezes may
change only the speed.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine import rng
from sim.engine.bucket_bounds import grid_cell
from sim.engine.lanes import loss_block
from sim.engine.plan import compile_plan
from sim.engine.run import run_key
from sim.engine.sampling import BATCH
from tests.helpers import equal_loans, make_scenario


def reference_defaults(plan, key: np.uint64, path: int) -> set[int]:
    """Plan loans defaulting on `path` (one-sector Gaussian plan, one period)."""
    z = rng.std_normal(key, path, rng.STREAM_SYSTEMATIC, 0)
    common = plan.load_systematic * z
    c = plan.load_idiosyncratic
    # as uint64: numba types a Python int below 2**63 as int64, and the hash
    # of a counter would then be another one
    skip, tail, accept = (np.uint64(rng.stream_base(key, path, stream))
                          for stream in (rng.STREAM_SKIP, rng.STREAM_SKIP_TAIL, rng.STREAM_ACCEPT))
    cell = grid_cell(common, plan.bucket_bounds.shape[0])
    assert cell >= 0
    out = set()
    for bucket in range(plan.bucket_threshold.size):
        p_bar, rate = plan.bucket_bounds[cell, bucket, :2]
        lo, size = plan.bucket_ptr[bucket], plan.bucket_ptr[bucket + 1] - plan.bucket_ptr[bucket]
        first = bucket << 32
        j, k = -1, 0
        while True:
            ratio = rng.exponential_at(skip, tail, first + k) * rate
            if not ratio < size - j - 1:
                break
            j += 1 + int(ratio)
            i = lo + j
            eps = rng.ndtri(rng.uniform_at(accept, first + k) * p_bar)
            if eps <= (plan.threshold[i] - common) / c:
                out.add(i)
            k += 1
    return out


@pytest.mark.parametrize("rho, pd_range", [(0.15, (0.25, 0.35)), (0.3, (0.005, 0.08))])
def test_engine_finds_the_defaults_of_the_one_by_one_definition(rho, pd_range):
    n_loans, n_paths = 400, 150
    pd = np.linspace(*pd_range, n_loans)
    plan = compile_plan(make_scenario(default={"rho_systematic": rho}), equal_loans(n_loans, pd), "sparse")
    if pd_range[0] > 0.2:  # buckets of several batches a path
        assert (np.diff(plan.bucket_ptr) * pd.max()).max() > 3 * BATCH
    key = run_key(9)
    losses = np.zeros((n_paths, n_loans))  # one segment per plan loan
    loss_block(plan, key, 0, np.arange(n_loans), losses, 1)
    for path in range(n_paths):
        assert set(np.flatnonzero(losses[path]).tolist()) == reference_defaults(plan, key, path)
