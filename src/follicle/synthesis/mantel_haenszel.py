"""Mantel-Haenszel pooling of 2x2 tables (OR, RR, RD), as metafor's ``rma.mh``.

The pooled estimate uses the raw tables (metafor default: no continuity correction for the
MH computation, ``add=c(1/2, 0)``, ``to=c("only0", "none")``); tables with no events in both
arms contribute nothing to OR/RR. Q is computed from the study-level ``yi``/``vi``
(continuity-corrected, double-zero tables dropped) around the MH estimate.

With no informative table (OR: R or S is 0, i.e. no table has an event in one arm and a
non-event in the other; RR: no event in one arm across all tables) the estimate is NaN with
the reason, and the Cochran-Mantel-Haenszel test is still reported when any table has both
events and non-events, as metafor's ``rma.mh`` does.

References
----------
Mantel N, Haenszel W. J Natl Cancer Inst 1959;22:719-48.
Robins J, Breslow N, Greenland S. Estimators of the Mantel-Haenszel variance consistent in both
    sparse data and large-strata limiting models. Biometrics 1986;42:311-23 (OR variance).
Greenland S, Robins JM. Estimation of a common effect parameter from sparse follow-up data.
    Biometrics 1985;41:55-68 (RR and RD variances).
Breslow NE, Day NE. Statistical Methods in Cancer Research I. IARC 1980; Tarone RE.
    Biometrika 1985;72:91-5 (Breslow-Day test with Tarone's correction).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2


@dataclass(frozen=True)
class MHResult:
    estimate: float  # log OR / log RR / RD
    se: float
    cmh: float = float("nan")  # Cochran-Mantel-Haenszel test (OR only)
    cmh_p: float = float("nan")
    tarone: float = float("nan")  # Breslow-Day test with Tarone's correction (OR only)
    tarone_p: float = float("nan")
    breslow_day: float = float("nan")
    reason: str = ""  # why the estimate is NaN (no informative table)


def mantel_haenszel(tables: np.ndarray, measure: str, *, correct: bool = True) -> MHResult:
    """Pool k 2x2 tables (columns a, b, c, d: events/non-events treated, events/non-events control)."""
    t = np.asarray(tables, dtype=float)
    a, b, c, d = t[:, 0], t[:, 1], t[:, 2], t[:, 3]
    n1, n2 = a + b, c + d
    N = n1 + n2
    if measure == "OR":
        P = a / N + d / N
        Q = b / N + c / N
        R_i = (a / N) * d
        S_i = (b / N) * c
        R, S = R_i.sum(), S_i.sum()
        xt, yt = a + c, b + d
        cmh = float("nan")
        if xt.sum() > 0 and yt.sum() > 0:
            num = (abs(np.sum(a - (n1 / N) * xt)) - (0.5 if correct else 0.0)) ** 2
            cmh = float(num / np.sum((n1 / N) * (n2 / N) * (xt * (yt / (N - 1)))))
        cmh_p = float(chi2.sf(cmh, 1)) if np.isfinite(cmh) else float("nan")
        if R == 0 or S == 0:
            side = "treated events with control non-events" if R == 0 else "control events with treated non-events"
            return MHResult(
                estimate=float("nan"), se=float("nan"), cmh=cmh, cmh_p=cmh_p,
                reason=f"no informative table for the Mantel-Haenszel OR: no table has {side} "
                       f"({'R' if R == 0 else 'S'} = 0)",
            )
        or_ = R / S
        se = np.sqrt(
            0.5 * (np.sum(P * R_i) / R**2 + np.sum(P * S_i + Q * R_i) / (R * S) + np.sum(Q * S_i) / S**2)
        )
        bd, ta = _breslow_day_tarone(a, n1, n2, xt, yt, N, or_)
        kpos_df = ta[1]
        return MHResult(
            estimate=float(np.log(or_)),
            se=float(se),
            cmh=cmh,
            cmh_p=cmh_p,
            tarone=ta[0],
            tarone_p=float(chi2.sf(ta[0], kpos_df)) if kpos_df > 0 else float("nan"),
            breslow_day=bd,
        )
    if measure == "RR":
        R = np.sum(a * (n2 / N))
        S = np.sum(c * (n1 / N))
        if a.sum() == 0 or c.sum() == 0:
            arm = "treated" if a.sum() == 0 else "control"
            return MHResult(estimate=float("nan"), se=float("nan"),
                            reason=f"no informative table for the Mantel-Haenszel RR: no events in the {arm} arm "
                                   "of any table")
        se = np.sqrt(np.sum((n1 / N) * (n2 / N) * (a + c) - (a / N) * c) / (R * S))
        return MHResult(estimate=float(np.log(R / S)), se=float(se))
    if measure == "RD":
        denom = np.sum(n1 * (n2 / N))
        rd = np.sum(a * (n2 / N) - c * (n1 / N)) / denom
        var = (
            rd * np.sum(c * (n1 / N) ** 2 - a * (n2 / N) ** 2 + (n1 / N) * (n2 / N) * (n2 - n1) / 2)
            + np.sum(a * (n2 - c) / N + c * (n1 - a) / N) / 2
        ) / denom**2
        return MHResult(estimate=float(rd), se=float(np.sqrt(var)))
    raise ValueError(f"The 'measure' parameter of mantel_haenszel must be OR, RR or RD. Got {measure!r} instead.")


def _breslow_day_tarone(
    a: np.ndarray, n1: np.ndarray, n2: np.ndarray, xt: np.ndarray, yt: np.ndarray, N: np.ndarray, or_: float
) -> tuple[float, tuple[float, int]]:
    if or_ == 1:
        n11 = (n1 / N) * xt
    else:
        A = or_ * (n1 + xt) + (n2 - xt)
        B = np.sqrt(A**2 - 4 * n1 * xt * or_ * (or_ - 1))
        n11 = (A - B) / (2 * (or_ - 1))
    pos = (n11 > 0) & (xt > 0) & (yt > 0)
    kpos = int(pos.sum())
    n11 = n11[pos]
    n12 = n1[pos] - n11
    n21 = xt[pos] - n11
    n22 = n11 - n1[pos] - xt[pos] + N[pos]
    inv = 1 / (1 / n11 + 1 / n12 + 1 / n21 + 1 / n22)
    bd = max(0.0, float(np.sum((a[pos] - n11) ** 2 / inv)))
    ta = max(0.0, bd - float(np.sum(a[pos] - n11) ** 2 / np.sum(inv)))
    return bd, (ta, kpos - 1)
