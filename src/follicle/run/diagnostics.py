"""Study diagnostics as data: PASS / FAIL against declared thresholds, as OHDSI CohortMethod does.

Thresholds are CohortMethod's defaults (``createCmDiagnosticThresholds``: sdmThreshold 0.1,
equipoiseThreshold 0.2, mdrrThreshold 10, easeThreshold 0.25), each a strict bound: max |SMD|
after adjustment < 0.1 (the spec's ``balance_threshold``), equipoise > 0.2, EASE < 0.25, MDRR < 10.

Every estimate (comparison x outcome x adjustment) is judged on four: the balance of its
adjustment, the equipoise of the comparison's propensity model, the EASE of the negative controls
estimated under the same adjustment, and its own MDRR. A diagnostic that cannot be computed (no
covariates, no propensity model, fewer than 3 negative controls, no events) is NOT_EVALUATED. The
overall flag is FAIL when any diagnostic fails, else PASS: as CohortMethod's ``unblind`` rule, a
diagnostic not evaluated does not fail the estimate (the report lists it).

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

from follicle.distributions import norm_cdf, norm_ppf

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


BALANCE = "max |SMD| after adjustment"
EQUIPOISE = "equipoise (share with preference 0.3-0.7)"
MDRR = "minimum detectable relative risk"
EASE = "expected absolute systematic error (EASE)"


def balance_diagnostic(max_abs_smd: float, threshold: float) -> Diagnostic:
    ok = None if not np.isfinite(max_abs_smd) else bool(max_abs_smd < threshold)
    return _judge(BALANCE, max_abs_smd if np.isfinite(max_abs_smd) else None, threshold, f"< {threshold:g}", ok)


def equipoise_diagnostic(equipoise: float | None, threshold: float = EQUIPOISE_THRESHOLD) -> Diagnostic:
    """Equipoise of the propensity model (None: no propensity model, every adjustment crude)."""
    ok = None if equipoise is None else bool(equipoise > threshold)
    return _judge(EQUIPOISE, equipoise, threshold, f"> {threshold:g}", ok)


def mdrr(events: int, n_target: int, n_comparator: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable relative risk of a two-arm Cox comparison (Schoenfeld's formula)."""
    n = n_target + n_comparator
    if events <= 0 or n_target <= 0 or n_comparator <= 0:
        return math.inf
    pa, pb = n_target / n, n_comparator / n
    z = norm_ppf(1 - alpha / 2) + norm_ppf(power)
    return float(math.exp(math.sqrt(z * z / (events * pa * pb))))


def mdrr_diagnostic(value: float | None, threshold: float = MDRR_THRESHOLD) -> Diagnostic:
    """MDRR of one estimate; infinite (no events) fails, None (not computed) is not evaluated."""
    if value is None:
        return _judge(MDRR, None, threshold, f"< {threshold:g}", None)
    return _judge(MDRR, value if math.isfinite(value) else None, threshold, f"< {threshold:g}", bool(value < threshold))


def expected_absolute_systematic_error(mean: float, sd: float) -> float:
    """E|X| for the empirical null X ~ N(mean, sd^2) on the log scale (EASE, Schuemie 2018)."""
    if sd <= 0:
        return abs(mean)
    return float(sd * math.sqrt(2 / math.pi) * math.exp(-mean**2 / (2 * sd**2))
                 + mean * (1 - 2 * norm_cdf(-mean / sd)))


def ease_diagnostic(mean: float | None, sd: float | None, threshold: float = EASE_THRESHOLD) -> Diagnostic:
    if mean is None or sd is None:
        return _judge(EASE, None, threshold, f"< {threshold:g}", None)
    value = expected_absolute_systematic_error(mean, sd)
    return _judge(EASE, value, threshold, f"< {threshold:g}", bool(value < threshold))


def estimate_diagnostics(*, max_abs_smd: float, balance_threshold: float, equipoise: float | None,
                         events: int, n_target: int, n_comparator: int,
                         null: dict[str, float] | None) -> list[Diagnostic]:
    """The four diagnostics of one estimate (see the module docstring)."""
    return [
        balance_diagnostic(max_abs_smd, balance_threshold),
        equipoise_diagnostic(equipoise),
        mdrr_diagnostic(mdrr(events, n_target, n_comparator)),
        ease_diagnostic(null["mean"] if null else None, null["sd"] if null else None),
    ]


def overall(diagnostics: list[Diagnostic]) -> str:
    """FAIL when any diagnostic fails, else PASS (CohortMethod's unblind rule)."""
    return "FAIL" if any(d.status == "FAIL" for d in diagnostics) else "PASS"
