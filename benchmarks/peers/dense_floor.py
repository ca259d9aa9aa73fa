"""The floor of any dense W1 method.

Per loan-path the least a method that touches every loan on every path can
do: one counter-based 32-bit random number, one compare with the loan's
conditional-PD threshold p_i(Z) = Phi((Phi^-1(p_i) - sqrt(rho) Z) / sqrt(1 - rho))
scaled to uint32, and a masked add of its amount. The inner loop is branch
free and LLVM vectorises it (AVX2: 8 lanes of vpmulld; check with
`floor_inner_is_vectorised()`).

To have thresholds that are "precomputed" per (loan, Z), the path's Z (drawn
exactly) is rounded to a grid of step 1/64 and the paths of a block are
processed in grid order, so each grid row of thresholds is computed once per
block (about 600 rows x n_loans Phi evaluations for 100 k paths; that cost is
inside the timing). Rounding Z by at most 1/128 moves a path's conditional
PDs by < 0.5 % relative, far inside the Monte Carlo error of the checks.

`fastmath=True` lets LLVM reassociate the float sum (needed to vectorise it);
this is a floor, not a reference: its results are not tested bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

Z_STEP = 1.0 / 64.0
_TWO32 = 4294967296.0


@njit(cache=True, inline="always")
def _fmix32(x):
    """MurmurHash3 finaliser on uint32 (full avalanche)."""
    x = np.uint32(x ^ (x >> np.uint32(16)))
    x = np.uint32(x * np.uint32(0x85EBCA6B))
    x = np.uint32(x ^ (x >> np.uint32(13)))
    x = np.uint32(x * np.uint32(0xC2B2AE35))
    return np.uint32(x ^ (x >> np.uint32(16)))


@njit(cache=True, inline="always")
def _splitmix(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _path_draws(key, path):
    """Per path: a 32-bit seed for the loans' hashes and the systematic factor
    Z ~ N(0, 1) (Box-Muller on two 53-bit uniforms), all from (key, path)."""
    golden = np.uint64(0x9E3779B97F4A7C15)
    z1 = _splitmix(np.uint64(key) + np.uint64(path + 1) * golden)
    z2 = _splitmix(z1 + golden)
    u1 = (float(z1 >> np.uint64(11)) + 0.5) / 9007199254740992.0
    u2 = (float(z2 >> np.uint64(11)) + 0.5) / 9007199254740992.0
    z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
    return np.uint32(_splitmix(z2 + golden) & np.uint64(0xFFFFFFFF)), z


@njit(cache=True, fastmath=True)
def _masked_sum(seed, thr, amount):
    """sum_i amount[i] * [hash(seed, i) < thr[i]]: the floor's whole per-loan work."""
    s = 0.0
    for i in range(thr.size):
        r = _fmix32(np.uint32(seed + np.uint32(i) * np.uint32(0x9E3779B9)))
        s += amount[i] if r < thr[i] else 0.0
    return s


@njit(cache=True)
def _threshold_row(c, a, b, z, out):
    for i in range(c.size):
        p = 0.5 * math.erfc(-((c[i] - a * z) / b) / math.sqrt(2.0))
        t = p * _TWO32
        out[i] = np.uint32(min(t, _TWO32 - 1.0))


@njit(cache=True)
def _floor_block(key, first_path, n_paths, c, amount, a, b, out):
    seeds = np.empty(n_paths, np.uint32)
    grid = np.empty(n_paths, np.int64)
    for p in range(n_paths):
        s, z = _path_draws(key, first_path + p)
        seeds[p] = s
        grid[p] = np.int64(math.floor(z / Z_STEP + 0.5))
    order = np.argsort(grid)
    thr = np.empty(c.size, np.uint32)
    current = np.int64(-(1 << 62))
    for j in range(n_paths):
        p = order[j]
        if grid[p] != current:
            current = grid[p]
            _threshold_row(c, a, b, current * Z_STEP, thr)
        out[p] = _masked_sum(seeds[p], thr, amount)


def floor_losses(pd: np.ndarray, amount: np.ndarray, rho: float, n_paths: int, seed: int,
                 block_size: int = 65536) -> np.ndarray:
    """Per-path total loss of the one-factor Gaussian copula, the floor way."""
    from statistics import NormalDist

    inv = NormalDist().inv_cdf
    c = np.array([inv(float(p)) for p in pd])
    amount = np.ascontiguousarray(amount, dtype=np.float64)
    key = np.uint64(np.random.SeedSequence(int(seed)).generate_state(1, dtype=np.uint64)[0])
    out = np.empty(n_paths)
    a, b = math.sqrt(rho), math.sqrt(1.0 - rho)
    for lo in range(0, n_paths, block_size):
        hi = min(n_paths, lo + block_size)
        _floor_block(key, lo, hi - lo, c, amount, a, b, out[lo:hi])
    return out


def warm() -> None:
    floor_losses(np.array([0.01, 0.02]), np.array([1.0, 2.0]), 0.1, 4, 1)


def floor_inner_is_vectorised() -> bool:
    """True when the compiled inner loop uses 8-lane integer multiplies (AVX2)."""
    warm()
    for asm in _masked_sum.inspect_asm().values():
        if "vpmulld" in asm and "ymm" in asm:
            return True
    return False
