"""W1 correctness at a small size (runs in a few seconds once numba's cache is
warm): the engine's per-path total loss on a heterogeneous one-factor book
has the distribution of the straightforward NumPy implementation (mean and
99 % quantile within 4 combined standard errors), and its mean matches the
exact sum(pd * amount).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from models.portfolio import Portfolio
from models.scenario import scenario_from_mapping
from sim.engine.plan import compile_plan
from sim.engine.run import simulate_paths

N_LOANS = 500
N_PATHS = 20_000
RHO = 0.15


def book(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.005, 0.08, n), rng.uniform(1e6, 10e6, n)


def one_period_plan(pd: np.ndarray, amount: np.ndarray, method: str):
    scenario = scenario_from_mapping({
        "name": "w1-small",
        "portfolio": {"synthetic": {"n_firms": 10, "seed": 1, "products": {"loan": 1.0}}},
        "default": {"rho_systematic": RHO, "rho_sector": 0.0},
        "products": {"loan": {"recovery_mean": 0.0, "recovery_lag_months": 0}},
        "contract": {"shares": {"loan": {"bank": 1.0}}},
        "simulation": {"horizon_months": 12, "period_months": 12, "n_paths": 1000, "seed": 7},
    }, source="<w1-small>")
    n = pd.size
    idx = np.arange(n)
    portfolio = Portfolio(
        loan_id=np.array([f"L{i}" for i in idx], dtype=object),
        firm_id=np.array([f"F{i}" for i in idx], dtype=object),
        score=np.full(n, 500.0), stage=np.ones(n, np.int8), sector=np.zeros(n, np.int32),
        amount=amount.astype(float), term_months=np.full(n, 12, np.int32),
        start_month=np.zeros(n, np.int32), product=np.zeros(n, np.int32),
        pd_annual=pd.astype(float), rate=np.full(n, np.nan), recovery=np.zeros(n),
        sector_names=("all",), product_names=("loan",),
    )
    return compile_plan(scenario, portfolio, method)


def numpy_losses(pd, amount, rho, n_paths, seed, chunk=2048):
    """Latent variables for all loans, threshold, matrix product with amounts."""
    rng = np.random.default_rng(seed)
    c = np.array([NormalDist().inv_cdf(float(p)) for p in pd])
    out = np.empty(n_paths)
    for lo in range(0, n_paths, chunk):
        m = min(chunk, n_paths - lo)
        x = (math.sqrt(rho) * rng.standard_normal(m)[:, None]
             + math.sqrt(1 - rho) * rng.standard_normal((m, pd.size)))
        out[lo:lo + m] = (x <= c).astype(float) @ amount
    return out


def q_and_se(x: np.ndarray, q: float) -> tuple[float, float]:
    """Empirical quantile L[ceil(n q) - 1] and its distribution-free 1-sigma band."""
    s = np.sort(x)
    n = s.size
    half = math.sqrt(n * q * (1 - q))
    lo = min(max(math.floor(n * q - half) - 1, 0), n - 1)
    hi = min(max(math.ceil(n * q + half) - 1, 0), n - 1)
    return float(s[max(math.ceil(n * q) - 1, 0)]), float(s[hi] - s[lo]) / 2


@pytest.mark.parametrize("method", ["sparse", "dense"])
def test_engine_loss_distribution_matches_numpy_reference(method):
    pd, amount = book(N_LOANS)
    engine = simulate_paths(one_period_plan(pd, amount, method), N_PATHS, seed=11, block_size=4096,
                            threads=1).gross_loss
    peer = numpy_losses(pd, amount, RHO, N_PATHS, seed=12)

    se_mean = math.hypot(engine.std(ddof=1), peer.std(ddof=1)) / math.sqrt(N_PATHS)
    assert abs(engine.mean() - peer.mean()) < 4 * se_mean
    exact = float(pd @ amount)
    assert abs(engine.mean() - exact) < 4 * engine.std(ddof=1) / math.sqrt(N_PATHS)

    (qe, se_e), (qp, se_p) = q_and_se(engine, 0.99), q_and_se(peer, 0.99)
    assert abs(qe - qp) < 4 * math.hypot(se_e, se_p), (qe, qp, se_e, se_p)
