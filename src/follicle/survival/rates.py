"""Incidence rates with exact Poisson confidence intervals.

References
----------
Garwood F. Fiducial limits for the Poisson distribution. Biometrika 1936;28:437-442 (the exact
interval that R's ``poisson.test`` reports).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from follicle.distributions import beta_ppf, chi2_ppf
from follicle.survival._inputs import as_groups, as_time_event, check_choice


@dataclass(frozen=True)
class IncidenceRate:
    """Events per ``per`` person-years with an exact (Garwood) confidence interval."""

    events: int
    person_years: float
    per: float
    rate: float
    ci_low: float
    ci_high: float
    conf_level: float


def poisson_exact_ci(events: int, conf_level: float = 0.95) -> tuple[float, float]:
    """Exact CI for a Poisson count (Garwood): the limits of ``poisson.test(events)`` in R."""
    if events < 0 or int(events) != events:
        raise ValueError(f"events must be a non-negative integer; got {events!r}")
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be in (0, 1); got {conf_level!r}")
    alpha = 1.0 - conf_level
    low = 0.0 if events == 0 else chi2_ppf(alpha / 2, 2 * events) / 2
    high = chi2_ppf(1 - alpha / 2, 2 * (events + 1)) / 2
    return float(low), float(high)


def clopper_pearson(events: int, n: int, conf_level: float = 0.95) -> tuple[float, float]:
    """Exact binomial CI for *events* out of *n* (R ``binom.test``; Clopper & Pearson 1934)."""
    alpha = 1 - conf_level
    low = 0.0 if events == 0 else float(beta_ppf(alpha / 2, events, n - events + 1))
    high = 1.0 if events == n else float(beta_ppf(1 - alpha / 2, events + 1, n - events))
    return low, high


def incidence_rate(
    events: int, person_years: float, *, per: float = 100.0, conf_level: float = 0.95
) -> IncidenceRate:
    """Incidence rate per ``per`` person-years (100 or 1,000 are usual) with an exact CI."""
    if not np.isfinite(person_years) or person_years <= 0:
        raise ValueError(f"person_years must be > 0; got {person_years!r}")
    low, high = poisson_exact_ci(events, conf_level)
    scale = per / person_years
    return IncidenceRate(int(events), float(person_years), per, events * scale, low * scale, high * scale, conf_level)


DAYS_PER_YEAR = 365.25
_UNIT_TO_YEARS = {"days": 1 / DAYS_PER_YEAR, "weeks": 7 / DAYS_PER_YEAR, "months": 1 / 12, "years": 1.0}


@dataclass(frozen=True)
class RateRatio:
    """Ratio of two incidence rates with the exact conditional CI (R ``poisson.test(c(x1, x0), c(T1, T0))``)."""

    rate_ratio: float
    ci_low: float
    ci_high: float
    p: float
    conf_level: float


def rate_ratio(events1: int, pt1: float, events0: int, pt0: float, *, conf_level: float = 0.95) -> RateRatio:
    """Rate ratio (arm 1 over arm 0): exact CI from the binomial split of events given their total.

    References
    ----------
    Ederer F, Mantel N. Confidence limits on the ratio of two Poisson variables.
    Am J Epidemiol 1974;100:165-167.
    """
    if min(pt1, pt0) <= 0 or not np.isfinite(pt1 + pt0):
        raise ValueError(f"person-time must be > 0; got {pt1!r} and {pt0!r}")
    total = int(events1 + events0)
    scale = pt0 / pt1
    with np.errstate(divide="ignore", invalid="ignore"):
        rr = events1 / pt1 / (events0 / pt0)
    if total == 0:
        return RateRatio(float("nan"), 0.0, float("inf"), 1.0, conf_level)
    low, high = clopper_pearson(int(events1), total, conf_level)
    with np.errstate(divide="ignore"):
        ci = (low / (1 - low) * scale, high / (1 - high) * scale if high < 1 else float("inf"))
    from scipy import stats  # only here: scipy.stats is slow to import (see follicle.distributions)

    p = stats.binomtest(int(events1), total, pt1 / (pt1 + pt0)).pvalue
    return RateRatio(float(rr), float(ci[0]), float(ci[1]), float(p), conf_level)


def incidence_rates(
    time: Any,
    event: Any,
    group: Any = None,
    *,
    time_unit: str = "days",
    per: float = 1000.0,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Events, person-years and the rate per *per* person-years (exact CI), overall or per group.

    *time_unit* is the unit of *time* ("days", "weeks", "months" or "years"; a year is 365.25 days).
    Returns a DataFrame with columns group, n, events, person_years, rate, ci_low, ci_high, per.
    """
    check_choice("time_unit", time_unit, tuple(_UNIT_TO_YEARS))
    t, e = as_time_event(time, event)
    if group is None:
        codes, labels = np.zeros(len(t), dtype=np.int64), ["all"]
    else:
        codes, labels = as_groups(group, len(t), min_groups=1)
    rows = []
    for k, label in enumerate(labels):
        mask = codes == k
        py = float(t[mask].sum() * _UNIT_TO_YEARS[time_unit])
        ev = int(e[mask].sum())
        if py > 0:
            ir = incidence_rate(ev, py, per=per, conf_level=conf_level)
            rate, low, high = ir.rate, ir.ci_low, ir.ci_high
        else:
            rate = low = high = float("nan")
        rows.append({"group": label, "n": int(mask.sum()), "events": ev, "person_years": py, "rate": rate,
                     "ci_low": low, "ci_high": high, "per": per})
    return pd.DataFrame(rows)
