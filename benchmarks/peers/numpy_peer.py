"""The straightforward vectorised NumPy W1 a user would write: one latent
variable per loan and path, X = sqrt(rho) Z + sqrt(1 - rho) eps, default when
X <= Phi^-1(p_i), and the per-path loss as a matrix product of the default
indicators with the amounts. Paths go in chunks so memory stays bounded
(about `chunk_bytes` per temporary array).

This is the baseline every speed-up is quoted against. Run it with BLAS on
one thread (OPENBLAS_NUM_THREADS=1 etc., set by benchmarks/conftest.py before
NumPy loads) for single-thread figures.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np


def numpy_losses(pd: np.ndarray, amount: np.ndarray, rho: float, n_paths: int, seed: int,
                 chunk_bytes: int = 16 * 2**20) -> np.ndarray:
    """Per-path total loss of the one-factor Gaussian copula with zero recovery."""
    rng = np.random.default_rng(seed)
    inv = NormalDist().inv_cdf
    threshold = np.array([inv(float(p)) for p in pd])
    amount = np.asarray(amount, dtype=np.float64)
    n_loans = threshold.size
    chunk = max(1, chunk_bytes // (8 * n_loans))
    a, b = math.sqrt(rho), math.sqrt(1.0 - rho)
    out = np.empty(n_paths)
    for lo in range(0, n_paths, chunk):
        m = min(chunk, n_paths - lo)
        z = rng.standard_normal(m)
        x = rng.standard_normal((m, n_loans))
        x *= b
        x += a * z[:, None]
        defaulted = (x <= threshold).astype(np.float64)
        out[lo:lo + m] = defaulted @ amount
    return out
