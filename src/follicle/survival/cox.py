"""Cox proportional hazards regression: Efron or Breslow ties, strata, case weights, robust SEs.

:class:`CoxPH` follows the scikit-learn fitted-object contract; :func:`fit_outcome_model` is the
outcome-model step of a comparative-effectiveness study (treatment as the only covariate, robust
standard errors clustered on the matched pair, optionally stratified by pair), matching R's
``coxph(Surv(time, event) ~ treatment, ties = ..., cluster = pair)`` or ``... + strata(pair)``.

References
----------
Cox DR. Regression models and life-tables. JRSS B 1972;34:187-220.
Efron B. The efficiency of Cox's likelihood function for censored data. JASA 1977;72:557-565.
Lin DY, Wei LJ. The robust inference for the Cox proportional hazards model. JASA 1989;84:1074-1078.
Austin PC. The use of propensity score methods with survival or time-to-event outcomes: reporting
measures of effect similar to those used in randomized experiments. Stat Med 2014;33:1242-1258
(robust or pair-stratified variance after matching).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from follicle.distributions import chi2_sf, norm_ppf, norm_sf
from follicle.errors import InputError
from follicle.survival import _cox_kernel as kernel
from follicle.survival import _monotone
from follicle.survival._inputs import (
    as_groups,
    as_time_event,
    check_choice,
    check_conf_level,
    column_name,
    require_events,
)

TIES = ("efron", "breslow")
SUMMARY_COLUMNS = ["coef", "se", "hr", "ci_low", "ci_high", "z", "p"]


@dataclass(frozen=True)
class CoxResult:
    """A fitted Cox model as plain data: ``summary`` has columns coef, se, hr, ci_low, ci_high, z, p."""

    summary: pd.DataFrame
    var: np.ndarray
    naive_var: np.ndarray
    loglik: float
    loglik_null: float
    n: int
    events: int
    ties: str
    robust: bool
    stratified: bool
    converged: bool
    n_iter: int
    conf_level: float
    warnings: tuple[str, ...] = field(default=())
    infinite: dict[str, str] = field(default_factory=dict)  # term -> why its estimate is +/- inf

    @property
    def coef(self) -> np.ndarray:
        return self.summary["coef"].to_numpy()

    @property
    def se(self) -> np.ndarray:
        return self.summary["se"].to_numpy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: per-term coef, se, hr, ci_low, ci_high, z, p plus fit details."""
        return {
            "terms": self.summary.reset_index().to_dict(orient="records"), "loglik": self.loglik,
            "loglik_null": self.loglik_null, "n": self.n, "events": self.events, "ties": self.ties,
            "robust": self.robust, "stratified": self.stratified, "converged": self.converged,
            "n_iter": self.n_iter, "conf_level": self.conf_level, "warnings": list(self.warnings),
            "infinite": {t: ("+inf: " if self.summary.loc[t, "coef"] > 0 else "-inf: " if self.summary.loc[t, "coef"] < 0
                             else "not estimable: ") + why for t, why in self.infinite.items()},
        }

    def row(self, term: str | None = None) -> dict[str, float]:
        """One term's numbers as a dict (the only term if *term* is None)."""
        rec = self.summary.iloc[0] if term is None else self.summary.loc[term]
        return {k: float(v) for k, v in rec.items()}


