"""Who shares a default's loss, in the order every per-party array uses."""

from __future__ import annotations

PARTIES: tuple[str, ...] = (
    "bank",
    "pool",
    "guarantor",
    "insurer",
    "appraiser",
    "reguarantor",
    "government",
)
