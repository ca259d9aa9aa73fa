"""Score model: PD falls with the score, calibration hits each stage's target,
the term structure and the rate map behave as documented."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.portfolio import generate_portfolio
from models.scenario import DefaultModel, Pricing, SyntheticPortfolio
from models.scoring import (
    annual_pd,
    cumulative_pd,
    loan_rate,
    monthly_hazard,
    pd_from_score,
    stress_clock,
)


@settings(max_examples=50, deadline=None)
@given(st.floats(-6, 2), st.floats(0.01, 3))
def test_pd_is_monotone_decreasing_in_score(offset, slope):
    scores = np.linspace(0, 1000, 1001)
    pd = pd_from_score(scores, offset, slope, 1e-6, 0.99)
    assert (np.diff(pd) <= 0).all()
    assert pd[0] > pd[-1] or pd[0] in (1e-6, 0.99)


@pytest.mark.parametrize("targets", [(0.06, 0.03, 0.015), (0.2, 0.1, 0.001), (0.01, 0.01, 0.01)])
def test_calibration_hits_each_stage_target(targets):
    spec = SyntheticPortfolio(n_firms=3000, seed=5)
    pf = generate_portfolio(spec, ["score_loan"])
    model = DefaultModel(pd_annual=dict(zip(("startup", "growth", "mature"), targets)))
    pd = annual_pd(pf.score, pf.stage.astype(np.int64), model)
    for k, target in enumerate(targets):
        assert pd[pf.stage == k].mean() == pytest.approx(target, rel=1e-9)


def test_higher_scores_get_lower_pd_within_a_stage():
    spec = SyntheticPortfolio(n_firms=2000, seed=2)
    pf = generate_portfolio(spec, ["score_loan"])
    pd = annual_pd(pf.score, pf.stage.astype(np.int64), DefaultModel())
    for k in range(3):
        s, p = pf.score[pf.stage == k], pd[pf.stage == k]
        order = np.argsort(s)
        assert (np.diff(p[order]) <= 1e-15).all()


def test_target_outside_the_clip_band_is_refused_by_the_schema():
    with pytest.raises(ValueError, match="pd_annual.startup = 0.6 must lie in"):
        DefaultModel(pd_annual={"startup": 0.6, "growth": 0.03, "mature": 0.015}, pd_cap=0.5)


def test_extreme_targets_inside_the_band_are_reached():
    model = DefaultModel(pd_annual={"startup": 0.5, "growth": 1e-4, "mature": 0.2}, pd_cap=0.5)
    scores = np.array([100.0, 900.0, 500.0, 700.0, 300.0, 999.0])
    stages = np.array([0, 0, 1, 1, 2, 2])
    pd = annual_pd(scores, stages, model)
    for k, target in enumerate((0.5, 1e-4, 0.2)):
        assert pd[stages == k].mean() == pytest.approx(target, rel=1e-9)


def test_term_structure_without_stress_compounds_the_annual_pd():
    pd = np.array([0.02, 0.1])
    hazard = monthly_hazard(pd)
    clock = stress_clock([], 36)
    for years in (1, 2, 3):
        np.testing.assert_allclose(cumulative_pd(hazard, np.zeros(2, int), np.full(2, 12 * years), clock),
                                   1 - (1 - pd) ** years, rtol=1e-12)


def test_stress_multiplies_the_hazard_of_its_year():
    hazard = monthly_hazard(np.array([0.05]))
    clock = stress_clock([1.0, 2.0], 36)
    f12, f24 = (cumulative_pd(hazard, np.zeros(1, int), np.array([m]), clock)[0] for m in (12, 24))
    # survival over year 2 is (1 - pd)^2 under a doubled hazard
    assert (1 - f24) / (1 - f12) == pytest.approx(0.95 ** 2, rel=1e-12)
    # a loan starting in month 12 sees the stressed year first
    assert cumulative_pd(hazard, np.array([12]), np.array([12]), clock)[0] == pytest.approx(1 - 0.95 ** 2)


def test_rate_falls_with_score_between_floor_and_cap():
    pricing = Pricing(rate_at_500=0.045, rate_slope_per_100=0.004, rate_floor=0.03, rate_cap=0.06)
    rate = loan_rate(np.linspace(0, 1000, 101), pricing)
    assert (np.diff(rate) <= 0).all()
    assert rate.max() == pytest.approx(0.06) and rate.min() == pytest.approx(0.03)
    assert loan_rate(np.array([500.0]), pricing)[0] == pytest.approx(0.045)
