"""Fitting the default model to a bank's history: score -> PD, asset correlation, recovery."""
