"""Workload definitions shared by the benchmarks, the peers and the subprocess
cells: the W1 portfolio (per-loan PDs uniform in [0.5 %, 8 %], amounts uniform
in [1 M, 10 M] yuan, one-factor Gaussian copula rho = 0.15, one 12-month
period, no recovery, so the loss of a path is the sum of defaulted amounts).

Everything here is plain NumPy + the project's public builders; nothing is
timed here.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCENARIO = ROOT / "scenarios" / "shijiazhuang_score_loan.toml"

W1_LOANS = 2_000
W1_PATHS = int(os.environ.get("RISKPOOL_BENCH_W1_PATHS", "20000"))
W1_RHO = 0.15
W1_PD = (0.005, 0.08)
W1_AMOUNT = (1e6, 10e6)
W1_SEED = 20240101


@dataclass(frozen=True)
class Loans:
    """The W1 loan book as plain arrays (what the peers see)."""

    pd: np.ndarray
    amount: np.ndarray
    rho: float

    @property
    def n(self) -> int:
        return int(self.pd.size)


def w1_loans(n_loans: int = W1_LOANS, seed: int = 1, rho: float = W1_RHO) -> Loans:
    rng = np.random.default_rng(seed)
    pd = rng.uniform(*W1_PD, n_loans)
    amount = rng.uniform(*W1_AMOUNT, n_loans)
    return Loans(pd=pd, amount=amount, rho=rho)


def w1_scenario(rho: float = W1_RHO, method: str = "sparse"):
    """A one-period (horizon 12, period 12) scenario, bank carries everything."""
    from models.scenario import scenario_from_mapping

    raw = {
        "name": "w1",
        # the synthetic section is a placeholder: the portfolio is passed explicitly
        "portfolio": {"synthetic": {"n_firms": 10, "seed": 1, "products": {"loan": 1.0}}},
        "default": {"rho_systematic": rho, "rho_sector": 0.0},
        "products": {"loan": {"recovery_mean": 0.0, "recovery_sd": 0.0, "recovery_lag_months": 0}},
        "contract": {"shares": {"loan": {"bank": 1.0}}},
        "simulation": {"horizon_months": 12, "period_months": 12, "n_paths": 1000,
                       "seed": 7, "method": method},
    }
    return scenario_from_mapping(raw, source="<benchmarks.w1>")


def w1_portfolio(loans: Loans):
    """`models.portfolio.Portfolio` of the W1 loans: term 12, start 0, recovery 0."""
    from models.portfolio import Portfolio

    n = loans.n
    idx = np.arange(n)
    ids = np.char.add("L", idx.astype(str)).astype(object)
    return Portfolio(
        loan_id=ids,
        firm_id=np.char.add("F", idx.astype(str)).astype(object),
        score=np.full(n, 500.0),
        stage=np.ones(n, np.int8),
        sector=np.zeros(n, np.int32),
        amount=loans.amount.astype(float),
        term_months=np.full(n, 12, np.int32),
        start_month=np.zeros(n, np.int32),
        product=np.zeros(n, np.int32),
        pd_annual=loans.pd.astype(float),
        rate=np.full(n, np.nan),
        recovery=np.zeros(n),
        sector_names=("all",),
        product_names=("loan",),
    )


def w1_plan(loans: Loans, method: str = "sparse"):
    from sim.engine.plan import compile_plan

    return compile_plan(w1_scenario(loans.rho, method), w1_portfolio(loans), method)


def engine_losses(plan, n_paths: int, seed: int = W1_SEED, threads: int = 1) -> np.ndarray:
    """W1 through the engine's loss-only run: per-path total loss."""
    from sim.engine.run import simulate_losses

    return simulate_losses(plan, n_paths, seed, threads=threads)


def engine_full_losses(plan, n_paths: int, seed: int = W1_SEED, threads: int = 1,
                       block_size: int = 4096) -> np.ndarray:
    """W1 through the full engine (waterfall settled on every path): gross_loss."""
    from sim.engine.run import simulate_paths

    return simulate_paths(plan, n_paths, seed, block_size, threads).gross_loss


# --- loss-distribution statistics and the agreement check -----------------

def quantile(x: np.ndarray, q: float) -> float:
    """Empirical q-quantile L[ceil(n q) - 1] (the engine's own estimator)."""
    s = np.sort(x)
    return float(s[max(math.ceil(s.size * q) - 1, 0)])


def quantile_se(x: np.ndarray, q: float) -> float:
    """Distribution-free 1-sigma band of the q-quantile (order statistics)."""
    s = np.sort(x)
    n = s.size
    half = math.sqrt(n * q * (1.0 - q))
    lo = min(max(math.floor(n * q - half) - 1, 0), n - 1)
    hi = min(max(math.ceil(n * q + half) - 1, 0), n - 1)
    return float(s[hi] - s[lo]) / 2.0


def summary(x: np.ndarray) -> dict:
    x = np.asarray(x, float)
    return {
        "n": int(x.size),
        "mean": float(x.mean()),
        "mean_se": float(x.std(ddof=1) / math.sqrt(x.size)),
        "q99": quantile(x, 0.99),
        "q99_se": quantile_se(x, 0.99),
    }


def agreement(a: np.ndarray, b: np.ndarray, z: float = 4.0) -> tuple[bool, str]:
    """Do two independent samples have the same mean and 99 % quantile, within
    z combined standard errors? Returns (ok, message)."""
    sa, sb = summary(a), summary(b)
    lines = []
    ok = True
    for key in ("mean", "q99"):
        se = math.hypot(sa[key + "_se"], sb[key + "_se"])
        gap = sa[key] - sb[key]
        good = abs(gap) <= z * se
        ok &= good
        lines.append(f"{key}: {sa[key]:.6g} vs {sb[key]:.6g}, gap {gap:.3g} = "
                     f"{gap / se if se > 0 else float('inf'):+.2f} SE ({'ok' if good else 'FAIL'})")
    return ok, "; ".join(lines)


def w1_expected_mean(loans: Loans) -> float:
    """Exact E[loss] = sum_i pd_i amount_i."""
    return float(np.dot(loans.pd, loans.amount))
