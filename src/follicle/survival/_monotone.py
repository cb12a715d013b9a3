"""Monotone partial likelihood in the Cox model: which coefficients are infinite, and what to report.

With no events in one group of a binary covariate (or, generally, when every event has the
largest value of some linear combination of covariates in its risk set) the partial likelihood
keeps rising as coefficients go to +/- infinity: the maximum-likelihood estimate is infinite.
R's ``coxph`` stops at a large finite number and warns "Loglik converged before variable j;
coefficient may be infinite". Follicle checks each coefficient's axis and the direction of the
last Newton step exactly (:func:`follicle.survival._cox_kernel.monotone_direction`), reports the
coefficients on a verified direction as +/- inf, names them, and gives likelihood-based
inference that stays valid: the likelihood-ratio test against the model without the covariate,
and the finite end of the profile-likelihood confidence interval (the other end is 0 or inf).

References
----------
Bryson MC, Johnson ME. The incidence of monotone likelihood in the Cox model. Technometrics
    1981;23:381-383.
Heinze G, Schemper M. A solution to the problem of monotone likelihood in Cox regression.
    Biometrics 2001;57:114-119.
Venzon DJ, Moolgavkar SH. A method for computing profile-likelihood-based confidence intervals.
    Appl Stat 1988;37:87-94.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from follicle.distributions import chi2_ppf
from follicle.profile_root import finite_profile_end
from follicle.survival import _cox_kernel as kernel


def _step(info: np.ndarray, grad: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(info, grad)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(info, grad, rcond=None)[0]


def find_infinite(data: kernel.CoxData, beta: np.ndarray, converged: bool) -> tuple[dict[int, int], np.ndarray]:
    """Coefficient index -> sign of its infinite estimate, and the direction (empty dict: finite maximum).

    Candidates: each coefficient's axis (+/-), which catches a covariate with no events in a
    group whatever the other covariates; and, when Newton-Raphson did not converge, the
    direction of its remaining step with negligible components (below 1e-3 of the largest) set
    to 0. A candidate counts only when verified exactly on the risk sets.
    """
    p = beta.size
    found: dict[int, int] = {}
    direction = np.zeros(p)
    for j in range(p):
        up, down = kernel.monotone_signs(data, data.x[:, j])
        if up or down:
            found[j] = 1 if up else -1
            direction[j] = found[j]
    if found or converged:  # a converged Newton-Raphson left no step above its tolerance (1e-10)
        return found, direction
    _, grad, info = kernel.loglik_derivs(data, beta)
    if not (np.all(np.isfinite(info)) and np.all(np.isfinite(grad))):
        return found, direction
    step = _step(info, grad)
    if np.all(np.isfinite(step)) and np.any(step):
        d = np.where(np.abs(step) >= 1e-3 * np.max(np.abs(step)), step / np.max(np.abs(step)), 0.0)
        if kernel.monotone_direction(data, d):
            return {int(j): int(np.sign(d[j])) for j in np.flatnonzero(d)}, d
    return found, direction


@dataclass
class SupFit:
    """The supremum of the partial likelihood: finite coefficients of the limit model, infinite signs.

    Along a verified monotone direction d the terms of subjects whose d'x is below the largest
    in the risk set vanish; the limit is the Cox model stratified by the level of d'x (within
    the original strata) on the remaining covariates, fitted as usual and checked again for
    further monotone directions. ``loglik`` is its maximum: the supremum of the original one.
    """

    infinite: dict[int, int]  # original column -> sign
    finite: np.ndarray  # original columns with finite estimates
    data: kernel.CoxData  # the limit model (finite columns; refined strata)
    beta: np.ndarray
    loglik: float
    loglik_null: float
    info: np.ndarray
    n_iter: int
    converged: bool


def _levels(values: np.ndarray) -> np.ndarray:
    scale = 1e-9 * (1.0 + float(np.max(np.abs(values))))
    return np.unique(np.round(values / scale), return_inverse=True)[1].ravel()


def fit_sup(
    time: np.ndarray, event: np.ndarray, x: np.ndarray, *, strata: np.ndarray | None, weights: np.ndarray | None,
    ties: str, tol: float, max_iter: int,
) -> SupFit:
    """Fit the Cox model; when its likelihood is monotone, find the infinite coefficients and the supremum."""
    data = kernel.prepare(time, event, x, strata=strata, weights=weights, ties=ties)
    beta, ll, ll_null, info, n_iter, converged = kernel.newton(data, tol=tol, max_iter=max_iter)
    cols = np.arange(x.shape[1])
    infinite: dict[int, int] = {}
    s = strata
    while cols.size:
        found, d = find_infinite(data, beta, converged)
        if not found:
            break
        infinite |= {int(cols[j]): sign for j, sign in found.items()}
        level = _levels(x[:, cols] @ d)
        s = level if s is None else np.unique(np.column_stack([s, level]), axis=0, return_inverse=True)[1].ravel()
        cols = np.array([c for c in cols if c not in infinite], dtype=int)
        if not cols.size:  # every coefficient infinite: the supremum is the stratified null model
            data = kernel.prepare(time, event, np.zeros((len(time), 1)), strata=s, weights=weights, ties=ties)
            ll = kernel.loglik_derivs(data, np.zeros(1))[0]
            beta, info, converged = np.zeros(0), np.zeros((0, 0)), True
            break
        data = kernel.prepare(time, event, x[:, cols], strata=s, weights=weights, ties=ties)
        beta, ll, _, info, it, converged = kernel.newton(data, tol=tol, max_iter=max_iter)
        n_iter += it
    return SupFit(infinite, cols, data, beta, ll, ll_null, info, n_iter, converged)


def describe(name: str, sign: int, column: np.ndarray, event: np.ndarray, others: list[str]) -> str:
    """The message naming the covariate and why its estimate is infinite."""
    limit = "+inf (hazard ratio inf)" if sign > 0 else "-inf (hazard ratio 0)"
    values = np.unique(column)
    if values.size == 2:
        lo, hi = values
        empty = hi if sign < 0 else lo  # the level with no events that drives the estimate
        n_level = int(np.sum(column == empty))
        ev_level = int(np.sum(event[column == empty]))
        why = (f"{ev_level} of {int(event.sum())} events among the {n_level} subjects with {name} = {empty:g}"
               if ev_level == 0 else f"no events at {name} = {empty:g} within the risk sets")
    else:
        why = f"every event has the {'largest' if sign > 0 else 'smallest'} {name} in its risk set"
    joint = f" (jointly with {', '.join(others)})" if others else ""
    return (f"covariate '{name}': monotone likelihood{joint}: {why}; the partial likelihood rises without bound "
            f"as its coefficient -> {limit}, so the estimate is infinite, not the large finite number an "
            "iteration stops at")


def profile_limit(
    data: kernel.CoxData, start: np.ndarray, j: int, sign: int, ll_sup: float, conf_level: float,
) -> float:
    """The finite end of the profile-likelihood CI of the infinite coefficient *j* (log scale).

    Solves 2 (ll_sup - max_{others} ll(b_j = b)) = chi2_1(conf_level) on the original model,
    moving from the far side towards the infinite end; the other coefficients (finite, started
    at *start*) are refitted at each b.
    """
    crit = float(chi2_ppf(conf_level, 1))
    free = np.ones(start.size, dtype=bool)
    free[j] = False

    def dev(b: float) -> float:
        b0 = start.copy()
        b0[j] = b
        ll = kernel.newton(data, b0, free=free)[1] if free.any() else kernel.loglik_derivs(data, b0)[0]
        return 2 * (ll_sup - ll) - crit

    return finite_profile_end(dev, sign)
