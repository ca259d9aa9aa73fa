"""Labelled results: the run's Dataset from per-path arrays (`dataset`), the
units table (`units`), the `ds.riskpool` accessor (`accessor`) and atomic
files (`io`)."""

from sim.results import accessor as _accessor  # noqa: F401  (registers ds.riskpool)
