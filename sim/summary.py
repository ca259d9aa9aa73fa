"""Headline figures of a run: a flat dict (JSON/CSV) and a terminal table with
money in 万元 (10 000 yuan)."""

from __future__ import annotations

import xarray as xr

WAN = 1e4


def _pick(ds: xr.Dataset, name: str, **sel) -> float:
    return float(ds[name].sel(**sel)) if sel else float(ds[name])


def headline(ds: xr.Dataset, q: float = 0.99) -> dict[str, float]:
    """Estimates with their standard errors; money in yuan."""
    q = float(ds["quantile"].sel(quantile=q, method="nearest"))
    out: dict[str, float] = {}
    for stat in ("mean", "se"):
        out[f"gross_loss_{stat}"] = _pick(ds, f"gross_loss_{stat}")
    out[f"gross_loss_var{q:g}"] = _pick(ds, "gross_loss_quantile", quantile=q)
    out[f"gross_loss_var{q:g}_se"] = _pick(ds, "gross_loss_quantile_se", quantile=q)
    out[f"gross_loss_es{q:g}"] = _pick(ds, "gross_loss_es", quantile=q)
    out[f"gross_loss_es{q:g}_se"] = _pick(ds, "gross_loss_es_se", quantile=q)
    for party in ds.party.values:
        p = str(party)
        out[f"{p}_loss_mean"] = _pick(ds, "loss_mean", party=p)
        out[f"{p}_loss_se"] = _pick(ds, "loss_se", party=p)
        out[f"{p}_loss_var{q:g}"] = _pick(ds, "loss_quantile", party=p, quantile=q)
        out[f"{p}_loss_es{q:g}"] = _pick(ds, "loss_es", party=p, quantile=q)
        out[f"{p}_loss_es{q:g}_se"] = _pick(ds, "loss_es_se", party=p, quantile=q)
    for name in ("pool_exhaustion_prob", "stop_rule_prob"):
        out[name] = _pick(ds, name)
        out[f"{name}_se"] = _pick(ds, f"{name}_se")
    for name in ("default_rate", "credit_supplied", "fiscal_cost", "subsidy",
                 "guarantee_compensation", "bank_reward", "bank_net_income"):
        out[f"{name}_mean"] = _pick(ds, f"{name}_mean")
        out[f"{name}_se"] = _pick(ds, f"{name}_se")
    return out


Estimate = tuple[float, float]  # value, standard error


def party_rows(ds: xr.Dataset, q: float = 0.99) -> tuple[float, list[tuple[str, Estimate, Estimate, Estimate, float]]]:
    """The VaR/ES level used and, per party that bears anything then in total:
    (label, E[loss], VaR_q, ES_q, share of the expected total)."""
    q = float(ds["quantile"].sel(quantile=q, method="nearest"))
    total = float(ds.gross_loss_mean)

    def row(label: str, prefix: str, share: float, **sel) -> tuple:
        at_q = dict(sel, quantile=q)
        return (label,
                (_pick(ds, f"{prefix}_mean", **sel), _pick(ds, f"{prefix}_se", **sel)),
                (_pick(ds, f"{prefix}_quantile", **at_q), _pick(ds, f"{prefix}_quantile_se", **at_q)),
                (_pick(ds, f"{prefix}_es", **at_q), _pick(ds, f"{prefix}_es_se", **at_q)),
                share)

    rows = []
    for party in map(str, ds.party.values):
        mean = _pick(ds, "loss_mean", party=party)
        if mean == 0 and float(ds.loss_quantile.sel(party=party).max()) == 0:
            continue
        rows.append(row(party, "loss", mean / total if total else 0.0, party=party))
    rows.append(row("total", "gross_loss", 1.0 if total else 0.0))
    return q, rows


def wan(estimate: Estimate) -> str:
    """`value ± se` in 万元."""
    return f"{estimate[0] / WAN:,.1f} ± {estimate[1] / WAN:,.1f}"


