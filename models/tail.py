"""The far-tail event a run is asked to sample well (importance sampling).

Grammar of an event (the `--tail` option and the scenario's `simulation.tail`):

    off                     plain Monte Carlo
    pool_dry                the pool cannot pay a claim in full
    guarantor_dry           the guarantor's capital cannot pay a claim in full
    QUANTITY>=AMOUNT        a path's loss of QUANTITY is at least AMOUNT yuan

QUANTITY is `gross_loss`, `fiscal_cost` or a party (bank, pool, guarantor,
insurer, appraiser, reguarantor, government); AMOUNT a positive number of
yuan such as 2e8 or 50000000.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.parties import PARTIES

DRY_EVENTS = ("pool_dry", "guarantor_dry")
LOSS_QUANTITIES = ("gross_loss", "fiscal_cost", *PARTIES)
GRAMMAR = ("off | pool_dry | guarantor_dry | QUANTITY>=AMOUNT, QUANTITY one of "
           f"{', '.join(LOSS_QUANTITIES)} and AMOUNT yuan > 0 (e.g. 'gross_loss>=2e8', 'bank>=5e7')")


@dataclass(frozen=True)
class TailEvent:
    """A named far-tail event: `quantity` (a dry event or a loss quantity) and,
    for a loss, the `amount` (yuan) it must reach."""

    quantity: str
    amount: float | None = None

    def __str__(self) -> str:
        return self.quantity if self.amount is None else f"{self.quantity}>={self.amount:g}"


def parse_tail(text: str) -> TailEvent | None:
    """The event `text` names (None for "off"); ValueError with the grammar otherwise."""
    text = str(text).strip()
    if text == "off":
        return None
    if text in DRY_EVENTS:
        return TailEvent(text)
    quantity, sep, amount = text.partition(">=")
    quantity = quantity.strip()
    if sep and quantity in LOSS_QUANTITIES:
        try:
            value = float(amount)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value > 0.0:
            return TailEvent(quantity, value)
    raise ValueError(f"tail event {text!r} not understood; expected {GRAMMAR}")
