"""Between-study variance (tau^2) estimators, as in metafor's ``rma.uni``; all truncated at 0.

Each estimator takes estimates ``yi``, sampling variances ``vi`` and a design matrix ``X``
(a column of ones for an intercept-only model) and returns tau^2 >= 0.

Iterative estimators never fail silently or stop a caller: ML and REML use metafor's Fisher
scoring and, when it does not converge (it oscillates when the observed information is more
than twice the expected one, e.g. in Egger's ``yi ~ sei`` regression on a few asymmetric
studies), fall back to a direct maximisation of the (restricted) likelihood by bracketed root
finding on its score (:func:`maximise_likelihood`); EB falls back to Brent's method on its
estimating equation. :func:`fit_tau2` says which algorithm produced the value. With k <= p
(e.g. k = 1) tau^2 is 0, as metafor sets it.

References
----------
DerSimonian R, Laird N. Meta-analysis in clinical trials. Control Clin Trials 1986;7:177-88 (DL).
Hedges LV, Olkin I. Statistical Methods for Meta-Analysis. Academic Press 1985 (HE).
Sidik K, Jonkman JN. Simple heterogeneity variance estimation for meta-analysis.
    J R Stat Soc C 2005;54:367-84 (SJ).
Paule RC, Mandel J. Consensus values and weighting factors. J Res Natl Bur Stand 1982;87:377-85 (PM).
Morris CN. Parametric empirical Bayes inference: theory and applications. JASA 1983;78:47-55 (EB).
Hunter JE, Schmidt FL. Methods of Meta-Analysis, 2nd ed. Sage 2004 (HS; HSk as metafor).
Viechtbauer W. Bias and efficiency of meta-analytic variance estimators in the random-effects
    model. J Educ Behav Stat 2005;30:261-93 (ML, REML by Fisher scoring).
Brent RP. Algorithms for Minimization without Derivatives. Prentice-Hall 1973, ch. 4 (root finding).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

TAU2_METHODS = ("DL", "REML", "PM", "ML", "SJ", "HE", "EB", "HS", "HSk")


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


def tau2_hs(yi: np.ndarray, vi: np.ndarray, X: np.ndarray, *, k_adjust: bool = False) -> float:
    """Hunter-Schmidt: (Q - k) / sum(w); with ``k_adjust`` (HSk) Q is scaled by k / (k - p)."""
    k, p = X.shape
    w = 1.0 / vi
    q = p_forms(yi, w, X)[0]
    return ((k / (k - p) if k_adjust else 1.0) * q - k) / float(np.sum(w))


def _score(tau2: float, yi: np.ndarray, vi: np.ndarray, X: np.ndarray, reml: bool) -> float:
    """Twice the derivative in tau^2 of the (restricted) log-likelihood: y'PPy - tr(P) (REML)
    or y'PPy - sum w (ML); the estimating equation of ML/REML is score = 0."""
    w = 1.0 / (vi + tau2)
    _, tr_p, ypp, _ = p_forms(yi, w, X)
    return ypp - (tr_p if reml else float(np.sum(w)))


def _score_at_zero(yi: np.ndarray, vi: np.ndarray, X: np.ndarray, reml: bool) -> float:
    """Derivative (times 2) of the (restricted) log-likelihood in tau^2 at tau^2 = 0."""
    return _score(0.0, yi, vi, X, reml)


@dataclass(frozen=True)
class Tau2Fit:
    """A tau^2 estimate with how it was obtained.

    ``algorithm`` is "closed form", "root finding", "Fisher scoring" or, when Fisher scoring
    did not converge, "bracketed maximisation (fallback)"; ``note`` then says why.
    """

    tau2: float
    method: str
    algorithm: str
    iterations: int = 0
    note: str = ""


