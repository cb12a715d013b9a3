"""E-values: how strong unmeasured confounding would have to be to explain an estimate away.

For a risk ratio RR > 1, E = RR + sqrt(RR (RR - 1)); for RR < 1 use 1/RR. The E-value of the
confidence interval is that of the limit nearer the null, or 1 when the interval includes 1.
Hazard and odds ratios are first turned into risk ratios: with a rare outcome (< 15% by the end of
follow-up) they approximate the RR as they stand; with a common outcome
RR ~ sqrt(OR) and RR ~ (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR)).

References
----------
VanderWeele TJ, Ding P. Sensitivity analysis in observational research: introducing the E-value.
Ann Intern Med 2017;167:268-274.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from follicle.errors import InputError

Measure = Literal["RR", "HR", "OR"]


@dataclass(frozen=True)
class EValue:
    """E-values of a point estimate and of its confidence limit nearer the null."""

    estimate: float
    rr: float
    evalue_estimate: float
    evalue_ci: float | None
    measure: str
    rare: bool


def _rr_from(value: float, measure: str, rare: bool) -> float:
    if measure == "RR" or rare:
        return value
    if measure == "OR":
        return math.sqrt(value)
    return (1 - 0.5 ** math.sqrt(value)) / (1 - 0.5 ** math.sqrt(1 / value))


def evalue_rr(rr: float) -> float:
    """E-value of a risk ratio (VanderWeele & Ding 2017, eq. for RR; RR < 1 is inverted)."""
    if not (isinstance(rr, (int, float)) and math.isfinite(rr) and rr > 0):
        raise InputError(f"A risk ratio must be a finite number > 0. Got {rr!r} instead.")
    r = rr if rr >= 1 else 1 / rr
    return r + math.sqrt(r * (r - 1))


def evalue(estimate: float, ci_low: float | None = None, ci_high: float | None = None, *,
           measure: Measure = "RR", rare: bool = True) -> EValue:
    """E-value of a ratio estimate and of its confidence limit nearer the null.

    Parameters
    ----------
    estimate, ci_low, ci_high : the ratio and (optionally) its confidence limits.
    measure : ``"RR"``, ``"HR"`` or ``"OR"``.
    rare : outcome rare (< 15%) by the end of follow-up; if False, HR and OR are converted.
    """
    if measure not in ("RR", "HR", "OR"):
        raise InputError(f"The 'measure' parameter must be 'RR', 'HR' or 'OR'. Got {measure!r} instead.")
    vals = {"estimate": estimate, "ci_low": ci_low, "ci_high": ci_high}
    for name, v in vals.items():
        if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise InputError(f"The '{name}' parameter must be a finite ratio > 0. Got {v!r} instead.")
    if ci_low is not None and ci_high is not None and not ci_low <= estimate <= ci_high:
        raise InputError(f"The confidence interval must contain the estimate. Got {estimate!r} "
                         f"outside [{ci_low!r}, {ci_high!r}].")
    rr = _rr_from(float(estimate), measure, rare)
    e_est = evalue_rr(rr)
    e_ci: float | None = None
    limit = ci_low if rr > 1 else ci_high if rr < 1 else None
    if rr == 1:
        e_ci = 1.0
    elif limit is not None:
        rr_lim = _rr_from(float(limit), measure, rare)
        crosses = rr_lim <= 1 if rr > 1 else rr_lim >= 1
        e_ci = 1.0 if crosses else evalue_rr(rr_lim)
    return EValue(estimate=float(estimate), rr=rr, evalue_estimate=e_est, evalue_ci=e_ci,
                  measure=measure, rare=rare)
