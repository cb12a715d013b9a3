"""Test of proportional hazards, as R's ``cox.zph`` (survival >= 3.0; transform "km" by default).

For each term the test is the score test of adding ``x * g(t)`` to the fitted Cox model, with
g(t) = 1 - KM(t-) (the "km" transform) centred at its mean over the events; the global test adds
all of them at once. This is the Grambsch-Therneau test in the exact score form that survival 3.x
computes (not the older approximation from scaled Schoenfeld residuals).

References
----------
Grambsch PM, Therneau TM. Proportional hazards tests and diagnostics based on weighted
residuals. Biometrika 1994;81:515-526.
Therneau TM. survival package for R, ``cox.zph`` and ``zph1.c`` (version 3.x).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from follicle.distributions import chi2_sf, rank_average
from follicle.survival import _cox_kernel as kernel
from follicle.survival._inputs import as_groups, as_time_event, check_choice, column_name
from follicle.survival._risktable import risk_table
from follicle.survival.cox import CoxPH, _as_matrix

TRANSFORMS = ("km", "identity", "rank", "log")


@dataclass(frozen=True)
class ZphResult:
    """``table``: one row per term plus ``GLOBAL``, columns chisq, df, p (as R's ``cox.zph()$table``)."""

    table: pd.DataFrame
    transform: str


def _transform_times(t: np.ndarray, e: np.ndarray, transform: str) -> np.ndarray:
    if transform == "identity":
        return t.copy()
    if transform == "log":
        return np.log(t)
    if transform == "rank":
        return rank_average(t)
    rt = risk_table(t, e)
    surv = np.cumprod(1.0 - rt.n_event[0] / rt.n_risk[0])
    idx = np.searchsorted(rt.time, t, side="left")  # number of distinct times strictly below t
    return 1.0 - np.r_[1.0, surv][idx]


def cox_zph(
    model: CoxPH,
    X: Any,
    time: Any,
    event: Any,
    *,
    strata: Any = None,
    weights: Any = None,
    transform: str = "km",
    terms: dict[str, list[int]] | None = None,
) -> ZphResult:
    """Proportional-hazards test for a fitted :class:`CoxPH` on the data it was fitted to.

    Parameters
    ----------
    model : CoxPH
        A fitted model (its coefficients and tie method are used).
    X, time, event, strata, weights
        The data the model was fitted to.
    transform : {"km", "identity", "rank", "log"}
        Function of time g(t) the test looks for a trend against.
    terms : dict, optional
        Term name -> column indices tested jointly (e.g. the dummies of one factor);
        default one term per column.
    """
    check_choice("transform", transform, TRANSFORMS)
    if not hasattr(model, "coef_"):
        raise AttributeError("cox_zph needs a fitted CoxPH; call fit first.")
    infinite = getattr(model, "infinite_", {})
    if infinite:
        raise ValueError(f"the PH test is not defined: the estimate of {', '.join(map(repr, infinite))} is infinite "
                         "(monotone likelihood)")
    t, e = as_time_event(time, event)
    xm, names = _as_matrix(X)
    s = None if strata is None else as_groups(strata, len(t), column_name(strata, "strata"), min_groups=1)[0]
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    data = kernel.prepare(t, e, xm, strata=s, weights=w, ties=model.ties)
    p = xm.shape[1]
    ttimes = _transform_times(t, e, transform)
    gsub = ttimes - ttimes[e].mean()
    g_of_group = np.zeros(data.n_groups)
    g_of_group[data.row_group[data.cell]] = gsub
    ts = kernel.term_stats(data, np.asarray(model.coef_, dtype=float))
    tw = data.term_w
    gt = g_of_group[data.term_g]
    dead_sum = np.zeros((data.n_groups, p))
    np.add.at(dead_sum, data.row_group, data.w_death[:, None] * data.x)
    u2 = (g_of_group[:, None] * dead_sum).sum(axis=0) - (gt[:, None] * tw[:, None] * ts.xbar).sum(axis=0)
    imat = np.zeros((2 * p, 2 * p))
    imat[:p, :p] = kernel.weighted_information(data, ts, tw)
    imat[:p, p:] = kernel.weighted_information(data, ts, tw * gt)
    imat[p:, :p] = imat[:p, p:].T
    imat[p:, p:] = kernel.weighted_information(data, ts, tw * gt**2)
    u = np.r_[np.zeros(p), u2]
    terms = terms or {nm: [j] for j, nm in enumerate(names)}
    rows = []
    for term, cols in terms.items():
        kk = list(range(p)) + [p + j for j in cols]
        stat = float(u[kk] @ np.linalg.solve(imat[np.ix_(kk, kk)], u[kk]))
        rows.append((term, stat, len(cols)))
    rows.append(("GLOBAL", float(u @ np.linalg.solve(imat, u)), p))
    table = pd.DataFrame(rows, columns=["term", "chisq", "df"]).set_index("term")
    table["p"] = chi2_sf(table["chisq"], table["df"])
    return ZphResult(table, transform)
