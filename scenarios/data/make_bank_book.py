"""Write bank_book.csv: a bank's book of 2 000 tech-SME loans, made up for the
examples (five sectors, three stages, two products; the bank's own annual
PD on half the loans, each firm's turnover). Run from this folder:
python make_bank_book.py -- the same file every time (fixed seed)."""

from pathlib import Path

import numpy as np
import pandas as pd

N = 2000
SECTORS = ["electronic_info", "advanced_manufacturing", "biomedicine", "new_materials", "software"]
SECTOR_MIX = [0.28, 0.27, 0.17, 0.14, 0.14]
STAGES = ["startup", "growth", "mature"]
STAGE_MIX = [0.30, 0.42, 0.28]
SCORE_MEAN = {"startup": 540.0, "growth": 600.0, "mature": 660.0}
PD_BASE = {"startup": 0.035, "growth": 0.02, "mature": 0.01}
TURNOVER_MEDIAN = {"startup": 12e6, "growth": 60e6, "mature": 180e6}  # yuan a year


def main() -> None:
    rng = np.random.default_rng(20261201)
    stage = rng.choice(STAGES, N, p=STAGE_MIX)
    sector = rng.choice(SECTORS, N, p=SECTOR_MIX)
    score = np.clip(np.round([rng.normal(SCORE_MEAN[s], 80.0) for s in stage]), 300, 950)
    amount = np.round(np.exp(rng.uniform(np.log(1e6), np.log(10e6), N)), -4)
    guaranteed = rng.random(N) < 0.4
    product = np.where(guaranteed, "guaranteed_loan", "score_loan")
    term = rng.choice([12, 24, 36], N, p=[0.45, 0.35, 0.20])
    start = rng.integers(0, 12, N)
    # the bank's own PD on half the loans: its rating model, lower for better scores
    own = rng.random(N) < 0.5
    pd_own = np.array([PD_BASE[s] for s in stage]) * np.exp(-(score - 600.0) / 150.0 + rng.normal(0, 0.25, N))
    pd_annual = np.where(own, np.round(np.clip(pd_own, 0.002, 0.3), 5), np.nan)
    turnover = np.round([TURNOVER_MEDIAN[s] * np.exp(rng.normal(0, 0.6)) for s in stage], -4)
    frame = pd.DataFrame({
        "loan_id": [f"BK{i:05d}" for i in range(N)], "firm_id": [f"FM{i:05d}" for i in range(N)],
        "score": score.astype(int), "stage": stage, "sector": sector, "amount": amount.astype(int),
        "term_months": term, "start_month": start, "product": product, "pd_annual": pd_annual,
        "turnover": turnover.astype(int),
    })
    frame.to_csv(Path(__file__).with_name("bank_book.csv"), index=False)


if __name__ == "__main__":
    main()
