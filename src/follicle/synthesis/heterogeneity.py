"""Heterogeneity: Cochran's Q, I^2 (both definitions), H^2 and the Q-profile CI for tau^2.

I^2 is reported two ways:

* ``i2`` from tau^2 as metafor (and RevMan since 2024) do: ``100 tau^2 / (tau^2 + s^2)`` with the
  "typical" within-study variance ``s^2 = (k - p) / tr(P)`` (Higgins & Thompson 2002, eq. 9);
* ``i2_conventional`` = ``100 max(0, (Q - df) / Q)`` (Higgins & Thompson 2002; Cochrane Handbook 10.10.2).

For DL they coincide. For an equal-effects model metafor reports the (Q - df)/Q form.

References
----------
Higgins JPT, Thompson SG. Quantifying heterogeneity in a meta-analysis. Stat Med 2002;21:1539-58.
Viechtbauer W. Confidence intervals for the amount of heterogeneity in meta-analysis.
    Stat Med 2007;26:37-52 (Q-profile method).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import chdtrc, chdtri

from follicle.synthesis._zeroin import zeroin
from follicle.synthesis.tau2 import _design, generalized_q, p_forms


@dataclass(frozen=True)
class Heterogeneity:
    q: float
    df: int
    q_p: float
    s2: float  # typical within-study variance (metafor's vt)
    i2_conventional: float

    def i2(self, tau2: float) -> float:
        """I^2 (%) from tau^2."""
        return 100.0 * tau2 / (self.s2 + tau2) if self.df > 0 else 0.0

    def h2(self, tau2: float) -> float:
        return tau2 / self.s2 + 1.0 if self.df > 0 else 1.0


def heterogeneity(yi: object, vi: object, X: np.ndarray | None = None) -> Heterogeneity:
    """Cochran's Q with inverse-variance weights, its p-value and the typical variance s^2."""
    yi_ = np.asarray(yi, dtype=float)
    vi_ = np.asarray(vi, dtype=float)
    X_ = _design(yi_.size, X)
    k, p = X_.shape
    if k <= p:
        return Heterogeneity(q=0.0, df=0, q_p=1.0, s2=0.0, i2_conventional=0.0)
    q, tr_p, _, _ = p_forms(yi_, 1.0 / vi_, X_)
    q = max(0.0, q)
    df = k - p
    return Heterogeneity(
        q=q,
        df=df,
        q_p=float(chdtrc(df, q)),
        s2=df / tr_p,
        i2_conventional=conventional_i2(q, df),
    )


def conventional_i2(q: float, df: int) -> float:
    """100 max(0, (Q - df) / Q) (Higgins & Thompson 2002)."""
    return max(0.0, 100.0 * (q - df) / q) if q > 0 and df > 0 else 0.0


def qprofile_tau2_ci(
    yi: object,
    vi: object,
    X: np.ndarray | None = None,
    *,
    level: float = 0.95,
    tau2_hint: float = 0.0,
    xtol: float = 1e-12,
    r_tol: float | None = None,
) -> tuple[float, float]:
    """Q-profile confidence interval for tau^2 (Viechtbauer 2007), as metafor's ``confint``.

    The bounds solve ``Q(tau^2) = chi2_{df, 1-alpha/2}`` (lower) and ``chi2_{df, alpha/2}``
    (upper); a bound is 0 when Q(0) is already below its quantile. The search runs on
    [0, max(100, 10 tau2_hint)] as metafor does; a bound beyond it is returned as that limit.
    ``r_tol`` switches to R's ``uniroot`` algorithm with that tolerance (metafor's default is
    ``eps**0.25``, about 1.2e-4, which moves I^2 bounds in the third decimal).
    """
    yi_ = np.asarray(yi, dtype=float)
    vi_ = np.asarray(vi, dtype=float)
    X_ = _design(yi_.size, X)
    k, p = X_.shape
    df = k - p
    if df < 1:
        return float("nan"), float("nan")
    alpha = 1 - level
    crit_u = float(chdtri(df, alpha / 2))  # chi2 upper alpha/2 quantile, for the lower bound
    crit_l = float(chdtri(df, 1 - alpha / 2))  # lower alpha/2 quantile, for the upper bound
    tmax = max(100.0, 10 * tau2_hint)

    def q(t: float) -> float:
        return generalized_q(t, yi_, vi_, X_)

    q0, qmax = q(0.0), q(tmax)

    def root(target: float) -> float:
        if r_tol is not None:
            return zeroin(lambda t: q(t) - target, 0.0, tmax, tol=r_tol)
        return float(brentq(lambda t: q(t) - target, 0.0, tmax, xtol=xtol, rtol=4 * np.finfo(float).eps))

    if q0 < crit_l:
        return 0.0, 0.0
    upper = tmax if qmax > crit_l else root(crit_l)
    if qmax > crit_u:
        return tmax, tmax
    lower = 0.0 if q0 < crit_u else root(crit_u)
    return lower, upper
