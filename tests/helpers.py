"""Test helpers: small scenarios built in code and equal-loan portfolios."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from models.portfolio import Portfolio
from models.scenario import Scenario, load_scenario, scenario_from_mapping
from sim.engine.outputs import chunk_bytes, output_bytes, streaming_bytes

BASE = {
    "name": "test",
    "portfolio": {"synthetic": {"n_firms": 50, "seed": 1, "products": {"loan": 1.0}}},
    "default": {"rho_systematic": 0.0, "rho_sector": 0.0},
    "products": {"loan": {"recovery_mean": 0.0, "recovery_lag_months": 0}},
    "contract": {"shares": {"loan": {"bank": 1.0}}},
    "simulation": {"horizon_months": 12, "period_months": 1, "n_paths": 1000, "seed": 7},
}


def merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = merge(out.get(k, {}), v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def make_scenario(**sections) -> Scenario:
    """BASE with sections merged in (nested dicts merge, other values replace)."""
    return scenario_from_mapping(merge(BASE, sections), source="<test>")


def equal_loans(n: int, pd_annual: float | np.ndarray, amount: float = 1e6, term: int = 12,
                start: int | np.ndarray = 0, n_sectors: int = 1, recovery: float = np.nan,
                product: str = "loan", firms: np.ndarray | None = None) -> Portfolio:
    """n loans with given PDs (the bank's own), one product, sectors round-robin."""
    idx = np.arange(n)
    return Portfolio(
        loan_id=np.array([f"L{i}" for i in idx], dtype=object),
        firm_id=np.array([f"F{i}" for i in (idx if firms is None else firms)], dtype=object),
        score=np.full(n, 500.0),
        stage=np.ones(n, np.int8),
        sector=(idx % n_sectors).astype(np.int32),
        amount=np.full(n, float(amount)),
        term_months=np.full(n, term, np.int32),
        start_month=np.broadcast_to(np.asarray(start, np.int32), (n,)).copy(),
        product=np.zeros(n, np.int32),
        pd_annual=np.broadcast_to(np.asarray(pd_annual, float), (n,)).copy(),
        rate=np.full(n, np.nan),
        recovery=np.full(n, recovery),
        sector_names=tuple(f"s{k}" for k in range(n_sectors)),
        product_names=(product,),
    )


def streamed_pair(overrides: list[str], on_dask: bool = False) -> tuple[Scenario, Scenario, int]:
    """The IP-pledge scenario with a memory budget that holds a streamed run (`on_dask`: with a
    wave of chunks in flight) but not its per-path arrays, the same scenario with the default
    budget, and a path count just past what fits."""
    path = Path(__file__).resolve().parents[1] / "scenarios/ip_pledge_97.toml"
    sc = load_scenario(path, overrides)
    periods = sc.simulation.horizon_months // sc.simulation.period_months
    budget = streaming_bytes(periods) + 4 * 2**20 + (chunk_bytes(periods) if on_dask else 0)
    n = int(1.1 * budget / output_bytes(periods, 1))
    return load_scenario(path, [*overrides, f"simulation.memory_gib={budget / 2**30!r}"]), sc, n
