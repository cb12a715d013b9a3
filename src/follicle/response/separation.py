"""Separation in logistic regression: found exactly by linear programming, infinite estimates named.

Under complete or quasi-complete separation some maximum-likelihood estimates are infinite
(Albert & Anderson 1984): a direction d exists along which every observation's contribution
to the likelihood is non-decreasing, ``(2y-1) x'd >= 0``, strictly for the separated ones,
whose fitted probabilities tend to 0 or 1. R's ``glm`` then stops at large finite numbers.

:func:`detect_separation` solves two linear programs (after Konis 2007, ch. 4): the first
finds the largest set of separated observations (maximise the number of strict margins, capped
at 1, over directions d); the second finds the sparsest direction that separates them
(minimum L1 norm), whose non-zero coefficients are the infinite estimates. :func:`fit_sup`
then fits the limit of the likelihood: separated observations contribute 0, the others a
logistic model in the remaining coefficients (plus, when several coefficients are infinite,
their combinations orthogonal to d). Its log-likelihood is the supremum, which gives a
likelihood-ratio test and the finite end of the profile-likelihood interval of an infinite
coefficient (Venzon & Moolgavkar 1988).

References
----------
Albert A, Anderson JA. On the existence of maximum likelihood estimates in logistic regression
    models. Biometrika 1984;71:1-10.
Konis K. Linear programming algorithms for detecting separated data in binary logistic
    regression models. DPhil thesis, University of Oxford 2007.
Kosmidis I, Schumacher D. detectseparation: detect and check for separation and infinite
    maximum likelihood estimates (R package), method ``detect_separation``.
Venzon DJ, Moolgavkar SH. A method for computing profile-likelihood-based confidence intervals.
    Appl Stat 1988;37:87-94.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm
from scipy import optimize, stats

from follicle.profile_root import finite_profile_end


@dataclass(frozen=True)
class Separation:
    """Which observations are separated, and which coefficients are infinite (column -> sign)."""

    separated: np.ndarray  # bool per observation
    direction: np.ndarray  # the sparsest separating direction (max |d_j| = 1), original scale
    infinite: dict[int, int]

    @property
    def found(self) -> bool:
        return bool(self.separated.any())


def detect_separation(X: np.ndarray, y: np.ndarray) -> Separation:
    """Linear-programming check for separation in the logistic regression of *y* (0/1) on *X*."""
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    n, p = X.shape
    scale = np.max(np.abs(X), axis=0)
    scale[scale == 0] = 1.0
    A = (2 * y - 1)[:, None] * (X / scale)
    # LP 1: max sum s, A d >= s, 0 <= s <= 1, d free  (the optimum separates every separable observation)
    c = np.r_[np.zeros(p), -np.ones(n)]
    res = optimize.linprog(c, A_ub=np.hstack([-A, np.eye(n)]), b_ub=np.zeros(n),
                           bounds=[(None, None)] * p + [(0.0, 1.0)] * n, method="highs")
    none = Separation(np.zeros(n, bool), np.zeros(p), {})
    if res.status != 0 or -res.fun < 0.5:
        return none
    sep = res.x[p:] > 0.5
    # LP 2: the sparsest direction: min |d|_1 with A_S d >= 1, A_rest d >= 0 (d = u - v, u, v >= 0)
    rows = np.where(sep, 1.0, 0.0)
    res2 = optimize.linprog(np.ones(2 * p), A_ub=np.hstack([-A, A]), b_ub=-rows,
                            bounds=[(0.0, None)] * (2 * p), method="highs")
    if res2.status != 0:
        return none
    d = (res2.x[:p] - res2.x[p:]) / scale
    d = d / np.max(np.abs(d))
    d[np.abs(d) < 1e-9] = 0.0
    return Separation(sep, d, {int(j): int(np.sign(d[j])) for j in np.flatnonzero(d)})


def _loglik(X: np.ndarray, y: np.ndarray, beta: np.ndarray, offset: np.ndarray | None = None) -> float:
    eta = X @ beta + (0.0 if offset is None else offset)
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)))


def _glm(X: np.ndarray, y: np.ndarray, offset: np.ndarray | None = None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sm.GLM(y, X, family=sm.families.Binomial(), offset=offset).fit(tol=1e-12, maxiter=200)


def _independent(M: np.ndarray, tol: float = 1e-10) -> list[int]:
    """Columns of *M* (in order) that add rank to the ones kept before them."""
    keep: list[int] = []
    for j in range(M.shape[1]):
        trial = M[:, keep + [j]]
        if trial.size and np.linalg.matrix_rank(trial, tol=tol * max(1.0, np.abs(trial).max())) == len(keep) + 1:
            keep.append(j)
    return keep


@dataclass(frozen=True)
class SupFit:
    """The limit of the likelihood under separation (or the ordinary fit without it)."""

    separation: Separation
    coef: np.ndarray  # NaN for infinite and for not estimable coefficients
    se: np.ndarray
    pval: np.ndarray  # Wald, finite coefficients
    loglik: float
    not_estimable: list[int]  # finite in principle, but no information left in the limit model
    converged: bool


def fit_sup(X: np.ndarray, y: np.ndarray, sep: Separation | None = None) -> SupFit:
    """Maximum likelihood, or its supremum under separation (see the module docstring)."""
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    n, p = X.shape
    sep = detect_separation(X, y) if sep is None else sep
    coef = np.full(p, np.nan)
    se = np.full(p, np.nan)
    pval = np.full(p, np.nan)
    if not sep.found:
        r = _glm(X, y)
        return SupFit(sep, np.asarray(r.params), np.asarray(r.bse), np.asarray(r.pvalues),
                      _loglik(X, y, np.asarray(r.params)), [], bool(r.converged))
    J = sorted(sep.infinite)
    F = [j for j in range(p) if j not in sep.infinite]
    rest = ~sep.separated
    cols = X[rest][:, F]
    if len(J) > 1:  # combinations of the infinite coefficients orthogonal to d stay finite
        dJ = sep.direction[J]
        basis = np.linalg.svd(dJ[None, :])[2][1:].T  # orthonormal complement of d_J
        cols = np.hstack([cols, X[rest][:, J] @ basis])
    keep = _independent(cols) if rest.any() else []
    lost = [F[k] for k in range(len(F)) if k not in keep]
    ll, converged = 0.0, True
    if keep:
        yr = y[rest]
        r = _glm(cols[:, keep], yr)
        ll, converged = _loglik(cols[:, keep], yr, np.asarray(r.params)), bool(r.converged)
        for pos, k in enumerate(keep):
            if k < len(F):
                coef[F[k]], se[F[k]], pval[F[k]] = r.params[pos], r.bse[pos], r.pvalues[pos]
    return SupFit(sep, coef, se, pval, ll, lost, converged)


def lr_pvalue(X: np.ndarray, y: np.ndarray, j: int, ll_sup: float) -> float:
    """Likelihood-ratio test of dropping column *j* (supremum against supremum), df 1."""
    keep = [i for i in range(X.shape[1]) if i != j]
    ll0 = fit_sup(X[:, keep], y).loglik if keep else float(np.sum(y * 0.0 - np.log(2.0)))
    return float(stats.chi2.sf(max(2 * (ll_sup - ll0), 0.0), 1))


def profile_limit(X: np.ndarray, y: np.ndarray, j: int, sign: int, ll_sup: float, conf_level: float) -> float:
    """Finite end (log OR scale) of the profile-likelihood CI of the one infinite coefficient *j*.

    Solves 2 (ll_sup - max_{others} ll(beta_j = b)) = chi2_1(conf_level), the others refitted
    with ``b x_j`` as an offset; NaN when no bracket is found.
    """
    crit = float(stats.chi2.ppf(conf_level, 1))
    others = [i for i in range(X.shape[1]) if i != j]

    def dev(b: float) -> float:
        off = b * X[:, j]
        if not others:
            return 2 * (ll_sup - float(np.sum(y * off - np.logaddexp(0.0, off)))) - crit
        r = _glm(X[:, others], y, offset=off)
        return 2 * (ll_sup - _loglik(X[:, others], y, np.asarray(r.params), off)) - crit

    return finite_profile_end(dev, sign)
