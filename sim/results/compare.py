"""Runs side by side: each run's headline figures and, against the first run
(the base), their differences with standard errors.

Two runs of the same book with the same seed and path count draw the same
random numbers on each path (common random numbers): the difference is then
estimated path by path, and its SE is that of the per-path differences
(`sim.risk.estimators.paired_mean_difference`, `paired_es_difference`),
far below the unpaired sqrt(se_a^2 + se_b^2) when the runs move together.
Runs that differ in book, seed or paths (or keep no per-path values: past
`PATHS_KEPT` paths) are compared unpaired, and a note says why. VaR
differences are always unpaired (a quantile's paired SE needs the density at
the VaR), which errs high when the runs move together.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from models.scenario import PARTIES
from sim.results.dataset import PATHS_KEPT
from sim.results.units import label
from sim.risk import estimators
from sim.risk.estimators import Estimate

# Means and probabilities compared, with the per-path variable that pairs them.
MEANS = (("gross_loss_mean", "E[total loss]", "path_gross_loss"),
         ("fiscal_cost_mean", "E[fiscal cost]", "path_fiscal_cost"),
         ("credit_supplied_mean", "E[credit supplied]", "path_credit"),
         ("pool_exhaustion_prob", "P(pool runs dry)", "path_pool_dry"),
         ("stop_rule_prob", "P(stop rule)", "path_stop_rule"))


def unpaired_reason(a: xr.Dataset, b: xr.Dataset) -> str | None:
    """Why runs a and b cannot be paired path by path, or None when they can."""
    if "path_gross_loss" not in a or "path_gross_loss" not in b:
        return f"per-path values are kept only up to {PATHS_KEPT:,} paths"
    for key, what in (("n_paths", "path counts"), ("seed", "seeds"), ("n_loans", "books"),
                      ("portfolio_amount", "books")):
        if a.attrs.get(key) != b.attrs.get(key):
            return f"different {what} ({a.attrs.get(key)} and {b.attrs.get(key)})"
    return None


def _figures(runs: Sequence[xr.Dataset], q: float) -> list[tuple[str, str, dict]]:
    """(key, label, how to read it) of every figure compared: means, then VaR and ES of the total
    and of each party that carries anything in some run."""
    out = [(key, text, {"name": key, "path": path}) for key, text, path in MEANS]
    parties = [p for p in PARTIES if any(float(r["loss_es"].sel(party=p, quantile=q)) > 0 for r in runs)]
    out.insert(2, ("fiscal_cost_es", f"ES {q:.1%} fiscal cost",
                   {"name": "fiscal_cost_es", "quantile": q, "path": "path_fiscal_cost"}))
    out += [("gross_loss_var", f"VaR {q:.1%} total loss", {"name": "gross_loss_quantile", "quantile": q}),
            ("gross_loss_es", f"ES {q:.1%} total loss",
             {"name": "gross_loss_es", "quantile": q, "path": "path_gross_loss"})]
    for p in parties:
        out += [(f"{p}_loss_mean", f"E[{p} loss]", {"name": "loss_mean", "party": p, "path": "path_loss"}),
                (f"{p}_loss_var", f"VaR {q:.1%} {p} loss",
                 {"name": "loss_quantile", "party": p, "quantile": q}),
                (f"{p}_loss_es", f"ES {q:.1%} {p} loss",
                 {"name": "loss_es", "party": p, "quantile": q, "path": "path_loss"})]
    return out


def _estimate(ds: xr.Dataset, how: dict) -> Estimate:
    sel = {k: how[k] for k in ("party", "quantile") if k in how}
    return ds.riskpool.estimate(how["name"], **sel)


def _paired(base: xr.Dataset, other: xr.Dataset, how: dict) -> Estimate:
    """The paired difference other - base of one figure from the runs' per-path values."""
    def values(ds: xr.Dataset) -> np.ndarray:
        x = ds[how["path"]]
        return np.asarray(x.sel(party=how["party"]) if "party" in how else x, float)

    x_a, x_b = values(base), values(other)
    w_a, w_b = np.asarray(base["path_weight"]), np.asarray(other["path_weight"])
    if "quantile" in how:
        return estimators.paired_es_difference(x_a, x_b, how["quantile"], w_a, w_b)
    return estimators.paired_mean_difference(x_a, x_b, w_a, w_b)


def compare_runs(runs: Sequence[xr.Dataset], names: Sequence[str], q: float | None = None) -> xr.Dataset:
    """Runs side by side, and their differences from the first run (module doc).

    Parameters
    ----------
    runs : sequence of xarray.Dataset
        Two or more results of `sim.run` (or `results.nc` files read back).
    names : sequence of str
        A label per run.
    q : float, optional
        The VaR/ES level compared, a quantile of every run (default the
        first run's `table_level`).

    Returns
    -------
    xarray.Dataset
        Kind "compare": dims `run` and `figure` (`figure_label` says what
        each is); `value`/`value_se` of each run, `difference`/
        `difference_se` against the first run and `paired` per run; the
        attribute `notes` says why any run was compared unpaired. Money in
        yuan, the *_prob figures probabilities.
    """
    if len(runs) < 2:
        raise ValueError("compare needs two runs or more")
    for ds, name in zip(runs, names):
        ds.riskpool.require("run")
        q = ds.riskpool.table_level() if q is None else q
        if not np.isclose(ds["quantile"].values, q, rtol=0, atol=1e-12).any():
            levels = list(map(float, ds["quantile"].values))
            raise ValueError(f"{name}: has no quantile {q:g} (it has {levels})")
    q = float(runs[0]["quantile"].sel(quantile=q, method="nearest"))
    figures = _figures(runs, q)
    value, value_se, diff, diff_se = (np.zeros((len(runs), len(figures))) for _ in range(4))
    paired, notes = [], []
    for i, ds in enumerate(runs):
        reason = unpaired_reason(runs[0], ds) if i else None
        paired.append(i > 0 and reason is None)
        if reason:
            notes.append(f"{names[i]} against {names[0]}: unpaired standard errors: {reason}")
        for j, (_, _, how) in enumerate(figures):
            value[i, j], value_se[i, j] = _estimate(ds, how)
            if i == 0:
                continue
            if paired[i] and "path" in how:
                diff[i, j], diff_se[i, j] = _paired(runs[0], ds, how)
            else:
                diff[i, j], diff_se[i, j] = estimators.unpaired_difference(_estimate(runs[0], how),
                                                                            _estimate(ds, how))
    dims = ("run", "figure")
    out = xr.Dataset(
        {"value": (dims, value), "value_se": (dims, value_se), "difference": (dims, diff),
         "difference_se": (dims, diff_se), "paired": (("run",), np.array(paired))},
        coords={"run": list(names), "figure": [f[0] for f in figures],
                "figure_label": ("figure", [f[1] for f in figures])},
        attrs={"kind": "compare", "quantile": q, "notes": "\n".join(notes),
               "scenario_names": [str(ds.attrs.get("scenario_name", "")) for ds in runs]})
    return label(out)