def _fisher_scoring(
    yi: np.ndarray, vi: np.ndarray, X: np.ndarray, reml: bool, threshold: float, maxiter: int, stepadj: float = 1.0
) -> tuple[float, int, bool]:
    """metafor's Fisher scoring for (RE)ML, started at max(0, HE), steps halved to stay >= 0.

    Returns (tau2, iterations, converged); no exception when it does not converge.
    """
    tau2 = max(0.0, tau2_he(yi, vi, X))
    if _score_at_zero(yi, vi, X, reml) <= 0 and tau2 == 0.0:
        return 0.0, 0, True  # the (restricted) likelihood decreases from tau2 = 0: maximum on the boundary
    for it in range(1, maxiter + 1):
        old = tau2
        w = 1.0 / (vi + tau2)
        _, tr_p, ypp, tr_pp = p_forms(yi, w, X)
        adj = (ypp - tr_p) / tr_pp if reml else (ypp - float(np.sum(w))) / float(np.sum(w**2))
        adj *= stepadj
        if not np.isfinite(adj):
            adj = 0.0
        while tau2 + adj < 0:
            adj /= 2
        tau2 = tau2 + adj
        if not np.isfinite(tau2):
            return tau2, it, False
        if abs(old - tau2) <= threshold:
            break
    else:
        return tau2, maxiter, False
    # metafor's ll0check: a stuck local maximum below the likelihood at tau2 = 0; and a crawl
    # towards the boundary (score <= 0 at 0 and no better likelihood inside) ends at exactly 0
    ll0, ll = _loglik(0.0, yi, vi, X, reml), _loglik(tau2, yi, vi, X, reml)
    if ll0 - ll > 1e-10 or (_score_at_zero(yi, vi, X, reml) <= 0 and ll0 >= ll - 1e-12):
        return 0.0, it, True
    return _polish(tau2, lambda t: _score(t, yi, vi, X, reml)), it, True


def _polish(tau2: float, f: Callable[[float], float], rel: float = 1e-6) -> float:
    """Refine a converged iterate to the root of the decreasing estimating function *f* nearby.

    Fisher scoring stops when a step is below its threshold, which leaves an error of about
    threshold / (1 - rate) when it converges slowly; a bracket of +/- rel tau2 around the
    iterate, solved by Brent's method, removes it. Without a sign change the iterate is kept.
    """
    if tau2 <= 0:
        return tau2
    lo, hi = tau2 * (1 - rel), tau2 * (1 + rel)
    flo, fhi = f(lo), f(hi)
    if not (flo > 0 > fhi):
        return tau2
    return float(brentq(f, lo, hi, xtol=1e-17, rtol=4 * np.finfo(float).eps))


def _upper_bracket(f: Callable[[float], float], start: float) -> float:
    """A tau^2 above every root of the estimating function *f* (f < 0 there and beyond)."""
    hi = max(start, 1.0)
    while f(hi) >= 0:
        hi *= 10.0
        if hi > 1e12:
            raise ArithmeticError("no tau2 below 1e12 where the estimating equation changes sign")
    return hi


def maximise_likelihood(yi: np.ndarray, vi: np.ndarray, X: np.ndarray, reml: bool) -> tuple[float, int]:
    """The tau^2 in [0, inf) with the largest (restricted) likelihood, by bracketed root finding.

    The score y'PPy - tr(P) (REML; y'PPy - sum w for ML) is evaluated on a grid over [0, U],
    U beyond its last sign change (the score is negative for large tau^2); every + to -
    sign change brackets a local maximum, solved by Brent's method to machine precision;
    the boundary tau^2 = 0 is a candidate too. The candidate with the largest likelihood wins.
    Returns (tau2, evaluations of the score).
    """
    def f(t: float) -> float:
        return _score(t, yi, vi, X, reml)

    hi = _upper_bracket(f, 10.0 * float(np.var(yi)) + float(np.max(vi)))
    grid = np.unique(np.concatenate([np.linspace(0.0, hi, 101), np.geomspace(hi * 1e-12, hi, 241)]))
    vals = np.array([f(float(t)) for t in grid])
    candidates = [0.0]
    for a, b, fa, fb in zip(grid[:-1], grid[1:], vals[:-1], vals[1:]):
        if fa > 0 >= fb:
            candidates.append(float(b) if fb == 0 else float(brentq(f, a, b, xtol=1e-17, rtol=4 * np.finfo(float).eps)))
    best = max(candidates, key=lambda t: _loglik(t, yi, vi, X, reml))
    return best, grid.size


def _eb_iteration(yi: np.ndarray, vi: np.ndarray, X: np.ndarray, threshold: float, maxiter: int) -> tuple[float, int, bool]:
    """metafor's empirical Bayes (Morris 1983) iteration: tau2 += (Q k/(k-p) - k) / sum w."""
    k, p = X.shape
    tau2 = max(0.0, tau2_he(yi, vi, X))
    for it in range(1, maxiter + 1):
        old = tau2
        w = 1.0 / (vi + tau2)
        adj = (generalized_q(tau2, yi, vi, X) * k / (k - p) - k) / float(np.sum(w))
        if not np.isfinite(adj):
            adj = 0.0
        while tau2 + adj < 0 and adj != 0.0:
            adj /= 2
            if abs(adj) < 1e-300:
                adj = 0.0
        tau2 = tau2 + adj
        if abs(old - tau2) <= threshold:
            return tau2, it, True
    return tau2, maxiter, False


