"""What each variable of a result Dataset measures: its units and, for an
estimate, the variable that holds its standard error. One table for every
producer (run, sweep, twin); a variable missing here is an error, so a new
output cannot go out unlabelled."""

from __future__ import annotations

import xarray as xr

from models.portfolio import GROUPINGS

YUAN = "yuan"
PROBABILITY = "probability"
MONTHS = "months"

# name: (units, name of its standard error or None)
VARIABLES: dict[str, tuple[str, str | None]] = {
    # a run (sim.results.dataset) -- a sweep keeps the same variables per point
    "gross_loss_mean": (YUAN, "gross_loss_se"),
    "gross_loss_quantile": (YUAN, "gross_loss_quantile_se"),
    "gross_loss_es": (YUAN, "gross_loss_es_se"),
    "default_rate_mean": (PROBABILITY, "default_rate_se"),
    "default_rate_by_amount_mean": (PROBABILITY, "default_rate_by_amount_se"),
    "recovery_rate": (PROBABILITY, "recovery_rate_se"),
    "defaults_by_period_mean": ("defaults per period", "defaults_by_period_se"),
    "loss_mean": (YUAN, "loss_se"),
    "loss_quantile": (YUAN, "loss_quantile_se"),
    "loss_es": (YUAN, "loss_es_se"),
    "loss_curve": (YUAN, None),
    "gross_loss_curve": (YUAN, None),
    "pool_exhaustion_prob": (PROBABILITY, "pool_exhaustion_prob_se"),
    "stop_rule_prob": (PROBABILITY, "stop_rule_prob_se"),
    "pool_balance_mean": (YUAN, "pool_balance_se"),
    "pool_balance_quantile": (YUAN, None),
    "pool_balance_low": (YUAN, None),
    "guarantor_capital_mean": (YUAN, "guarantor_capital_se"),
    "credit_supplied_mean": (YUAN, "credit_supplied_se"),
    "credit_forgone_mean": (YUAN, "credit_forgone_se"),
    "fiscal_cost_mean": (YUAN, "fiscal_cost_se"),
    "fiscal_cost_quantile": (YUAN, "fiscal_cost_quantile_se"),
    "fiscal_cost_es": (YUAN, "fiscal_cost_es_se"),
    "subsidy_mean": (YUAN, "subsidy_se"),
    "guarantee_compensation_mean": (YUAN, "guarantee_compensation_se"),
    "bank_reward_mean": (YUAN, "bank_reward_se"),
    "bank_net_income_mean": (YUAN, "bank_net_income_se"),
    "pool_dry_by_size": (PROBABILITY, "pool_dry_by_size_se"),
    "required_pool_quantile": (YUAN, "required_pool_quantile_se"),
    "required_pool_es": (YUAN, "required_pool_es_se"),
    "likelihood_ratio_mean": ("1", "likelihood_ratio_se"),  # dimensionless
    "public_money": (YUAN, None),
    "cover_written": (YUAN, None),
    "fiscal_cost_per_credit": ("yuan per yuan of credit", "fiscal_cost_per_credit_se"),
    # the SimPy twin (sim.twin)
    "stop_month_mean": (MONTHS, "stop_month_se"),
    "reimbursement_delay_mean": (MONTHS, "reimbursement_delay_se"),
    "reimbursement_delay": (MONTHS, None),
    "n_claims_mean": ("claims", "n_claims_se"),
    "claim_queue_length_mean": ("claims", "claim_queue_length_se"),
}
for _by in GROUPINGS:  # Euler risk contributions by group (sim.scale.contributions)
    VARIABLES[f"contribution_es_{_by}"] = (YUAN, f"contribution_es_{_by}_se")
    VARIABLES[f"contribution_var_{_by}"] = (YUAN, f"contribution_var_{_by}_se")
    VARIABLES[f"contribution_mean_{_by}"] = (YUAN, f"contribution_mean_{_by}_se")
