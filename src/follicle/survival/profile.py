"""Profile log partial likelihood of the treatment coefficient on an adaptive grid.

What a site shares instead of its rows so that sites can be pooled on the likelihood rather than
on the normal approximation (EvidenceSynthesis, Schuemie et al. 2022). The outcome model has the
treatment as its only covariate (:func:`follicle.survival.fit_outcome_model`), so the profile is
the log partial likelihood at fixed beta: nothing else is re-maximised. Strata (matched sets, PS
strata) and case weights (IPTW) enter as the study's model uses them.

The grid is dense where the curve matters: steps of a fifth of the SE within 3 SE of the
maximum, half an SE beyond, until the curve has dropped :data:`DROP` below its maximum or
``|beta|`` reaches :data:`LIMIT` (a monotone likelihood, whose maximum is at infinity, is
walked from 0 to the limit on both sides).

References
----------
Schuemie MJ, Chen Y, Madigan D, Suchard MA. Combining Cox regressions across a heterogeneous
distributed research network facing small and zero counts. Stat Methods Med Res 2022;31:438-450.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from follicle.survival import _cox_kernel as kernel

#: How far below its maximum the grid follows the curve (log-likelihood units; 1.92 is the 95% CI).
DROP = 12.0
#: The grid stops at |log HR| = LIMIT (an HR of about 1 / 22,000 or 22,000).
LIMIT = 10.0
MAX_POINTS = 160


@dataclass(frozen=True)
class Profile:
    """A profile log-likelihood: ``beta`` (log HR, increasing) and ``loglik`` at each, shifted so
    the maximum over the grid is 0."""

    beta: np.ndarray
    loglik: np.ndarray

    def to_dict(self, digits: int = 5) -> dict[str, list[float]]:
        return {"beta": [round(float(b), digits) for b in self.beta],
                "loglik": [round(float(v), digits) for v in self.loglik]}

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> Profile:
        return cls(np.asarray(d["beta"], dtype=float), np.asarray(d["loglik"], dtype=float))


def cox_profile(
    time: np.ndarray,
    event: np.ndarray,
    treatment: np.ndarray,
    *,
    center: float,
    se: float,
    strata: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    ties: str = "efron",
) -> Profile:
    """The profile of the treatment coefficient around *center* (the fitted log HR, or 0 when it is
    infinite) with step scale *se* (the fitted SE; 0.5 when not finite)."""
    x = np.asarray(treatment, dtype=float).reshape(-1, 1)
    data = kernel.prepare(np.asarray(time, dtype=float), np.asarray(event, dtype=bool), x,
                          strata=strata, weights=weights, ties=ties)

    def ll(b: float) -> float:
        return kernel.loglik_derivs(data, np.array([b]))[0]

    c = float(center) if np.isfinite(center) else 0.0
    c = min(max(c, -LIMIT), LIMIT)
    s = float(se) if np.isfinite(se) and se > 0 else 0.5
    s = min(max(s, 0.01), 2.0)
    points = {c: ll(c)}
    top = points[c]
    for sign in (-1.0, 1.0):
        b, k = c, 0
        while k < MAX_POINTS // 2:
            step = s / 5 if abs(b - c) < 3 * s else s / 2
            b = b + sign * step
            if abs(b) > LIMIT:
                b = sign * LIMIT
            points[b] = ll(b)
            top = max(top, points[b])
            k += 1
            if points[b] < top - DROP or abs(b) >= LIMIT:
                break
    beta = np.array(sorted(points))
    values = np.array([points[b] for b in beta])
    return Profile(beta, values - values.max())