def format_table(ds: xr.Dataset, q: float = 0.99) -> str:
    """Per party: expected loss, VaR and ES at q with standard errors, share of total."""
    q, rows = party_rows(ds, q)
    head = f"{'party':<12}{'E[loss]':>18}{f'VaR {q:.1%}':>18}{f'ES {q:.1%}':>18}{'share':>8}"
    lines = [f"{ds.attrs.get('scenario_name', '')}: {ds.attrs['n_paths']:,} paths, seed "
             f"{ds.attrs['seed']}, {ds.attrs['n_loans']:,} loans, "
             f"{ds.attrs['portfolio_amount'] / 1e8:.2f} 亿元 lent. Money in 万元 (10 000 yuan), ± 1 s.e.",
             head, "-" * len(head)]
    for label, mean, var, es, share in rows:
        if label == "total":
            lines.append("-" * len(head))
        lines.append(f"{label:<12}{wan(mean):>18}{wan(var):>18}{wan(es):>18}{share:>8.1%}")
    pe, pe_se = float(ds.pool_exhaustion_prob), float(ds.pool_exhaustion_prob_se)
    sr, sr_se = float(ds.stop_rule_prob), float(ds.stop_rule_prob_se)
    lines += [
        "",
        f"pool exhaustion probability  {pe:.4%} ± {pe_se:.4%}",
        f"stop rule triggered          {sr:.4%} ± {sr_se:.4%}",
        f"default rate (loans)         {float(ds.default_rate_mean):.3%} ± {float(ds.default_rate_se):.3%}",
        f"credit supplied              {float(ds.credit_supplied_mean) / WAN:,.1f} ± {float(ds.credit_supplied_se) / WAN:,.1f} 万元",
        f"fiscal cost                  {float(ds.fiscal_cost_mean) / WAN:,.1f} ± {float(ds.fiscal_cost_se) / WAN:,.1f} 万元"
        f"  (VaR {q:.1%}: {float(ds.fiscal_cost_quantile.sel(quantile=q)) / WAN:,.1f})",
        f"  of which interest subsidy  {float(ds.subsidy_mean) / WAN:,.1f} ± {float(ds.subsidy_se) / WAN:,.1f} 万元",
        f"bank net income              {float(ds.bank_net_income_mean) / WAN:,.1f} ± {float(ds.bank_net_income_se) / WAN:,.1f} 万元",
    ]
    return "\n".join(lines)


def format_operations(ds) -> str:
    """The twin's headline: party losses, pool exhaustion and the bank's wait."""
    lines = [f"{ds.attrs['scenario_name']}: SimPy twin, {ds.attrs['n_paths']:,} paths, "
             f"{ds.attrs['paths_per_second']:,.0f} paths/s. Money in 万元, ± 1 s.e."]
    for party in map(str, ds.party.values):
        est = (float(ds.loss_mean.sel(party=party)), float(ds.loss_se.sel(party=party)))
        if est[0] > 0:
            lines.append(f"  {party:<12} expected loss {wan(est)}")
    lines.append(f"  {'total':<12} expected loss {wan((float(ds.gross_loss_mean), float(ds.gross_loss_se)))}")
    lines.append(f"pool exhaustion probability {float(ds.pool_exhaustion_prob):.3%} ± "
                 f"{float(ds.pool_exhaustion_prob_se):.3%}")
    delay = ds.reimbursement_delay
    lines.append(f"bank waits for the pool {float(ds.reimbursement_delay_mean):.2f} ± "
                 f"{float(ds.reimbursement_delay_se):.2f} months on average; quantiles "
                 + ", ".join(f"{q:g}: {float(delay.sel(quantile=q)):.1f}" for q in delay["quantile"].values))
    lines.append(f"claims waiting for review, worst period mean: {float(ds.claim_queue_length_mean.max()):.2f}")
    return "\n".join(lines)
