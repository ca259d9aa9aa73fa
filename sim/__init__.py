"""riskpool: what a credit risk-sharing scheme for tech SMEs really costs,
and how to size it.

The front door::

    import sim
    sc = sim.load_scenario("scenarios/shijiazhuang_score_loan.toml")
    ds = sim.run(sc, n_paths=20_000, seed=1)         # labelled results (xarray)
    ds.riskpool.estimate("loss_es", party="bank", quantile=0.99)
    losses = sim.run_losses(sc, n_paths=20_000)      # gross loss per path, yuan
    sw = sim.sweep(sc, {"contract.pool.size": [20e6, 40e6]}, n_paths=5_000)
    sz = sim.size(sc, target=0.01)                   # smallest pool dry in <= 1 % of paths
    sz.riskpool.required_pool()                      # (yuan, its standard error)
    outcome = sim.optimize(sc, budget=20e6)          # allocation of credit and pool
    ds = sim.run(sc, contributions=["sector"])       # + who carries each party's tail (Euler)
    ds.riskpool.contributions("sector", "bank")      # a DataFrame, largest ES contributor first
    cap = sim.capital(sc)                            # the bank's capital with and without the scheme
    cmp = sim.compare([ds_a, ds_b], ["base", "stressed"])  # differences, paired SEs on shared paths
    twin = sim.run_twin(sc, n_paths=500)             # SimPy operational twin

Every function takes the scenario first and keyword-only options after it,
in one order: n_paths, seed, (the function's own), threads, block_size,
method, portfolio, scheduler, progress. Results are read through the
`ds.riskpool` accessor. Everything else inside `sim` may move.
"""

from sim.kernel_cache import use_a_cache_per_kernel_version

use_a_cache_per_kernel_version()  # before any kernel module is imported

from models.scenario import load_scenario  # noqa: E402
from sim.optimizer.allocation import optimize  # noqa: E402
from sim.results import accessor as _accessor  # noqa: E402, F401  (registers ds.riskpool)
from sim.results.compare import compare_runs as compare  # noqa: E402
from sim.scale.capital import bank_capital as capital  # noqa: E402
from sim.scale.runs import run, run_losses  # noqa: E402
from sim.scale.sizing import size_pool as size  # noqa: E402
from sim.scale.sweep import run_sweep as sweep  # noqa: E402
from sim.twin.run import run_twin  # noqa: E402

__all__ = ["capital", "compare", "load_scenario", "optimize", "run", "run_losses", "run_twin", "size",
           "sweep"]
