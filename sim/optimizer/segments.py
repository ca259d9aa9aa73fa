"""Loss scenarios by segment for the optimizer: per path, the gross loss of
each segment (stage x score band x product) per yuan lent, and from it each
party's loss per yuan under each sharing option.

The optimizer needs losses that are linear in the credit it allocates, so
these are computed with unlimited money (no pool balance, capital, caps or
stop rule): the LP itself sizes the pool against the tail. Options differ
only in the shares, so one set of default paths serves all of them (common
random numbers); with moral hazard the PDs depend on the public cover, and
each distinct bank share is simulated with the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.portfolio import Portfolio, segment_index
from models.scenario import Scenario, Shares
from sim.engine.outputs import check_fits, memory_budget
from sim.engine.plan import GOVERNMENT, GUARANTOR, balance_months, compile_plan
from sim.engine.run import RunSpec
from sim.scale.runs import segment_losses_by_path


@dataclass(frozen=True)
class SegmentLosses:
    """Per-yuan losses by scenario path, segment and option (yuan per yuan lent)."""

    segments: tuple[str, ...]
    options: tuple[str, ...]
    party_loss: np.ndarray        # (paths, segments, options, parties)
    public_costs: np.ndarray      # (paths, segments, options) pay-as-you-go public costs
    amount: np.ndarray            # (segments,) yuan lent now in each segment
    loans: np.ndarray             # (segments,) number of loans now in each segment
    bank_margin: np.ndarray       # (segments,) bank margin per yuan over the loans' lives
    shares: np.ndarray            # (options, parties)


# Paths per block of loss scenarios (in process and per Dask task).
SEGMENT_BLOCK = 4096


def _with_shares(scenario: Scenario, shares: Shares) -> Scenario:
    contract = scenario.contract.model_copy(update={"shares": {p: shares for p in scenario.products}})
    return scenario.model_copy(update={"contract": contract})


def segment_losses(
    scenario: Scenario,
    portfolio: Portfolio,
    options: dict[str, Shares],
    score_bands: list[float],
    n_paths: int,
    seed: int,
    scheduler=None,
) -> SegmentLosses:
    """Simulate `n_paths` scenarios and express every party's loss per yuan lent;
    with a Dask `scheduler` (address, "local" or a Client) the paths run there,
    with identical results."""
    segment, labels = segment_index(portfolio, score_bands)
    n_seg = len(labels)
    shares = np.array([s.as_tuple() for s in options.values()])
    # the scenarios sit in memory for the LP: per path, segment and option each party's loss and the
    # public cost (twice, with the products that make them), and the gross loss per bank share
    n_bank = len({s.bank for s in options.values()})
    check_fits(8 * n_paths * n_seg * (2 * len(options) * (shares.shape[1] + 1) + n_bank),
               memory_budget(scenario.simulation.memory_gib),
               f"{scenario.source}: {n_paths:,} optimizer scenarios (--scenarios) of {n_seg} segments x "
               f"{len(options)} options")
    gross_by_bank_share: dict[float, np.ndarray] = {}
    plan = None
    for s in options.values():
        if s.bank not in gross_by_bank_share:
            plan = compile_plan(_with_shares(scenario, s), portfolio)
            spec = RunSpec(plan, n_paths, seed, SEGMENT_BLOCK, "sparse" if plan.sparse else "dense")
            gross_by_bank_share[s.bank] = segment_losses_by_path(spec, segment[plan.loan_order], n_seg,
                                                                 scheduler=scheduler)
    in_plan = segment[plan.loan_order]  # the per-loan arrays below are in plan order
    amount = np.bincount(in_plan, weights=plan.amount, minlength=n_seg)
    margin = np.bincount(in_plan, weights=plan.margin_full, minlength=n_seg) / amount

    per_yuan = (np.stack([gross_by_bank_share[s.bank] for s in options.values()], axis=2)
                / amount[None, :, None])
    party_loss = per_yuan[..., None] * shares[None, None, :, :]
    pol = scenario.policy
    term = plan.term.astype(float)
    balance_months_per_yuan = balance_months(term, term, plan.amortizing[plan.product], 1.0)
    # full-term subsidy (an upper bound: defaults stop interest, the per-firm cap is ignored)
    subsidy = np.minimum(pol.interest_subsidy_share * plan.rate * balance_months_per_yuan / 12.0,
                         pol.interest_subsidy_cap_principal) * plan.amount
    subsidy_per_yuan = np.bincount(in_plan, weights=subsidy, minlength=n_seg) / amount
    reward_per_yuan = pol.bank_reward_amount / pol.bank_reward_step
    public = (party_loss[..., GOVERNMENT] + pol.guarantee_compensation_rate * party_loss[..., GUARANTOR]
              + (subsidy_per_yuan + reward_per_yuan)[None, :, None])
    loans = np.bincount(segment, minlength=n_seg).astype(float)
    return SegmentLosses(labels, tuple(options), party_loss, public, amount, loans, margin, shares)
