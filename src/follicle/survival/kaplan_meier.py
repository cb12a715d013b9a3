"""Kaplan-Meier survival curves with Greenwood standard errors, log-log CIs and medians.

Numbers follow R's ``survfit(Surv(time, event) ~ 1, conf.type = "log-log")``: one row per distinct
time (events and censorings), ``std_err`` is the Greenwood standard error of the cumulative hazard
(of log S), and the median and its CI are read off the curve and its confidence limits as
``print(survfit)`` reports them (the midpoint where the curve is flat at exactly 0.5 and drops later).

References
----------
Kaplan EL, Meier P. Nonparametric estimation from incomplete observations. JASA 1958;53:457-481.
Greenwood M. The natural duration of cancer. Reports on Public Health 1926;33.
Kalbfleisch JD, Prentice RL. The Statistical Analysis of Failure Time Data. Wiley 1980 (log-log CI).
Brookmeyer R, Crowley J. A confidence interval for the median survival time. Biometrics 1982;38:29-41.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from follicle.distributions import norm_ppf
from follicle.survival._inputs import as_groups, as_time_event, check_choice, check_conf_level
from follicle.survival._risktable import RiskTable, risk_table

CONF_TYPES = ("log-log", "log", "plain")
TABLE_COLUMNS = ["time", "n_risk", "n_event", "n_censor", "survival", "std_err", "ci_low", "ci_high"]


@dataclass(frozen=True, eq=False)
class KaplanMeierResult:
    """A Kaplan-Meier curve: arrays per distinct time (``table`` as a DataFrame) and the median with CI."""

    time: np.ndarray
    n_risk: np.ndarray
    n_event: np.ndarray
    n_censor: np.ndarray
    survival: np.ndarray
    std_err: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n: int
    events: int
    median: float
    median_ci_low: float
    median_ci_high: float
    conf_level: float
    conf_type: str
    label: Any = field(default=None)

    @cached_property
    def table(self) -> pd.DataFrame:
        """One row per distinct time: time, n_risk, n_event, n_censor, survival, std_err, ci_low, ci_high."""
        return pd.DataFrame({c: getattr(self, c) for c in TABLE_COLUMNS})

    def survival_at(self, times: Any) -> np.ndarray:
        """S(t) at *times* (right-continuous step function; 1 before the first time)."""
        return _step(self.time, self.survival, times, 1.0)

    def variance_at(self, times: Any) -> np.ndarray:
        """Greenwood variance of S(t) at *times*: S(t)^2 * sum d / (n (n - d))."""
        return (self.survival_at(times) * _step(self.time, self.std_err, times, 0.0)) ** 2

    def at_risk(self, times: Any) -> np.ndarray:
        """Numbers at risk (time >= t) at *times*, as printed under KM plots."""
        q = np.atleast_1d(np.asarray(times, dtype=float))
        idx = np.searchsorted(self.time, q, side="left")  # first row with time >= q
        out = np.zeros(len(q), dtype=np.int64)
        inside = idx < len(self.time)
        out[inside] = self.n_risk[idx[inside]]
        return out


def _step(x: np.ndarray, y: np.ndarray, times: Any, before: float) -> np.ndarray:
    q = np.atleast_1d(np.asarray(times, dtype=float))
    idx = np.searchsorted(x, q, side="right") - 1
    return np.where(idx >= 0, y[np.clip(idx, 0, None)] if len(y) else before, before)


def confidence_limits(
    surv: np.ndarray, std_err: np.ndarray, conf_level: float, conf_type: str
) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise CI for S(t) from the standard error of log S(t) (R ``survfit_confint``)."""
    z = norm_ppf(1 - (1 - conf_level) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        if conf_type == "log-log":
            xx = np.where((surv == 0) | (surv == 1), np.nan, surv)
            se2 = z * std_err / np.log(xx)
            low = np.exp(-np.exp(np.log(-np.log(xx)) - se2))
            high = np.exp(-np.exp(np.log(-np.log(xx)) + se2))
        elif conf_type == "log":
            xx = np.where(surv == 0, np.nan, surv)
            low = np.exp(np.log(xx) - z * std_err)
            high = np.minimum(np.exp(np.log(xx) + z * std_err), 1.0)
        else:
            se2 = z * std_err * surv
            low = np.maximum(surv - se2, 0.0)
            high = np.minimum(surv + se2, 1.0)
    return low, high


def _median_time(y: np.ndarray, x: np.ndarray, tol: float = np.sqrt(np.finfo(float).eps)) -> float:
    """First time the curve *y* is <= 0.5, as R's ``print(survfit)`` median (``survmean``'s ``minmin``).

    Where the curve sits exactly at 0.5 and drops later, the midpoint between that time and the
    time of the drop (Kaplan-Meier convention); NaN if the curve never reaches 0.5.
    """
    keep = ~np.isnan(y) & (y < 0.5 + tol)
    if not keep.any():
        return float("nan")
    x, y = x[keep], y[keep]
    if abs(y[0] - 0.5) < tol:
        lower = np.flatnonzero(y < y[0])
        if len(lower):
            return float((x[0] + x[lower[0]]) / 2)
    return float(x[0])


def _km_from_counts(
    time: np.ndarray, n_risk: np.ndarray, n_event: np.ndarray, n_censor: np.ndarray, conf_level: float, conf_type: str,
    label: Any = None,
) -> KaplanMeierResult:
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - n_event / n_risk)
        term = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event).astype(float)), 0.0)
        std_err = np.sqrt(np.cumsum(term))
    low, high = confidence_limits(surv, std_err, conf_level, conf_type)
    median, med_low, med_high = (_median_time(y, time) for y in (surv, low, high))
    n = int(n_risk[0]) if len(n_risk) else 0
    return KaplanMeierResult(time, n_risk, n_event, n_censor, surv, std_err, low, high, n, int(n_event.sum()),
                             median, med_low, med_high, conf_level, conf_type, label)


