"""Diagnostic kernels: parts of the engine timed on their own, to say where
W1's time goes. They call the engine's own njit functions (nothing copied),
single-threaded.

- `sampler_losses`: factors + the default sampler (sparse or dense, as the
  plan says) + summing defaulted amounts; no exposure/recovery/waterfall.
  The engine's W1 time minus this is the cost of `_simulate_path`'s
  per-default work (exposure, recovery) and `settle_path`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.kernels import draw_factors, sample_defaults_dense, sample_defaults_sparse


@njit(cache=True)
def _sampler_block(plan, key, n_paths, out, counts):
    n_loans = plan.amount.size
    sector_factor = np.zeros(max(plan.n_sectors, 1))
    def_loan = np.zeros(n_loans, np.int64)
    def_month = np.zeros(n_loans, np.int64)
    for p in range(n_paths):
        z, sqrt_w = draw_factors(plan, key, p, sector_factor)
        if plan.sparse:
            n = sample_defaults_sparse(plan, key, p, z, sector_factor, sqrt_w, def_loan, def_month)
        else:
            n = sample_defaults_dense(plan, key, p, z, sector_factor, sqrt_w, def_loan, def_month)
        s = 0.0
        for k in range(n):
            s += plan.amount[def_loan[k]]
        out[p] = s
        counts[p] = n


def sampler_losses(plan, n_paths: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sim.engine import run_key

    out = np.empty(n_paths)
    counts = np.empty(n_paths, np.int64)
    _sampler_block(plan, run_key(seed), n_paths, out, counts)
    return out, counts
