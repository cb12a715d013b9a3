"""Between-study variance (tau^2) estimators, as in metafor's ``rma.uni``; all truncated at 0.

Each estimator takes estimates ``yi``, sampling variances ``vi`` and a design matrix ``X``
(a column of ones for an intercept-only model) and returns tau^2 >= 0.

References
----------
DerSimonian R, Laird N. Meta-analysis in clinical trials. Control Clin Trials 1986;7:177-88 (DL).
Hedges LV, Olkin I. Statistical Methods for Meta-Analysis. Academic Press 1985 (HE).
Sidik K, Jonkman JN. Simple heterogeneity variance estimation for meta-analysis.
    J R Stat Soc C 2005;54:367-84 (SJ).
Paule RC, Mandel J. Consensus values and weighting factors. J Res Natl Bur Stand 1982;87:377-85 (PM).
Viechtbauer W. Bias and efficiency of meta-analytic variance estimators in the random-effects
    model. J Educ Behav Stat 2005;30:261-93 (ML, REML by Fisher scoring).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

TAU2_METHODS = ("DL", "REML", "PM", "ML", "SJ", "HE")


def _design(k: int, X: np.ndarray | None) -> np.ndarray:
    return np.ones((k, 1)) if X is None else np.asarray(X, dtype=float).reshape(k, -1)


def p_matrix(vi_plus_tau2: np.ndarray, X: np.ndarray) -> np.ndarray:
    """P = W - W X (X'WX)^-1 X'W with W = diag(1 / (vi + tau^2)) (dense; for small k and checks)."""
    w = 1.0 / vi_plus_tau2
    WX = X * w[:, None]
    return np.diag(w) - WX @ np.linalg.solve(X.T @ WX, WX.T)


def p_forms(y: np.ndarray, w: np.ndarray, X: np.ndarray) -> tuple[float, float, float, float]:
    """y'Py, tr(P), y'PPy, tr(PP) for P = W - WX(X'WX)^-1X'W, in O(k p^2) without forming P.

    With A = (X'WX)^-1 and residuals r = y - X A X'Wy: Py = w r, so y'Py = sum w r^2 and
    y'PPy = sum (w r)^2; tr(P) = sum w - tr(A X'W^2X); tr(PP) = sum w^2 - 2 tr(A X'W^3X) +
    tr((A X'W^2X)^2).
    """
    XtW = X.T * w
    A = np.linalg.inv(XtW @ X)
    r = y - X @ (A @ (XtW @ y))
    wr = w * r
    B2 = A @ (XtW * w) @ X
    B3 = A @ (XtW * w**2) @ X
    return (
        float(np.sum(wr * r)),
        float(np.sum(w) - np.trace(B2)),
        float(np.sum(wr**2)),
        float(np.sum(w**2) - 2 * np.trace(B3) + np.trace(B2 @ B2)),
    )


def generalized_q(tau2: float, yi: np.ndarray, vi: np.ndarray, X: np.ndarray) -> float:
    """Generalized Q statistic y'P(tau^2)y; Q(0) is Cochran's Q (decreasing in tau^2)."""
    w = 1.0 / (vi + tau2)
    if X.shape[1] == 1 and np.all(X == 1.0):  # intercept only: Q = sum w (y - weighted mean)^2
        r = yi - np.dot(w, yi) / w.sum()
        return float(np.dot(w, r * r))
    XtW = X.T * w
    r = yi - X @ np.linalg.solve(XtW @ X, XtW @ yi)
    return float(np.sum(w * r * r))


def _loglik(tau2: float, yi: np.ndarray, vi: np.ndarray, X: np.ndarray, reml: bool) -> float:
    k, p = X.shape
    w = 1.0 / (vi + tau2)
    WX = X * w[:, None]
    XtWX = X.T @ WX
    beta = np.linalg.solve(XtWX, WX.T @ yi)
    rss = float(np.sum(w * (yi - X @ beta) ** 2))
    if reml:
        return (
            -0.5 * (k - p) * np.log(2 * np.pi)
            - 0.5 * np.sum(np.log(vi + tau2))
            - 0.5 * np.linalg.slogdet(XtWX)[1]
            - 0.5 * rss
        )
    return -0.5 * k * np.log(2 * np.pi) - 0.5 * np.sum(np.log(vi + tau2)) - 0.5 * rss


def tau2_he(yi: np.ndarray, vi: np.ndarray, X: np.ndarray) -> float:
    """Hedges (method of moments with unit weights): (RSS_ols - tr(P_ols V)) / (k - p)."""
    k, p = X.shape
    XtX_inv = np.linalg.inv(X.T @ X)
    r = yi - X @ (XtX_inv @ (X.T @ yi))
    tr_pv = float(np.sum(vi) - np.trace(XtX_inv @ (X.T * vi) @ X))
    return (float(r @ r) - tr_pv) / (k - p)


def tau2_dl(yi: np.ndarray, vi: np.ndarray, X: np.ndarray) -> float:
    """DerSimonian-Laird: (Q - (k - p)) / tr(P) with inverse-variance weights."""
    k, p = X.shape
    q, tr_p, _, _ = p_forms(yi, 1.0 / vi, X)
    return (q - (k - p)) / tr_p


def tau2_sj(yi: np.ndarray, vi: np.ndarray, X: np.ndarray) -> float:
    """Sidik-Jonkman: tau0^2 * y'P(tau0^2)y / (k - p), tau0^2 = mean squared deviation of yi."""
    k, p = X.shape
    tau0 = float(np.mean((yi - yi.mean()) ** 2))
    return tau0 * generalized_q(tau0, yi, vi, X) / (k - p)


def tau2_pm(yi: np.ndarray, vi: np.ndarray, X: np.ndarray, *, xtol: float = 1e-14) -> float:
    """Paule-Mandel: the tau^2 at which the generalized Q equals its expectation k - p."""
    k, p = X.shape
    target = k - p
    if generalized_q(0.0, yi, vi, X) < target:
        return 0.0
    hi = 100.0
    while generalized_q(hi, yi, vi, X) > target:
        hi *= 10.0
        if hi > 1e12:
            raise ArithmeticError("Paule-Mandel: no root of Q(tau2) = k - p below 1e12")
    return float(brentq(lambda t: generalized_q(t, yi, vi, X) - target, 0.0, hi, xtol=xtol, rtol=1e-15))


def _score_at_zero(yi: np.ndarray, vi: np.ndarray, X: np.ndarray, reml: bool) -> float:
    """Derivative (times 2) of the (restricted) log-likelihood in tau^2 at tau^2 = 0."""
    w = 1.0 / vi
    _, tr_p, ypp, _ = p_forms(yi, w, X)
    return ypp - (tr_p if reml else float(np.sum(w)))


def _fisher_scoring(
    yi: np.ndarray, vi: np.ndarray, X: np.ndarray, reml: bool, threshold: float, maxiter: int
) -> float:
    """metafor's Fisher scoring for (RE)ML, started at max(0, HE), steps halved to stay >= 0."""
    tau2 = max(0.0, tau2_he(yi, vi, X))
    if _score_at_zero(yi, vi, X, reml) <= 0 and tau2 == 0.0:
        return 0.0  # the (restricted) likelihood decreases from tau2 = 0: the maximum is on the boundary
    for _ in range(maxiter):
        old = tau2
        w = 1.0 / (vi + tau2)
        _, tr_p, ypp, tr_pp = p_forms(yi, w, X)
        adj = (ypp - tr_p) / tr_pp if reml else (ypp - float(np.sum(w))) / float(np.sum(w**2))
        if not np.isfinite(adj):
            adj = 0.0
        while tau2 + adj < 0:
            adj /= 2
        tau2 = tau2 + adj
        if abs(old - tau2) <= threshold:
            break
    else:
        raise ArithmeticError(f"Fisher scoring for tau2 did not converge in {maxiter} iterations")
    # metafor's ll0check: a stuck local maximum below the likelihood at tau2 = 0; and a crawl
    # towards the boundary (score <= 0 at 0 and no better likelihood inside) ends at exactly 0
    ll0, ll = _loglik(0.0, yi, vi, X, reml), _loglik(tau2, yi, vi, X, reml)
    if ll0 - ll > 1e-10 or (_score_at_zero(yi, vi, X, reml) <= 0 and ll0 >= ll - 1e-12):
        tau2 = 0.0
    return tau2


def estimate_tau2(
    yi: object,
    vi: object,
    method: str = "REML",
    X: np.ndarray | None = None,
    *,
    threshold: float = 1e-10,
    maxiter: int = 1000,
) -> float:
    """Estimate tau^2 by *method* (DL, REML, PM, ML, SJ, HE), truncated at 0.

    ``threshold`` is the Fisher-scoring convergence criterion for ML/REML (metafor's default
    is 1e-5; Follicle iterates further, to 1e-10).
    """
    yi_ = np.asarray(yi, dtype=float)
    vi_ = np.asarray(vi, dtype=float)
    k = yi_.size
    X_ = _design(k, X)
    if k <= X_.shape[1]:
        return 0.0
    ymc = yi_ - yi_.mean()  # metafor estimates from centred yi (same result with an intercept)
    if method == "DL":
        t = tau2_dl(ymc, vi_, X_)
    elif method == "HE":
        t = tau2_he(ymc, vi_, X_)
    elif method == "SJ":
        t = tau2_sj(ymc, vi_, X_)
    elif method == "PM":
        t = tau2_pm(ymc, vi_, X_)
    elif method in ("REML", "ML"):
        t = _fisher_scoring(ymc, vi_, X_, method == "REML", threshold, maxiter)
    else:
        raise ValueError(f"The 'method' parameter must be one of {TAU2_METHODS}. Got {method!r} instead.")
    return max(0.0, float(t))
