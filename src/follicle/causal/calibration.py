"""Empirical calibration with negative (and positive) control outcomes.

Negative controls (true effect null) show a study's systematic error. Their log estimates are
modelled as N(mu, sigma^2 + se_i^2): a normal *empirical null* of systematic error, widened by each
control's own sampling error; (mu, sigma) are fitted by maximum likelihood. A new estimate is
compared with that null, not the theoretical N(0, se^2), for a calibrated p-value (Schuemie 2014).
With positive controls of known true log effects theta_i the systematic error may depend on theta:
mean a + b theta, SD c + d |theta| (Schuemie 2018); a calibrated CI is the set of theta for which
the observed estimate is not in the tails of that model. With negative controls only, b = 1, d = 0.

References
----------
Schuemie MJ et al. Interpreting observational studies: why empirical calibration is needed to
correct p-values. Stat Med 2014;33:209-218.
Schuemie MJ et al. Empirical confidence interval calibration for population-level effect
estimation studies in observational healthcare data. PNAS 2018;115:2571-2577.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from follicle.distributions import norm_cdf, norm_ppf, norm_sf

from follicle.errors import InputError


@dataclass(frozen=True)
class EmpiricalNull:
    """Normal distribution of systematic error fitted to negative controls (log scale)."""

    mean: float
    sd: float
    n_controls: int


@dataclass(frozen=True)
class SystematicErrorModel:
    """Systematic error as a function of the true log effect: mean a + b theta, SD c + d |theta|."""

    a: float
    b: float
    c: float
    d: float
    n_controls: int

    def mean(self, theta: float) -> float:
        return self.a + self.b * theta

    def sd(self, theta: float) -> float:
        return abs(self.c + self.d * abs(theta))


@dataclass(frozen=True)
class CalibratedEstimate:
    """A calibrated log effect estimate with its calibrated confidence interval (log scale)."""

    log_rr: float
    ci_low: float
    ci_high: float
    se: float


def _arrays(log_rr: Any, se_log_rr: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(log_rr, dtype=float).ravel()
    s = np.asarray(se_log_rr, dtype=float).ravel()
    if b.shape != s.shape:
        raise InputError(f"{what}: 'log_rr' and 'se_log_rr' must have the same length. Got {b.shape[0]} and {s.shape[0]}.")
    ok = np.isfinite(b) & np.isfinite(s) & (s > 0)
    return b[ok], s[ok]


def fit_null(log_rr: Any, se_log_rr: Any) -> EmpiricalNull:
    """Fit the empirical null N(mean, sd^2) to negative-control estimates by maximum likelihood.

    Controls with a missing estimate or non-positive SE are dropped (as EmpiricalCalibration does).
    """
    b, s = _arrays(log_rr, se_log_rr, "fit_null")
    if b.shape[0] < 2:
        raise InputError(f"fit_null needs at least 2 negative controls with an estimate and SE > 0. Got {b.shape[0]}.")

    def nll(par: np.ndarray) -> float:
        var = math.exp(2 * par[1]) + s * s
        return float(0.5 * np.sum(np.log(var) + (b - par[0]) ** 2 / var))

    starts = [np.array([np.mean(b), math.log(max(np.std(b), 1e-3))]), np.array([np.median(b), math.log(0.1)])]
    best = min((optimize.minimize(nll, x0, method="Nelder-Mead",
                                  options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 10000}) for x0 in starts),
               key=lambda r: r.fun)
    return EmpiricalNull(mean=float(best.x[0]), sd=float(math.exp(best.x[1])), n_controls=int(b.shape[0]))


def calibrate_p(null: EmpiricalNull, log_rr: Any, se_log_rr: Any) -> np.ndarray:
    """Two-sided calibrated p-values of estimates against the empirical null (Schuemie 2014)."""
    b = np.asarray(log_rr, dtype=float)
    s = np.asarray(se_log_rr, dtype=float)
    z = (b - null.mean) / np.sqrt(null.sd ** 2 + s * s)
    return 2 * np.minimum(norm_cdf(z), norm_sf(z))


def fit_systematic_error_model(log_rr: Any, se_log_rr: Any, true_log_rr: Any) -> SystematicErrorModel:
    """Fit mean a + b theta and SD c + d |theta| of systematic error to negative and positive controls.

    With negative controls only (all theta = 0) the slope terms are not identified: b = 1, d = 0.
    """
    b, s = _arrays(log_rr, se_log_rr, "fit_systematic_error_model")
    theta_all = np.asarray(true_log_rr, dtype=float).ravel()
    if theta_all.shape[0] != np.asarray(log_rr).ravel().shape[0]:
        raise InputError("fit_systematic_error_model: 'true_log_rr' must have one value per control.")
    ok = np.isfinite(np.asarray(log_rr, float).ravel()) & np.isfinite(np.asarray(se_log_rr, float).ravel()) \
        & (np.asarray(se_log_rr, float).ravel() > 0)
    theta = theta_all[ok]
    if np.all(theta == 0):
        null = fit_null(b, s)
        return SystematicErrorModel(a=null.mean, b=1.0, c=null.sd, d=0.0, n_controls=null.n_controls)
    if b.shape[0] < 4:
        raise InputError(f"fit_systematic_error_model needs at least 4 controls. Got {b.shape[0]}.")

    def nll(par: np.ndarray) -> float:
        sd = par[2] + par[3] * np.abs(theta)
        var = sd * sd + s * s
        return float(0.5 * np.sum(np.log(var) + (b - par[0] - par[1] * theta) ** 2 / var))

    x0 = np.array([0.0, 1.0, 0.1, 0.0])
    res = optimize.minimize(nll, x0, method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000})
    a, bb, c, d = (float(v) for v in res.x)
    return SystematicErrorModel(a=a, b=bb, c=abs(c), d=d if c >= 0 else -d, n_controls=int(b.shape[0]))


def calibrate_ci(model: SystematicErrorModel | EmpiricalNull, log_rr: float, se_log_rr: float,
                 alpha: float = 0.05) -> CalibratedEstimate:
    """Calibrated estimate and (1 - alpha) CI: the theta whose model puts the observed value at the
    median and at the alpha/2 tails (Schuemie 2018)."""
    if isinstance(model, EmpiricalNull):
        model = SystematicErrorModel(a=model.mean, b=1.0, c=model.sd, d=0.0, n_controls=model.n_controls)
    if not (math.isfinite(log_rr) and math.isfinite(se_log_rr) and se_log_rr > 0):
        raise InputError(f"calibrate_ci needs a finite log_rr and se_log_rr > 0. Got {log_rr!r}, {se_log_rr!r}.")
    if model.b <= 0:
        raise InputError(f"the systematic error model has a non-positive slope b={model.b:g}; it cannot calibrate")
    zq = norm_ppf(1 - alpha / 2)

    def zfun(theta: float, target: float) -> float:
        return (log_rr - model.mean(theta)) / math.sqrt(model.sd(theta) ** 2 + se_log_rr ** 2) - target

    centre = (log_rr - model.a) / model.b
    width = 10 * (abs(centre) + model.c + se_log_rr + 1)

    def root(target: float) -> float:
        return optimize.brentq(zfun, centre - width, centre + width, args=(target,), xtol=1e-12)

    lo, hi = root(zq), root(-zq)
    return CalibratedEstimate(log_rr=float(centre), ci_low=float(lo), ci_high=float(hi), se=float((hi - lo) / (2 * zq)))
