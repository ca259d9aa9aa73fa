"""W1 with financepy's Gaussian-copula Monte Carlo (PyPI `financepy`, checked
with 1.1.2): `financepy.models.gauss_copula.default_times_gc(issuer_curves,
corr_matrix, num_trials, seed)` draws correlated default times for every
credit and trial from a full-rank correlation matrix (Cholesky) and maps each
uniform to a default time on the issuer's survival curve. It returns a
(credits, 2 * num_trials) matrix: the second half are the antithetic trials
(u -> 1 - u), so `num_trials` trials give 2 * num_trials (pairwise
dependent) paths. A loan defaults within the year when its time is <= 1.

The issuer curves only need `_times` and `_qs` (survival probabilities), the
two attributes `default_times_gc` reads; a tiny stand-in object supplies them
instead of a bootstrapped `CDSCurve` (W1 gives PDs, not CDS spreads).

financepy is imported lazily; it is NOT a project dependency. The module also
runs as a script (`python -m benchmarks.peers.financepy_peer N_LOANS N_TRIALS
SEED`, or `python benchmarks/peers/financepy_peer.py ...`) printing one JSON
line, so the benchmark can use a separate interpreter that has financepy
(RISKPOOL_FINANCEPY_PYTHON=/path/to/python) without installing it here.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


class _SurvivalCurve:
    """Flat-hazard survival curve with the attributes default_times_gc reads."""

    def __init__(self, pd_one_year: float):
        self._times = np.array([0.0, 1.0, 100.0])
        self._qs = np.array([1.0, 1.0 - pd_one_year, 1e-300])


def financepy_losses(pd: np.ndarray, amount: np.ndarray, rho: float, n_trials: int,
                     seed: int) -> np.ndarray:
    """Per-path total loss over 2 * n_trials paths (antithetic pairs)."""
    from financepy.models.gauss_copula import default_times_gc

    n = len(pd)
    curves = [_SurvivalCurve(float(p)) for p in pd]
    corr = np.full((n, n), rho)
    np.fill_diagonal(corr, 1.0)
    times = default_times_gc(curves, corr, int(n_trials), int(seed))
    return (times <= 1.0).T.astype(np.float64) @ np.asarray(amount, float)


def _main(argv: list[str]) -> None:
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks.workloads import w1_loans

    n_loans, n_trials, seed = (int(a) for a in argv[:3])
    t0 = time.perf_counter()
    import financepy  # noqa: F401  (its banner goes to stdout: keep it off our JSON line)
    t_import = time.perf_counter() - t0
    loans = w1_loans(n_loans)
    financepy_losses(loans.pd[:2], loans.amount[:2], loans.rho, 2, seed)  # numba warm-up
    t0 = time.perf_counter()
    losses = financepy_losses(loans.pd, loans.amount, loans.rho, n_trials, seed)
    seconds = time.perf_counter() - t0
    from importlib.metadata import version

    print("RESULT " + json.dumps({
        "version": version("financepy"), "seconds": seconds, "import_s": t_import,
        "n_loans": n_loans, "n_paths": int(losses.size), "losses": losses.tolist(),
    }))


if __name__ == "__main__":
    _main(sys.argv[1:])
