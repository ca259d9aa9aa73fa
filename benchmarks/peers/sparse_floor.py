"""A lean exact sparse sampler for W1 only: what the engine's sparse method
could cost if a one-period, zero-recovery, bank-only book took a fast path.

Same algorithm as sim.kernels.sample_defaults_sparse (buckets of close
thresholds; per bucket, candidates by geometric skips at the bucket's highest
conditional PD p_max; each kept with probability p_i / p_max), minus what W1
does not need: no default month, no idiosyncratic draw, no recovery, no
waterfall, plus a squeeze: a candidate whose acceptance uniform is below the
bucket's lowest conditional PD p_min is kept without evaluating its own p_i.
Per path: 2 Phi per bucket; per candidate: 2 hashes, 1 log, rarely a Phi.

A diagnostic, not a reference: it shows where the sparse method's floor is on
W1 (cost ~ buckets + defaults, not loans).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, inline="always")
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def _u01(bits):
    return (float(bits >> np.uint64(11)) + 0.5) / 9007199254740992.0


@njit(cache=True, inline="always")
def _phi(x):
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@njit(cache=True)
def _block(key, first, n_paths, ptr, c_lo, c_hi, c, amount, a, b, out):
    for q in range(n_paths):
        base = _mix(np.uint64(key) + np.uint64(first + q + 1) * _GOLDEN)
        z1 = _mix(base + _GOLDEN)
        z2 = _mix(z1 + _GOLDEN)
        z = math.sqrt(-2.0 * math.log(_u01(z1))) * math.cos(2.0 * math.pi * _u01(z2))
        az = a * z
        s = 0.0
        counter = base
        for k in range(ptr.size - 1):
            p_max = _phi((c_hi[k] - az) / b)
            if p_max <= 0.0:
                continue
            p_min = _phi((c_lo[k] - az) / b)
            log_q = math.log1p(-p_max)
            lo = ptr[k]
            size = ptr[k + 1] - lo
            j = -1.0
            while True:
                counter = counter + _GOLDEN
                bits = _mix(counter)
                skip = math.floor(math.log(_u01(bits)) / log_q)
                j += 1.0 + skip
                if j >= size:
                    break
                i = lo + int(j)
                v = _u01(_mix(bits)) * p_max
                if v <= p_min or v <= _phi((c[i] - az) / b):
                    s += amount[i]
        out[q] = s


def sparse_floor_losses(pd: np.ndarray, amount: np.ndarray, rho: float, n_paths: int, seed: int,
                        width: float = 0.05) -> np.ndarray:
    from statistics import NormalDist

    inv = NormalDist().inv_cdf
    c = np.array([inv(float(p)) for p in pd])
    order = np.argsort(c, kind="stable")
    c, amount = c[order], np.asarray(amount, float)[order]
    ptr = [0]
    while ptr[-1] < c.size:
        ptr.append(int(np.searchsorted(c, c[ptr[-1]] + width, side="right")))
    ptr = np.asarray(ptr, np.int64)
    c_lo, c_hi = c[ptr[:-1]], c[ptr[1:] - 1]
    key = np.random.SeedSequence(int(seed)).generate_state(1, dtype=np.uint64)[0]
    out = np.empty(n_paths)
    _block(key, 0, n_paths, ptr, c_lo, c_hi, c, amount, math.sqrt(rho), math.sqrt(1.0 - rho), out)
    return out


def warm() -> None:
    sparse_floor_losses(np.array([0.01, 0.02]), np.array([1.0, 2.0]), 0.1, 4, 1)
