"""The log-rank test (and its stratified form), as R's ``survdiff(..., rho = 0)``.

References
----------
Mantel N. Evaluation of survival data and two new rank order statistics arising in its
consideration. Cancer Chemother Rep 1966;50:163-170.
Peto R, Peto J. Asymptotically efficient rank invariant test procedures. JRSS A 1972;135:185-207.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from follicle.distributions import chi2_sf
from follicle.survival._inputs import as_groups, as_time_event, column_name, require_events
from follicle.survival._risktable import RiskTable, risk_table


@dataclass(frozen=True)
class LogRankResult:
    """Chi-square test that the hazards of all groups are equal (stratified if strata were given).

    ``table`` has one row per group: n, observed, expected and (O-E)^2/E.
    """

    chisq: float
    df: int
    p: float
    table: pd.DataFrame
    variance: np.ndarray
    stratified: bool


def logrank_test(time: Any, event: Any, group: Any, *, strata: Any = None) -> LogRankResult:
    """Log-rank test comparing the survival of two or more groups.

    Parameters
    ----------
    time, event : array-like or Series
        Follow-up time (>= 0) and event indicator (1 event, 0 censored).
    group : array-like or Series
        Group of each subject; at least two distinct values.
    strata : array-like or Series, optional
        Stratum of each subject: observed minus expected and its variance are summed over strata
        (R ``survdiff(Surv(t, e) ~ group + strata(s))``).
    """
    t, e = as_time_event(time, event)
    codes, labels = as_groups(group, len(t), column_name(group, "group"))
    require_events(e, column_name(event, "event"), "the log-rank test")
    s_codes = None if strata is None else as_groups(strata, len(t), column_name(strata, "strata"), min_groups=1)[0]
    return logrank_from_table(risk_table(t, e, codes, len(labels), s_codes), codes, labels, strata is not None)


def logrank_from_table(rt: RiskTable, codes: np.ndarray, labels: list[Any], stratified: bool) -> LogRankResult:
    """Log-rank statistic from per-time counts (shared with the Kaplan-Meier curves)."""
    k = len(labels)
    use = np.flatnonzero(rt.n_event.sum(axis=0) > 0)  # only event times contribute
    n_risk = rt.n_risk[:, use].astype(np.float64)  # (k, times)
    n_event = rt.n_event[:, use].astype(np.float64)
    n = n_risk.sum(axis=0)
    d = n_event.sum(axis=0)
    frac = n_risk / n
    expected = frac @ d
    observed = n_event.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(n > 1, d * (n - d) / (n - 1), 0.0)
    # V_jk = sum_t w_t * f_j (delta_jk - f_k)
    wf = frac * w
    variance = -wf @ frac.T
    variance[np.diag_indices(k)] += wf.sum(axis=1)
    diff = observed - expected
    sub = variance[1:, 1:]
    if np.linalg.matrix_rank(sub) < k - 1:
        chisq = float(diff[1:] @ np.linalg.pinv(sub) @ diff[1:])
    else:
        chisq = float(diff[1:] @ np.linalg.solve(sub, diff[1:]))
    df = k - 1
    counts = np.bincount(codes, minlength=k)
    with np.errstate(divide="ignore", invalid="ignore"):
        table = pd.DataFrame(
            {"group": labels, "n": counts, "observed": observed, "expected": expected,
             "o_minus_e_sq_over_e": diff**2 / expected}
        )
    return LogRankResult(chisq, df, float(chi2_sf(chisq, df)), table, variance, stratified)