# per-path values of a run (sim.results.dataset.path_values), for paired comparisons
for _name, _units in (("path_gross_loss", YUAN), ("path_loss", YUAN), ("path_fiscal_cost", YUAN),
                      ("path_credit", YUAN), ("path_pool_dry", "flag"), ("path_stop_rule", "flag"),
                      ("path_weight", "1")):
    VARIABLES[_name] = (_units, None)
# a comparison of runs (sim.results.compare): money in yuan, the *_prob figures probabilities
VARIABLES["value"] = ("yuan (probability for *_prob figures)", "value_se")
VARIABLES["difference"] = ("yuan (probability for *_prob figures)", "difference_se")
VARIABLES["paired"] = ("flag", None)
# the bank's capital (sim.scale.capital): totals, then by segment and product
for _name in ("irb_capital", "irb_scheme_capital", "sa_capital", "sa_scheme_capital"):
    VARIABLES[_name] = (YUAN, None)
for _name in ("economic_capital_horizon", "economic_capital_year", "expected_loss_horizon",
              "expected_loss_year"):
    VARIABLES[_name] = (YUAN, f"{_name}_se")
for _by in ("segment", "product"):
    for _name in ("irb_capital", "irb_scheme_capital", "sa_capital", "sa_scheme_capital", "exposure",
                  "net_interest"):
        VARIABLES[f"{_name}_{_by}"] = (YUAN, None)
    for _name in ("expected_loss", "economic_capital"):
        VARIABLES[f"{_name}_{_by}"] = (YUAN, f"{_name}_{_by}_se")
    VARIABLES[f"raroc_{_by}"] = ("1", f"raroc_{_by}_se")
VARIABLES["breakeven_fee_segment"] = ("per yuan guaranteed a year", None)
STANDARD_ERRORS = {se: name for name, (_, se) in VARIABLES.items() if se}
DESCRIPTIONS = {
    "public_money": "pool and finite guarantor capital committed at the start (the leverage chain's start)",
    "cover_written": ("notional cover: each loan's amount times the shares others than the bank owe on it "
                      "(caps and the pool's size not applied)"),
    "fiscal_cost_per_credit": "fiscal cost per yuan of credit supplied (ratio of means)",
    "difference": "the run's figure less the first run's; its SE paired where `paired`",
    "loss_curve": "loss quantile at each probability level (for plots)",
    "gross_loss_curve": "loss quantile at each probability level (for plots)",
    "pool_balance_low": "pool balance at the (1 - q) quantile: the bad side of the pool",
    "credit_forgone_mean": "the book's credit that a stop rule left unlent",
    "recovery_rate": "share of the defaulted yuan recovered, as realised (ratio of means)",
    "pool_dry_by_size": "P(pool runs dry) had the pool started at pool_grid (= P(required pool > pool_grid))",
    "required_pool_quantile": "smallest initial pool that runs dry with probability at most 1 - quantile",
    "likelihood_ratio_mean": "mean importance-sampling weight (1 within its SE; exactly 1 without IS)",
}
for _by in GROUPINGS:
    DESCRIPTIONS[f"contribution_es_{_by}"] = f"E[loss of the {_by} | loss >= VaR]: adds up to the ES"
    DESCRIPTIONS[f"contribution_var_{_by}"] = (f"E[loss of the {_by} | loss near the VaR], scaled to add "
                                               "up to the VaR (window: attrs contribution_var_window)")


def label(ds: xr.Dataset) -> xr.Dataset:
    """Set `units` (and on an estimate `standard_error`, the name of its SE
    variable) on every variable of `ds`, in place; returns `ds`."""
    for name in ds.data_vars:
        if name in STANDARD_ERRORS:
            estimate = STANDARD_ERRORS[name]
            ds[name].attrs["units"] = VARIABLES[estimate][0]
            ds[name].attrs["standard_error_of"] = estimate
            continue
        if name not in VARIABLES:
            raise KeyError(f"{name}: not in sim.results.units.VARIABLES; add its units there")
        units, se = VARIABLES[name]
        if units:
            ds[name].attrs["units"] = units
        if se:
            ds[name].attrs["standard_error"] = se
        if name in DESCRIPTIONS:
            ds[name].attrs["description"] = DESCRIPTIONS[name]
    return ds