def _as_matrix(X: Any) -> tuple[np.ndarray, list[str]]:
    if isinstance(X, pd.Series):
        X = X.to_frame()
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        bad = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])]
        if bad:
            raise InputError(f"covariate column '{bad[0]}' must be numeric (encode categories as 0/1 columns)")
        arr = X.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        arr = np.asarray(X, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[:, None]
        names = [f"x{j}" for j in range(arr.shape[1])]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise InputError("X must have at least one covariate column")
    missing = ~np.isfinite(arr)
    if missing.any():
        rows, cols = np.nonzero(missing)
        raise InputError(f"covariate column '{names[cols[0]]}' has missing or infinite values (row {rows[0]}, counting from 0)")
    return arr, names


def _first_collinear(xm: np.ndarray, names: list[str], tol: float = 1e-10) -> str | None:
    """Name of the first column that adds no rank to the ones before it (R would report NA for it)."""
    if xm.shape[1] < 2:
        return None
    z = xm - xm.mean(axis=0)
    z = z / np.sqrt((z**2).mean(axis=0))
    corr = z.T @ z / len(z)
    for j in range(1, xm.shape[1]):
        if np.linalg.eigvalsh(corr[: j + 1, : j + 1])[0] < tol:
            return names[j]
    return None


class CoxPH:
    """Cox proportional hazards model (scikit-learn contract: parameters stored, validated in fit).

    Parameters
    ----------
    ties : {"efron", "breslow"}
        Handling of tied event times (R ``coxph`` default is Efron).
    robust : bool
        Report the Lin-Wei sandwich variance (R ``robust = TRUE``); implied when ``cluster`` is given.
    conf_level : float
        Confidence level of the hazard-ratio intervals.
    tol : float
        Convergence tolerance on the Newton step, relative to the coefficients.
    max_iter : int
        Maximum Newton-Raphson iterations.

    Attributes
    ----------
    coef_, se_ : ndarray
        Log hazard ratios and their standard errors (robust when requested).
    var_, naive_var_ : ndarray
        Variance matrix reported, and the model-based inverse information.
    loglik_, loglik_null_ : float
        Log partial likelihood at the estimate and at zero.
    summary_ : DataFrame
        One row per covariate: coef, se, hr, ci_low, ci_high, z, p.
    """

    def __init__(
        self, *, ties: str = "efron", robust: bool = False, conf_level: float = 0.95, tol: float = 1e-10,
        max_iter: int = 50,
    ) -> None:
        self.ties = ties
        self.robust = robust
        self.conf_level = conf_level
        self.tol = tol
        self.max_iter = max_iter

    def fit(
        self, X: Any, time: Any, event: Any, *, strata: Any = None, cluster: Any = None, weights: Any = None
    ) -> "CoxPH":
        """Fit the model to covariates *X* and the outcome (*time*, *event*); returns self.

        *strata* gives each stratum its own baseline hazard (R ``strata()``); *cluster* groups
        correlated subjects (e.g. matched pairs) for the robust variance (R ``cluster()``);
        *weights* are case weights (e.g. inverse-probability weights; use ``robust=True`` with them).
        """
        check_choice("ties", self.ties, TIES)
        check_conf_level(self.conf_level)
        if not isinstance(self.robust, (bool, np.bool_)):
            raise ValueError(f"The 'robust' parameter must be a bool. Got {self.robust!r} instead.")
        t, e = as_time_event(time, event)
        xm, names = _as_matrix(X)
        if len(xm) != len(t):
            raise InputError(f"X has {len(xm)} rows; expected {len(t)} (one per time)")
        require_events(e, column_name(event, "event"), "a Cox model")
        constant = [nm for j, nm in enumerate(names) if np.ptp(xm[:, j]) == 0]
        if constant:
            raise InputError(f"covariate column '{constant[0]}' has a single value (a single group): nothing to compare")
        aliased = _first_collinear(xm, names)
        if aliased is not None:
            raise InputError(
                f"covariate column '{aliased}' is a linear combination of the columns before it (collinear); drop it"
            )
        s = None if strata is None else as_groups(strata, len(t), column_name(strata, "strata"), min_groups=1)[0]
        c = None if cluster is None else as_groups(cluster, len(t), column_name(cluster, "cluster"), min_groups=1)[0]
        w = None
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != t.shape or not np.all(np.isfinite(w)) or np.any(w <= 0):
                raise InputError(f"column '{column_name(weights, 'weights')}' must hold one finite weight > 0 per row")
        kw = {"strata": s, "weights": w, "ties": self.ties, "tol": self.tol, "max_iter": self.max_iter}
        sup = _monotone.fit_sup(t, e, xm, **kw)
        p = len(names)
        infinite, fin = sup.infinite, sup.finite
        ll, ll0, n_iter, converged = sup.loglik, sup.loglik_null, sup.n_iter, sup.converged
        naive = np.full((p, p), np.nan)
        var = naive
        robust = bool(self.robust) or c is not None
        if fin.size:
            try:
                nv = np.linalg.inv(sup.info)
            except np.linalg.LinAlgError:
                nv = np.linalg.pinv(sup.info)
            naive[np.ix_(fin, fin)] = nv
            var = naive.copy()
            if robust:
                var[np.ix_(fin, fin)] = kernel.robust_variance(sup.data, sup.beta, nv, c)
        warnings: list[str] = []
        messages: dict[str, str] = {}
        for j, sign in infinite.items():
            others = [names[i] for i in infinite if i != j]
            messages[names[j]] = _monotone.describe(names[j], sign, xm[:, j], e.astype(bool), others)
            warnings.append(messages[names[j]])
        if not converged:
            warnings.append(
                f"Newton-Raphson did not converge in {n_iter} iterations; a coefficient may be infinite "
                "(e.g. no events in one group)"
            )
        report = np.zeros(p)
        report[fin] = sup.beta
        if infinite and fin.size:  # a finite coefficient may have no information left in the limit model
            info0 = np.diag(kernel.loglik_derivs(kernel.prepare(t, e, xm, strata=s, weights=w, ties=self.ties),
                                                 np.zeros(p))[2])
            for k, j in enumerate(fin):
                if sup.info[k, k] <= 1e-10 * info0[j]:
                    report[j] = np.nan
                    var[j, :] = var[:, j] = np.nan
                    messages[names[j]] = (f"covariate '{names[j]}': not estimable: with "
                                          f"{', '.join(repr(names[i]) for i in infinite)} infinite, no risk set "
                                          "left compares subjects on it")
                    warnings.append(messages[names[j]])
        lr_p: dict[int, float] = {}
        limits: dict[int, float] = {}
        for j, sign in infinite.items():
            report[j] = sign * np.inf
            keep = np.array([i for i in range(p) if i != j], dtype=int)
            ll_without = ll0 if not keep.size else _monotone.fit_sup(t, e, xm[:, keep], **kw).loglik
            lr_p[j] = float(chi2_sf(max(2 * (ll - ll_without), 0.0), 1))
            limits[j] = float("nan")
            if len(infinite) == 1:  # profile over the finite others, from their limit values
                full = kernel.prepare(t, e, xm, strata=s, weights=w, ties=self.ties)
                start = np.where(np.isfinite(report), report, 0.0)
                limits[j] = _monotone.profile_limit(full, start, j, sign, ll, self.conf_level)
        self.coef_ = report
        self.var_ = var
        self.naive_var_ = naive
        self.se_ = np.sqrt(np.diag(var))
        self.loglik_ = ll
        self.loglik_null_ = ll0
        self.n_iter_ = n_iter
        self.converged_ = converged
        self.feature_names_in_ = np.array(names, dtype=object)
        self.n_ = len(t)
        self.events_ = int(e.sum())
        self.stratified_ = s is not None
        self.robust_ = robust
        self.warnings_ = tuple(warnings)
        self.summary_ = _summary(report, self.se_, names, self.conf_level)
        for j, sign in infinite.items():  # likelihood-based inference for the infinite ones
            lim = float(np.exp(limits[j]))
            self.summary_.iloc[j, self.summary_.columns.get_loc("p")] = lr_p[j]
            self.summary_.iloc[j, self.summary_.columns.get_loc("ci_low")] = 0.0 if sign < 0 else lim
            self.summary_.iloc[j, self.summary_.columns.get_loc("ci_high")] = lim if sign < 0 else np.inf
        self.infinite_ = messages
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise AttributeError("This CoxPH instance is not fitted yet; call fit first.")

    def result(self) -> CoxResult:
        """The fit as a :class:`CoxResult` (plain data, safe to serialise)."""
        self._check_fitted()
        return CoxResult(
            self.summary_, self.var_, self.naive_var_, self.loglik_, self.loglik_null_, self.n_, self.events_,
            self.ties, self.robust_, self.stratified_, self.converged_, self.n_iter_, self.conf_level,
            self.warnings_, dict(self.infinite_),
        )

    def predict_log_hazard_ratio(self, X: Any) -> np.ndarray:
        """Linear predictor X @ coef_ (log relative hazard, uncentred; +/- inf with an infinite coefficient)."""
        self._check_fitted()
        xm, _ = _as_matrix(X)
        with np.errstate(invalid="ignore"):
            return np.where(xm == 0, 0.0, xm * self.coef_).sum(axis=1)  # 0 * inf counts as 0

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("ties", "robust", "conf_level", "tol", "max_iter")}

    def set_params(self, **params: Any) -> "CoxPH":
        for k, v in params.items():
            if k not in self.get_params():
                raise ValueError(f"Invalid parameter {k!r} for CoxPH.")
            setattr(self, k, v)
        return self