def fit_tau2(
    yi: object,
    vi: object,
    method: str = "REML",
    X: np.ndarray | None = None,
    *,
    threshold: float = 1e-10,
    maxiter: int = 1000,
) -> Tau2Fit:
    """Estimate tau^2 by *method*, truncated at 0, and say how (see :class:`Tau2Fit`).

    Methods: DL, HE, SJ, HS, HSk (closed form); PM (root of Q(tau2) = k - p by Brent's method);
    ML and REML (Fisher scoring as metafor, from max(0, HE); ``threshold`` is the convergence
    criterion, metafor's default 1e-5, Follicle's 1e-10); EB (metafor's empirical Bayes
    iteration, whose fixed point solves the PM equation).

    Guaranteed fallback: when an iteration does not converge in ``maxiter`` steps (it can
    oscillate when the observed information exceeds twice the expected one, as in small
    meta-regressions such as Egger's ``yi ~ sei``), ML/REML are maximised directly by
    :func:`maximise_likelihood` and EB solves its estimating equation by bracketed root
    finding; ``algorithm`` and ``note`` record it. A converged Fisher-scoring iterate is
    polished to the root of the score nearby.
    """
    yi_ = np.asarray(yi, dtype=float)
    vi_ = np.asarray(vi, dtype=float)
    k = yi_.size
    X_ = _design(k, X)
    if method not in TAU2_METHODS:
        raise ValueError(f"The 'method' parameter must be one of {TAU2_METHODS}. Got {method!r} instead.")
    if k <= X_.shape[1]:
        return Tau2Fit(0.0, method, "none", note=f"k = {k}: tau2 set to 0 (no residual degrees of freedom), as metafor")
    ymc = yi_ - yi_.mean()  # metafor estimates from centred yi (same result with an intercept)
    closed = {"DL": tau2_dl, "HE": tau2_he, "SJ": tau2_sj, "HS": tau2_hs}
    if method in closed:
        return Tau2Fit(max(0.0, float(closed[method](ymc, vi_, X_))), method, "closed form")
    if method == "HSk":
        return Tau2Fit(max(0.0, tau2_hs(ymc, vi_, X_, k_adjust=True)), method, "closed form")
    if method == "PM":
        return Tau2Fit(max(0.0, tau2_pm(ymc, vi_, X_)), method, "root finding")
    if method == "EB":
        t, it, ok = _eb_iteration(ymc, vi_, X_, threshold, maxiter)
        if ok:  # the fixed point solves Q(tau2) = k - p: at the boundary exactly 0, else polished to the root
            k_p = k - X_.shape[1]
            t = 0.0 if generalized_q(0.0, ymc, vi_, X_) <= k_p else _polish(
                t, lambda u: generalized_q(u, ymc, vi_, X_) - k_p)
            return Tau2Fit(max(0.0, t), method, "Fisher scoring", it)
        return Tau2Fit(max(0.0, tau2_pm(ymc, vi_, X_)), method, "bracketed root finding (fallback)", it,
                       note=f"EB iteration did not converge in {maxiter} iterations; its estimating equation "
                            "Q(tau2) = k - p was solved by Brent's method")
    reml = method == "REML"
    t, it, ok = _fisher_scoring(ymc, vi_, X_, reml, threshold, maxiter)
    if ok:
        return Tau2Fit(max(0.0, float(t)), method, "Fisher scoring", it)
    t, evals = maximise_likelihood(ymc, vi_, X_, reml)
    return Tau2Fit(max(0.0, float(t)), method, "bracketed maximisation (fallback)", it + evals,
                   note=f"Fisher scoring for tau2 did not converge in {maxiter} iterations (oscillating or slow); "
                        f"the {'restricted ' if reml else ''}likelihood was maximised by bracketed root finding "
                        "on its score")


def estimate_tau2(
    yi: object,
    vi: object,
    method: str = "REML",
    X: np.ndarray | None = None,
    *,
    threshold: float = 1e-10,
    maxiter: int = 1000,
) -> float:
    """Estimate tau^2 by *method* (see :func:`fit_tau2`), truncated at 0."""
    return fit_tau2(yi, vi, method, X, threshold=threshold, maxiter=maxiter).tau2
