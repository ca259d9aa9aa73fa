"""Write score_loan_history.csv: a made-up eight-year history of a score-loan
product (for the examples of `riskpool calibrate`), drawn from the one-factor
model with known parameters: logit PD = a_stage - 0.6 (score - 500) / 100,
a_stage = logit of 5 %, 2.5 %, 1.2 % (startup, growth, mature), asset
correlation 0.12 (systematic) + 0.04 (sector), recoveries Beta with mean 0.3
and SD 0.15, 12-30 months after default. Run from this folder: the same file
every time (fixed seed)."""

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit, ndtr, ndtri

YEARS = range(2017, 2025)
FIRMS = 900
STAGES = ["startup", "growth", "mature"]
OFFSET = {"startup": np.log(0.05 / 0.95), "growth": np.log(0.025 / 0.975), "mature": np.log(0.012 / 0.988)}
SLOPE, RHO_SYSTEMATIC, RHO_SECTOR = 0.6, 0.12, 0.04
SECTORS = ["electronic_info", "advanced_manufacturing", "biomedicine", "new_materials"]


def main() -> None:
    rng = np.random.default_rng(2024)
    stage = rng.choice(STAGES, FIRMS, p=[0.3, 0.42, 0.28])
    sector = rng.choice(SECTORS, FIRMS)
    base_score = np.clip(rng.normal(600, 90, FIRMS), 250, 980)
    rows = []
    alive = np.ones(FIRMS, bool)
    for year in YEARS:
        z = rng.standard_normal()
        s = {k: rng.standard_normal() for k in SECTORS}
        score = np.clip(np.round(base_score + rng.normal(0, 25, FIRMS)), 0, 1000)
        pd_ = expit(np.array([OFFSET[g] for g in stage]) - SLOPE * (score - 500) / 100)
        x = (np.sqrt(RHO_SYSTEMATIC) * z + np.sqrt(RHO_SECTOR) * np.array([s[k] for k in sector])
             + np.sqrt(1 - RHO_SYSTEMATIC - RHO_SECTOR) * rng.standard_normal(FIRMS))
        default = ndtr(x) < pd_
        for i in np.flatnonzero(alive):
            m, sd = 0.3, 0.15
            k = m * (1 - m) / sd**2 - 1
            rows.append({"firm_id": f"F{i:04d}", "year": year, "score": int(score[i]), "stage": stage[i],
                         "sector": sector[i], "product": "score_loan", "defaulted": int(default[i]),
                         "exposure": int(rng.integers(10, 50)) * 100_000 if default[i] else "",
                         "recovered": round(float(rng.beta(m * k, (1 - m) * k)), 4) if default[i] else "",
                         "recovery_months": int(rng.integers(12, 31)) if default[i] else ""})
        # a firm that defaulted leaves the book; a new one takes its place
        replaced = alive & default
        base_score[replaced] = np.clip(rng.normal(600, 90, replaced.sum()), 250, 980)
    pd.DataFrame(rows).to_csv(Path(__file__).with_name("score_loan_history.csv"), index=False)
    assert ndtri(0.5) == 0.0


if __name__ == "__main__":
    main()
