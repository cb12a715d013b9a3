"""Risk of the outcome per arm at the end of a window, and the risk difference, ratio and odds ratio.

Two estimators, named in every result:

* ``"crude"``: cumulative incidence as events / n, where an event counts if it happened by the end
  of the window and n is everyone in the arm (censored or not). This is what TriNetX reports as
  "risk"; it is biased downwards when follow-up is incomplete. Arm CIs are exact
  (Clopper-Pearson); RD uses the Wald interval, RR and OR the log-scale Wald (Katz; Woolf) intervals.
* ``"km"``: 1 - KM(window) per arm, which accounts for censoring. Arm CIs are 1 minus the
  log-log limits of KM; RD, log RR and log OR use the delta method on Greenwood variances.

References
----------
Clopper CJ, Pearson ES. The use of confidence or fiducial limits illustrated in the case of the
binomial. Biometrika 1934;26:404-413.
Katz D, Baptista J, Azen SP, Pike MC. Obtaining confidence intervals for the risk ratio in cohort
studies. Biometrics 1978;34:469-474.
Woolf B. On estimating the relation between blood group and disease. Ann Hum Genet 1955;19:251-253.
Greenwood M. The natural duration of cancer. Reports on Public Health 1926;33.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from follicle.distributions import norm_ppf
from follicle.errors import InputError
from follicle.survival._inputs import as_groups, as_time_event, check_choice, check_conf_level, column_name
from follicle.survival.kaplan_meier import kaplan_meier
from follicle.survival.rates import clopper_pearson

ESTIMATORS = ("crude", "km")


@dataclass(frozen=True)
class ArmRisk:
    """Risk in one arm: ``events`` is the number with the event by the window end."""

    arm: Any
    n: int
    events: int
    risk: float
    ci_low: float
    ci_high: float
    variance: float


@dataclass(frozen=True)
class RiskComparison:
    """Treated versus comparator: risk difference (rd), risk ratio (rr) and odds ratio (or_)."""

    estimator: str
    window: float | None
    conf_level: float
    treated: ArmRisk
    comparator: ArmRisk
    rd: float
    rd_ci_low: float
    rd_ci_high: float
    rr: float
    rr_ci_low: float
    rr_ci_high: float
    or_: float
    or_ci_low: float
    or_ci_high: float

    def to_frame(self) -> pd.DataFrame:
        """Rows rd, rr, or with columns estimate, ci_low, ci_high."""
        return pd.DataFrame(
            {"estimate": [self.rd, self.rr, self.or_], "ci_low": [self.rd_ci_low, self.rr_ci_low, self.or_ci_low],
             "ci_high": [self.rd_ci_high, self.rr_ci_high, self.or_ci_high]},
            index=pd.Index(["rd", "rr", "or"], name="measure"),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _wald(est: float, se: float, z: float, log: bool) -> tuple[float, float]:
    with np.errstate(divide="ignore", invalid="ignore"):
        if log:
            if not (est > 0 and np.isfinite(est) and np.isfinite(se)):
                return float("nan"), float("nan")
            return float(np.exp(np.log(est) - z * se)), float(np.exp(np.log(est) + z * se))
        return float(est - z * se), float(est + z * se)


def _compare(t: ArmRisk, c: ArmRisk, z: float, estimator: str) -> tuple[float, ...]:
    with np.errstate(divide="ignore", invalid="ignore"):
        pt, pc = np.float64(t.risk), np.float64(c.risk)
        rd = pt - pc
        rd_se = np.sqrt(t.variance + c.variance)
        rr = pt / pc
        or_ = (pt / (1 - pt)) / (pc / (1 - pc))
        if estimator == "crude":
            a, b, cc, d = t.events, t.n - t.events, c.events, c.n - c.events
            rr_se = np.sqrt(1 / a - 1 / t.n + 1 / cc - 1 / c.n) if a > 0 and cc > 0 else np.nan
            or_se = np.sqrt(1 / a + 1 / b + 1 / cc + 1 / d) if min(a, b, cc, d) > 0 else np.nan
        else:
            rr_se = np.sqrt(t.variance / pt**2 + c.variance / pc**2)
            or_se = np.sqrt(t.variance / (pt * (1 - pt)) ** 2 + c.variance / (pc * (1 - pc)) ** 2)
    return (float(rd), *_wald(rd, rd_se, z, False), float(rr), *_wald(rr, rr_se, z, True), float(or_),
            *_wald(or_, or_se, z, True))


def _arm(t: np.ndarray, e: np.ndarray, label: Any, window: float | None, estimator: str, conf_level: float) -> ArmRisk:
    hit = e if window is None else e & (t <= window)
    events = int(hit.sum())
    n = len(t)
    if estimator == "crude":
        p = events / n
        low, high = clopper_pearson(events, n, conf_level)
        return ArmRisk(label, n, events, p, low, high, p * (1 - p) / n)
    km = kaplan_meier(t, e, conf_level=conf_level)
    s = float(km.survival_at([window])[0])
    var = float(km.variance_at([window])[0])
    idx = np.searchsorted(km.time, window, side="right") - 1
    if idx < 0 or s == 1.0:
        low_s, high_s = 1.0, 1.0
    else:
        low_s, high_s = float(km.ci_low[idx]), float(km.ci_high[idx])
    return ArmRisk(label, n, events, 1 - s, 1 - high_s, 1 - low_s, var)


def risk_comparison(
    time: Any,
    event: Any,
    treatment: Any,
    *,
    window: float | None = None,
    estimator: str = "crude",
    treated: Any = 1,
    conf_level: float = 0.95,
) -> RiskComparison:
    """Risk per arm by the end of *window* and the RD, RR and OR of treated versus comparator.

    Parameters
    ----------
    time, event : array-like
        Follow-up time and outcome indicator.
    treatment : array-like
        Arm of each subject: exactly two values, one of them equal to *treated*.
    window : float, optional
        End of the risk window in the units of *time*; required for ``estimator="km"``. With the
        crude estimator and no window, every event counts.
    estimator : {"crude", "km"}
        Crude cumulative incidence events / n (as TriNetX) or 1 - Kaplan-Meier at the window end.
    """
    check_choice("estimator", estimator, ESTIMATORS)
    check_conf_level(conf_level)
    if estimator == "km" and window is None:
        raise ValueError("The 'window' parameter is required for estimator='km'. Got None instead.")
    if window is not None and not (np.isfinite(window) and window > 0):
        raise ValueError(f"The 'window' parameter must be > 0. Got {window!r} instead.")
    t, e = as_time_event(time, event)
    name = column_name(treatment, "treatment")
    codes, labels = as_groups(treatment, len(t), name)
    if len(labels) != 2 or treated not in labels:
        raise InputError(f"column '{name}' must have exactly two arms including {treated!r}; got {labels[:5]}")
    k_t = labels.index(treated)
    arms = [_arm(t[codes == k], e[codes == k], labels[k], window, estimator, conf_level) for k in (k_t, 1 - k_t)]
    z = float(norm_ppf(1 - (1 - conf_level) / 2))
    return RiskComparison(estimator, window, conf_level, arms[0], arms[1], *_compare(arms[0], arms[1], z, estimator))
