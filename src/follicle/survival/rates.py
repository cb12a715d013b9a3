"""Incidence rates with exact Poisson confidence intervals.

References
----------
Garwood F. Fiducial limits for the Poisson distribution. Biometrika 1936;28:437-442 (the exact
interval that R's ``poisson.test`` reports).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


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
    low = 0.0 if events == 0 else stats.chi2.ppf(alpha / 2, 2 * events) / 2
    high = stats.chi2.ppf(1 - alpha / 2, 2 * (events + 1)) / 2
    return float(low), float(high)


def incidence_rate(
    events: int, person_years: float, *, per: float = 100.0, conf_level: float = 0.95
) -> IncidenceRate:
    """Incidence rate per ``per`` person-years (100 or 1,000 are usual) with an exact CI."""
    if not np.isfinite(person_years) or person_years <= 0:
        raise ValueError(f"person_years must be > 0; got {person_years!r}")
    low, high = poisson_exact_ci(events, conf_level)
    scale = per / person_years
    return IncidenceRate(int(events), float(person_years), per, events * scale, low * scale, high * scale, conf_level)