def kaplan_meier(time: Any, event: Any, *, conf_level: float = 0.95, conf_type: str = "log-log") -> KaplanMeierResult:
    """Kaplan-Meier estimate of S(t) with pointwise CIs and the median survival time with its CI.

    Parameters
    ----------
    time, event : array-like or Series
        Follow-up time (>= 0) and event indicator (1 event, 0 censored), one per subject.
    conf_level : float
        Confidence level of the pointwise and median intervals.
    conf_type : {"log-log", "log", "plain"}
        Scale on which the pointwise interval is symmetric (R ``conf.type``); log-log by default.
    """
    check_conf_level(conf_level)
    check_choice("conf_type", conf_type, CONF_TYPES)
    t, e = as_time_event(time, event)
    rt = risk_table(t, e)
    return _km_from_counts(rt.time, rt.n_risk[0], rt.n_event[0], rt.n_censor[0], conf_level, conf_type)


def kaplan_meier_by_group(
    time: Any, event: Any, group: Any, *, conf_level: float = 0.95, conf_type: str = "log-log"
) -> dict[Any, KaplanMeierResult]:
    """One Kaplan-Meier curve per group (labels sorted), from a single sort of the data."""
    check_conf_level(conf_level)
    check_choice("conf_type", conf_type, CONF_TYPES)
    t, e = as_time_event(time, event)
    codes, labels = as_groups(group, len(t), min_groups=1)
    return curves_from_table(risk_table(t, e, codes, len(labels)), labels, conf_level, conf_type)


def curves_from_table(rt: RiskTable, labels: list[Any], conf_level: float, conf_type: str) -> dict[Any, KaplanMeierResult]:
    """One curve per group column of a risk table (rows where the group has observations)."""
    out: dict[Any, KaplanMeierResult] = {}
    for k, label in enumerate(labels):
        if len(labels) == 1:
            seen = slice(None)
        else:
            seen = np.flatnonzero((rt.n_event[k] + rt.n_censor[k]) > 0)
        out[label] = _km_from_counts(rt.time[seen], rt.n_risk[k, seen], rt.n_event[k, seen], rt.n_censor[k, seen],
                                     conf_level, conf_type, label)
    return out


def numbers_at_risk(curves: dict[Any, KaplanMeierResult], times: Any) -> pd.DataFrame:
    """Table of numbers at risk: one row per group, one column per time (as under a KM plot)."""
    q = np.atleast_1d(np.asarray(times, dtype=float))
    return pd.DataFrame({t: [curves[k].at_risk([t])[0] for k in curves] for t in q}, index=list(curves))
