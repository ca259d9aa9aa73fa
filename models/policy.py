"""Fiscal incentive formulas (Shanxi special-fund rules), as scalar functions
over plain floats so the simulation kernels can compile the very same code.

All money in yuan.
"""

from __future__ import annotations

import math


def interest_subsidy(interest_paid: float, principal: float, share: float, cap_principal: float) -> float:
    """Subsidy on one loan: `share` of the interest paid, at most `cap_principal` x principal.

    The per-firm cumulative cap is applied over a firm's loans by the caller
    (see `firm_capped`).
    """
    return min(share * interest_paid, cap_principal * principal)


def firm_capped(subsidy_of_firm: float, cap_firm: float) -> float:
    """A firm's total subsidy after the cumulative per-firm cap."""
    return min(subsidy_of_firm, cap_firm)


def guarantee_compensation(payouts_in_year: float, rate: float, cap_annual: float) -> float:
    """Fiscal refund of a guarantor's compensatory payments (代偿) in one year."""
    return min(rate * payouts_in_year, cap_annual)


def bank_reward(annual_credit: float, step: float, amount: float) -> float:
    """Reward for a bank's dedicated product: `amount` for each full `step` of annual credit."""
    return math.floor(annual_credit / step) * amount
