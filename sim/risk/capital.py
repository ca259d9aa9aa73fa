"""Regulatory credit-risk capital per loan: the Basel IRB risk-weight functions (corporate with
the SME firm-size adjustment, other retail), the standardised approach, and guarantees by
substitution. Every function is vectorised over numpy arrays (broadcasting); money is in yuan,
maturities in years, PD / LGD / shares / risk weights are fractions (0.45, not 45 %).

The maths
---------
N is the standard normal CDF, G its inverse, ln the natural logarithm.

Corporate, sovereign and bank exposures not in default (CRE31.5)::

    w  = (1 - e^{-50 PD}) / (1 - e^{-50})
    R  = 0.12 w + 0.24 (1 - w)  [- 0.04 (1 - (S - S_lo) / (S_hi - S_lo))  for an SME, CRE31.8]
    b  = (0.11852 - 0.05478 ln PD)^2
    MA = (1 + (M - 2.5) b) / (1 - 1.5 b)             ("full maturity adjustment", CRE31.6)
    K  = [LGD N(G(PD) / sqrt(1 - R) + sqrt(R / (1 - R)) G(0.999)) - PD LGD] MA
    RWA = K x 12.5 x EAD

Other retail (CRE31.16): R = 0.03 w' + 0.16 (1 - w'), w' = (1 - e^{-35 PD}) / (1 - e^{-35}),
K as above without MA. In default (PD = 1, CRE31.3): K = max(0, LGD - EL_BE), EL_BE the bank's
best estimate of expected loss; under F-IRB the EL of a defaulted exposure is the supervisory LGD
(CRE35.3), so K = 0 -- the default here unless ``el_best_estimate`` is given. The capital of
the standardised approach is ``capital_ratio`` x EAD x RW (8 % being the reciprocal of 12.5).

Guarantees, substitution: the covered share g of the exposure is treated as an exposure to the
guarantor (CRE22 for the standardised approach; CRE32.24 to CRE32.26 for F-IRB: the risk-weight
function of the guarantor's type with the guarantor's PD, and the LGD of the guarantee), the
rest keeps the borrower's: K = (1 - g) K_borrower + g K_guarantor, capital = c EAD [(1 - g) RW
+ g RW_guarantor] (several payers: a term each, `sim.scale.capital`). Double default is not
recognised (CRE32.22). A bank may decline to recognise a guarantee that would raise its
requirement (CRE32.22); the cover is applied as given.

What was verified, and where
----------------------------
From the Basel Framework chapters CRE31 and CRE32 (BIS, version effective as of 01 Jan 2023):

- CRE31.5: R, b and K exactly as above and RWA = K x 12.5 x EAD -- with **no 1.06 factor**.
  CRE31.6 names (1 + (M - 2.5) b) / (1 - 1.5 b) the full maturity adjustment, M per CRE32.
  CRE31.7: R x 1.25 for large regulated and all unregulated financial institutions.
- CRE31.8: the SME firm-size adjustment 0.04 x (1 - (S - 5) / 45), S the consolidated annual
  sales in EUR million, "S falling in the range" 5 to 50, sales below 5 treated as 5; SMEs are
  those with sales below EUR 50 million. CRE31.9: total assets may stand in for sales.
- CRE31.16: other retail correlation (3 % to 16 %, -35 PD); CRE31.13: no maturity adjustment
  in any retail function. CRE31.3: defaulted K = max(0, LGD - EL_BE).
- CRE32.4: PD floor 0.05 % (all but sovereign exposures); CRE32.58: retail PD floor 0.05 %
  (0.1 % for QRRE revolvers). CRE32.2: the floors do not apply to the part covered by a
  sovereign guarantee (a payer of PD 0 needs no capital: `sim.scale.capital`).
- CRE32.6: F-IRB senior unsecured LGD is 45 % for sovereigns, banks, securities firms and other
  financial institutions but **40 % for other corporates**; CRE32.7: 75 % subordinated.
- CRE32.44: F-IRB M = 2.5 years (0.5 for repo-style); CRE32.46: M floored at 1 and capped at 5
  years (short-term exceptions CRE32.51 to CRE32.53 are not modelled).
- CRE32.23 to CRE32.26: F-IRB guarantees follow the standardised CRE22.70 to CRE22.84, partial
  cover CRE22.80 to CRE22.81 (paragraph numbers as CRE32 cites them; CRE22 itself not read).

The 1.06 factor: Basel II (June 2006) para 44 and its footnote 12 introduced an IRB scaling
factor, "current best estimate ... 1.06", and EU / UK rules multiplied IRB risk weights by 1.06
(e.g. the UK BIPRU 4.4.57 formula ... x 12.5 x 1.06). It is absent from the current CRE31.5,
and the published illustrative risk-weight tables -- Basel II Annex 5 (PD 1 %, LGD 45 %,
M 2.5: 92.32 %) and the 2023 CRE99 table as reproduced in the SAMA rulebook, chapter 26
(LGD 40 %: 82.06 %) -- equal 12.5 K without it. So ``scaling`` defaults to 1.0; pass 1.06 to
reproduce CRR-era figures. It multiplies non-defaulted K only: in BIPRU 4.4.57 the defaulted risk
weight max{0, 12.5 (LGD - EL_BE)} carries no 1.06.

Inputs are taken as given: the A-IRB LGD input floors (CRE32.16, CRE32.58) are not applied, nor
the 1.25 correlation multiplier for large financials (CRE31.7).

Not verified at paragraph level (the text was not found): the standardised risk weights of CRE20
used as constants below -- 100 % unrated corporate, 85 % corporate SME, 75 % regulatory retail --
are the Basel III (2017) values as secondary sources give them; and China's NFRA 《商业银行资本
管理办法》(2023) annex, whose SME adjustment this project specifies as 0.04 x (1 - (S - 3) / 27),
S in 10 million yuan in [3, 30] -- the default ``size_floor`` = 30e6 and ``size_ceiling`` = 300e6
yuan below -- unchecked against the NFRA text. With size_floor = 5e6 and size_ceiling = 50e6 (in
euros) the same function is CRE31.8. CRE35.3 (F-IRB EL in default = supervisory LGD) is as quoted
by a third-party reproduction; CRE35 itself was not read.

Implementation: N(x) = erfc(-x / sqrt 2) / 2 (math.erfc, accurate in the lower tail) and G by
statistics.NormalDist.inv_cdf (Wichura's AS241, ~1e-16), both elementwise Python calls, about a
microsecond per value.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

#: Basel III PD input floor for corporate and bank exposures (CRE32.4) and retail (CRE32.58).
PD_FLOOR = 0.0005
#: F-IRB supervisory LGDs, senior unsecured (CRE32.6) and subordinated (CRE32.7).
FIRB_LGD_SENIOR_CORPORATE = 0.40
FIRB_LGD_SENIOR_FINANCIAL = 0.45
FIRB_LGD_SUBORDINATED = 0.75
#: F-IRB effective maturity in years (CRE32.44) and the floor / cap on M (CRE32.46).
FIRB_MATURITY_YEARS = 2.5
MATURITY_FLOOR_YEARS = 1.0
MATURITY_CAP_YEARS = 5.0
#: Standardised risk weights (CRE20, Basel III; see the module docstring on verification).
RW_CORPORATE = 1.00
RW_CORPORATE_SME = 0.85
RW_REGULATORY_RETAIL = 0.75
#: Minimum total capital ratio, the reciprocal of the 12.5 in RWA = 12.5 K EAD.
CAPITAL_RATIO = 0.08

_ND = NormalDist()
_G999 = _ND.inv_cdf(0.999)
_SQRT2 = math.sqrt(2.0)
_norm_cdf = np.vectorize(lambda x: 0.5 * math.erfc(-x / _SQRT2), otypes=[float])
_norm_ppf = np.vectorize(_ND.inv_cdf, otypes=[float])


def _values(name: str, x: object, lo: float, hi: float, what: str) -> np.ndarray:
    """``x`` as a float array, every value in [lo, hi] (NaN is refused), else ValueError."""
    a = np.asarray(x, dtype=float)
    bad = ~((a >= lo) & (a <= hi))
    if bad.any():
        raise ValueError(f"{name} must be in [{lo:g}, {hi:g}] ({what}); got {float(a[bad].flat[0])!r}")
    return a


def _scalar(name: str, x: float, lo: float, hi: float, what: str) -> float:
    """A scalar parameter in [lo, hi], else ValueError."""
    return float(_values(name, x, lo, hi, what))


def _out(a: np.ndarray) -> np.ndarray:
    """A 0-d result as a numpy scalar, anything else as the array."""
    return a[()]


def _size_adjustment(turnover: object, size_floor: float, size_ceiling: float) -> np.ndarray | float:
    """The firm-size adjustment 0.04 (1 - (S - floor) / (ceiling - floor)) to subtract from R
    (CRE31.8), S in yuan clamped up to the floor; 0 where S is NaN, infinite or >= the ceiling."""
    if turnover is None:
        return 0.0
    s = np.asarray(turnover, dtype=float)
    if (s < 0).any():
        raise ValueError(
            f"turnover must be >= 0 yuan (annual sales) or NaN for none; got {float(s[s < 0].flat[0])!r}"
        )
    if not (0 < size_floor < size_ceiling < math.inf):
        raise ValueError(
            f"need 0 < size_floor < size_ceiling < inf (yuan); got {size_floor!r}, {size_ceiling!r}"
        )
    sme = np.isfinite(s) & (s < size_ceiling)
    s_c = np.clip(np.where(sme, s, size_ceiling), size_floor, size_ceiling)
    return np.where(sme, 0.04 * (1.0 - (s_c - size_floor) / (size_ceiling - size_floor)), 0.0)


def irb_correlation(
    pd: object,
    turnover: object = None,
    size_floor: float = 30e6,
    size_ceiling: float = 300e6,
) -> np.ndarray:
    """Corporate asset correlation R (a fraction, 0.08 to 0.24) at one-year PD (probability),
    CRE31.5, less the SME firm-size adjustment (CRE31.8) where ``turnover`` (annual sales, yuan)
    is given, finite and below ``size_ceiling``; sales below ``size_floor`` count as the floor.
    NaN turnover (or None) means no adjustment. No PD floor is applied here."""
    p = _values("pd", pd, 0.0, 1.0, "one-year probability of default")
    w = -np.expm1(-50.0 * p) / -math.expm1(-50.0)
    adjustment = _size_adjustment(turnover, size_floor, size_ceiling)
    return _out(np.asarray(0.12 * w + 0.24 * (1.0 - w) - adjustment))


def maturity_adjustment(pd: object, maturity_years: object, pd_floor: float = PD_FLOOR) -> np.ndarray:
    """Full maturity adjustment MA = (1 + (M - 2.5) b) / (1 - 1.5 b), b = (0.11852 - 0.05478 ln PD)^2
    (CRE31.5, CRE31.6), PD floored at ``pd_floor`` (CRE32.4) and M (years) clamped to [1, 5]
    (CRE32.46). Dimensionless; 1 at M = 1 year. PD must be > 0 after the floor (ln PD)."""
    p = _values("pd", pd, 0.0, 1.0, "one-year probability of default")
    m = _values("maturity_years", maturity_years, 0.0, math.inf, "effective maturity in years")
    floor = _scalar("pd_floor", pd_floor, 0.0, 1.0, "PD input floor, a probability")
    p = np.maximum(p, floor)
    if (p <= 0).any():
        raise ValueError("pd must be in (0, 1] after pd_floor for the maturity adjustment (ln PD); got 0")
    b = (0.11852 - 0.05478 * np.log(p)) ** 2
    m = np.clip(m, MATURITY_FLOOR_YEARS, MATURITY_CAP_YEARS)
    return _out(np.asarray((1.0 + (m - 2.5) * b) / (1.0 - 1.5 * b)))


def _asrf_capital(p: np.ndarray, lgd: np.ndarray, r: np.ndarray, el_best_estimate: object) -> np.ndarray:
    """LGD N(G(PD)/sqrt(1-R) + sqrt(R/(1-R)) G(0.999)) - PD LGD per yuan; 0 at PD = 0 (the
    limit) and max(0, LGD - EL_BE) at PD = 1 (CRE31.3), EL_BE = LGD unless given (F-IRB)."""
    p, lgd, r = np.broadcast_arrays(p, lgd, r)
    k = np.zeros(p.shape)
    live = (p > 0) & (p < 1)
    if live.any():
        pl, rl = p[live], r[live]
        x = _norm_ppf(pl) / np.sqrt(1.0 - rl) + np.sqrt(rl / (1.0 - rl)) * _G999
        k[live] = lgd[live] * (_norm_cdf(x) - pl)
    dead = p >= 1
    if dead.any():
        if el_best_estimate is None:
            el = lgd
        else:
            el = np.broadcast_to(
                _values("el_best_estimate", el_best_estimate, 0.0, 1.0, "best-estimate EL per yuan of EAD"),
                p.shape,
            )
        k[dead] = np.maximum(0.0, lgd[dead] - el[dead])
    return k


def irb_capital(
    pd: object,
    lgd: object,
    maturity_years: object = FIRB_MATURITY_YEARS,
    turnover: object = None,
    *,
    size_floor: float = 30e6,
    size_ceiling: float = 300e6,
    pd_floor: float = PD_FLOOR,
    scaling: float = 1.0,
    el_best_estimate: object = None,
) -> np.ndarray:
    """IRB capital requirement K per yuan of EAD (a fraction; RWA = K x 12.5 x EAD yuan) for a
    corporate exposure, CRE31.5: PD (one-year probability) floored at ``pd_floor`` (CRE32.4),
    LGD a fraction (F-IRB: 0.40 corporate, 0.45 financial, CRE32.6), M in years (F-IRB 2.5,
    CRE32.44; clamped to [1, 5]), SME adjustment from ``turnover`` (yuan, see
    :func:`irb_correlation`). ``scaling`` multiplies non-defaulted K: 1.0 in the current
    framework, 1.06 for CRR-era numbers. PD = 1 is default: K = max(0, LGD - el_best_estimate),
    which is 0 when no best estimate is given (F-IRB: EL = supervisory LGD, CRE35.3)."""
    p = _values("pd", pd, 0.0, 1.0, "one-year probability of default")
    loss = _values("lgd", lgd, 0.0, 1.0, "loss given default, a fraction of EAD")
    m = _values("maturity_years", maturity_years, 0.0, math.inf, "effective maturity in years")
    floor = _scalar("pd_floor", pd_floor, 0.0, 1.0, "PD input floor, a probability")
    scale = _scalar("scaling", scaling, 0.0, math.inf, "multiplier of K")
    p = np.maximum(p, floor)
    r = np.asarray(irb_correlation(p, turnover, size_floor, size_ceiling))
    k = _asrf_capital(p, loss, r, el_best_estimate)
    p_b, m_b = np.broadcast_arrays(p, m)
    live = (p_b > 0) & (p_b < 1)
    ma = np.ones(p_b.shape)
    if live.any():
        ma[live] = maturity_adjustment(p_b[live], m_b[live], pd_floor=0.0)
    k, ma, live = np.broadcast_arrays(k, ma, live)
    return _out(np.where(live, k * ma * scale, k))


def retail_capital(
    pd: object,
    lgd: object,
    *,
    pd_floor: float = PD_FLOOR,
    scaling: float = 1.0,
    el_best_estimate: object = None,
) -> np.ndarray:
    """IRB capital K per yuan of EAD (a fraction) for an "other retail" exposure, CRE31.16:
    R = 0.03 w + 0.16 (1 - w), w = (1 - e^{-35 PD}) / (1 - e^{-35}), no maturity adjustment;
    PD (one-year probability) floored at ``pd_floor`` (CRE32.58), LGD a fraction. PD = 1 and
    ``scaling`` as in :func:`irb_capital`."""
    p = _values("pd", pd, 0.0, 1.0, "one-year probability of default")
    loss = _values("lgd", lgd, 0.0, 1.0, "loss given default, a fraction of EAD")
    floor = _scalar("pd_floor", pd_floor, 0.0, 1.0, "PD input floor, a probability")
    scale = _scalar("scaling", scaling, 0.0, math.inf, "multiplier of K")
    p = np.maximum(p, floor)
    w = -np.expm1(-35.0 * p) / -math.expm1(-35.0)
    r = 0.03 * w + 0.16 * (1.0 - w)
    k = _asrf_capital(p, loss, r, el_best_estimate)
    return _out(np.where(np.broadcast_to(p, k.shape) < 1, k * scale, k))


def standardised_capital(
    ead: object,
    risk_weight: object,
    guaranteed_share: object = 0.0,
    guarantor_risk_weight: object = None,
    capital_ratio: float = CAPITAL_RATIO,
) -> np.ndarray:
    """Standardised-approach capital in yuan: capital_ratio x EAD x [(1 - g) RW + g RW_g], EAD in
    yuan, RW the borrower's risk weight (a fraction: 1.00 corporate, 0.85 corporate SME, 0.75
    regulatory retail, CRE20), g the guaranteed share of EAD taking the guarantor's RW_g by
    substitution (CRE22). ``guarantor_risk_weight`` is required when any g > 0."""
    e = _values("ead", ead, 0.0, math.inf, "exposure at default in yuan")
    rw = _values("risk_weight", risk_weight, 0.0, math.inf, "standardised risk weight, a fraction")
    g = _values("guaranteed_share", guaranteed_share, 0.0, 1.0, "share of EAD covered by the guarantee")
    ratio = _scalar("capital_ratio", capital_ratio, 0.0, 1.0, "capital per yuan of RWA")
    if guarantor_risk_weight is None:
        if (g > 0).any():
            raise ValueError(
                "guarantor_risk_weight must be given (a fraction >= 0) when guaranteed_share > 0"
            )
        rw_g = np.zeros(())
    else:
        rw_g = _values("guarantor_risk_weight", guarantor_risk_weight, 0.0, math.inf,
                       "guarantor's standardised risk weight, a fraction")
    return _out(np.asarray(ratio * e * ((1.0 - g) * rw + g * rw_g)))
