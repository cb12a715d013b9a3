"""Study diagnostics as data: PASS / FAIL against declared thresholds, as OHDSI CohortMethod does.

Thresholds are CohortMethod's defaults (``createCmDiagnosticThresholds``: sdmThreshold 0.1,
equipoiseThreshold 0.2, mdrrThreshold 10, easeThreshold 0.25); the balance threshold comes from
the study spec.

References
----------
Schuemie MJ et al. (2018). Empirical confidence interval calibration for population-level effect
estimation studies in observational healthcare data. PNAS 115(11):2571-2577 (EASE).
Schoenfeld DA (1983). Sample-size formula for the proportional-hazards regression model.
Biometrics 39:499-503 (MDRR from the number of events).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

EQUIPOISE_THRESHOLD = 0.2
MDRR_THRESHOLD = 10.0
EASE_THRESHOLD = 0.25


@dataclass(frozen=True)
class Diagnostic:
    """One diagnostic: its value, the rule, and PASS / FAIL / NOT_EVALUATED."""

    name: str
    value: float | None
    threshold: float
    threshold_text: str
    status: str

    def to_dict(self) -> dict:
        return asdict(self)


def _judge(name: str, value: float | None, threshold: float, text: str, ok: bool | None) -> Diagnostic:
    status = "NOT_EVALUATED" if ok is None else ("PASS" if ok else "FAIL")
    return Diagnostic(name, None if value is None else float(value), threshold, text, status)


def balance_diagnostic(max_abs_smd: float, threshold: float) -> Diagnostic:
    ok = None if not np.isfinite(max_abs_smd) else bool(max_abs_smd < threshold)
    return _judge("max |SMD| after matching", max_abs_smd, threshold, f"< {threshold:g}", ok)


def equipoise_diagnostic(equipoise: float, threshold: float = EQUIPOISE_THRESHOLD) -> Diagnostic:
    return _judge("equipoise (share with preference 0.3-0.7)", equipoise, threshold, f">= {threshold:g}",
                  bool(equipoise >= threshold))


def not_evaluated_equipoise(threshold: float = EQUIPOISE_THRESHOLD) -> Diagnostic:
    """Equipoise when no propensity model was fitted (every adjustment crude)."""
    return _judge("equipoise (share with preference 0.3-0.7)", None, threshold, f">= {threshold:g}", None)


def mdrr(events: int, n_target: int, n_comparator: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable relative risk of a two-arm Cox comparison (Schoenfeld's formula)."""
    n = n_target + n_comparator
    if events <= 0 or n_target <= 0 or n_comparator <= 0:
        return math.inf
    pa, pb = n_target / n, n_comparator / n
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(math.exp(math.sqrt(z * z / (events * pa * pb))))


def mdrr_diagnostic(value: float, threshold: float = MDRR_THRESHOLD) -> Diagnostic:
    return _judge("minimum detectable relative risk", value if math.isfinite(value) else None, threshold,
                  f"<= {threshold:g}", bool(value <= threshold))


def expected_absolute_systematic_error(mean: float, sd: float) -> float:
    """E|X| for the empirical null X ~ N(mean, sd^2) on the log scale (EASE, Schuemie 2018)."""
    if sd <= 0:
        return abs(mean)
    return float(sd * math.sqrt(2 / math.pi) * math.exp(-mean**2 / (2 * sd**2))
                 + mean * (1 - 2 * stats.norm.cdf(-mean / sd)))


def ease_diagnostic(mean: float | None, sd: float | None, threshold: float = EASE_THRESHOLD) -> Diagnostic:
    if mean is None or sd is None:
        return _judge("expected absolute systematic error (EASE)", None, threshold, f"<= {threshold:g}", None)
    value = expected_absolute_systematic_error(mean, sd)
    return _judge("expected absolute systematic error (EASE)", value, threshold, f"<= {threshold:g}",
                  bool(value <= threshold))