def _summary(beta: np.ndarray, se: np.ndarray, names: list[str], conf_level: float) -> pd.DataFrame:
    zq = norm_ppf(1 - (1 - conf_level) / 2)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z = beta / se
        return pd.DataFrame(
            {"coef": beta, "se": se, "hr": np.exp(beta), "ci_low": np.exp(beta - zq * se),
             "ci_high": np.exp(beta + zq * se), "z": z, "p": 2 * norm_sf(np.abs(z))},
            index=pd.Index(names, name="term"),
        )[SUMMARY_COLUMNS]


def fit_outcome_model(
    time: Any,
    event: Any,
    treatment: Any,
    *,
    ties: str = "efron",
    robust_se: bool = True,
    stratify_by_pair: bool = False,
    pair_id: Any = None,
    weights: Any = None,
    conf_level: float = 0.95,
) -> CoxResult:
    """Hazard ratio of treatment (1) versus comparator (0) in a matched or weighted cohort.

    Parameters
    ----------
    time, event : array-like
        Time to outcome or censoring and the outcome indicator.
    treatment : array-like
        1 for the target arm, 0 for the comparator.
    ties : {"efron", "breslow"}
    robust_se : bool
        Sandwich SEs clustered on ``pair_id`` when given (else per subject), as R
        ``coxph(..., cluster = pair)``; the model-based SE otherwise.
    stratify_by_pair : bool
        Give each matched set its own baseline hazard (R ``+ strata(pair)``); needs ``pair_id``.
    pair_id : array-like, optional
        Matched-set identifier of each subject.
    weights : array-like, optional
        Case weights (IPW); pair with ``robust_se=True``.
    """
    name = column_name(treatment, "treatment")
    tr = pd.to_numeric(pd.Series(np.asarray(treatment)), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isin(tr, (0.0, 1.0))
    if bad.any():
        raise InputError(f"column '{name}' must hold 1 (treated) or 0 (comparator); got {np.asarray(treatment)[bad][0]!r}")
    if stratify_by_pair and pair_id is None:
        raise ValueError("The 'stratify_by_pair' parameter needs 'pair_id'. Got pair_id=None instead.")
    model = CoxPH(ties=ties, robust=bool(robust_se), conf_level=conf_level)
    model.fit(
        pd.DataFrame({name: tr}), time, event,
        strata=pair_id if stratify_by_pair else None,
        cluster=pair_id if robust_se and pair_id is not None else None,
        weights=weights,
    )
    return model.result()
