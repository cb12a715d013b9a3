"""Propensity scores: logistic regression, optionally regularised with cross-validation.

``penalty="none"`` fits the maximum-likelihood logistic model by Newton-Raphson (the same
estimates as R's ``glm(family = binomial)``), with standard errors. ``"l1"``/``"l2"`` fit a
regularised model for large, sparse covariate sets (OHDSI large-scale propensity scores), the
penalty chosen by stratified k-fold cross-validation on the log-likelihood (for ``"l1"`` along the
regularisation path from the strongest useful penalty, stopping when the loss stops improving,
as glmnet and Cyclops search it); covariates are scaled
by their maximum absolute value first (as OHDSI FeatureExtraction normalises), which keeps sparse
input sparse. Perfect or quasi-complete separation by a single covariate is detected before fitting
and reported with the covariate's name; separation by a combination is reported when the fit
diverges.

References
----------
Rosenbaum PR, Rubin DB. The central role of the propensity score in observational studies for
causal effects. Biometrika 1983;70:41-55.
Tian Y, Schuemie MJ, Suchard MA. Evaluating large-scale propensity score performance through
real-world and synthetic data experiments. Int J Epidemiol 2018;47:2005-2014.
Walker AM et al. A tool for assessing the feasibility of comparative effectiveness research.
Comp Eff Res 2013;3:11-20 (preference score, equipoise).
Albert A, Anderson JA. On the existence of maximum likelihood estimates in logistic regression
models. Biometrika 1984;71:1-10 (separation).
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp
from scipy.special import expit

from follicle.causal._validate import as_treatment
from follicle.distributions import norm_sf, rank_average
from follicle.errors import InputError

Penalty = Literal["none", "l1", "l2"]


def _design(X: Any, feature_names: list[str] | None = None) -> tuple[Any, list[str]]:
    """Numeric float64 design (dense ndarray or CSC sparse) and its column names; names bad columns."""
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        problems = []
        for c in X.columns:
            col = X[c]
            if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
                problems.append(f"covariate '{c}' is not numeric (dtype {col.dtype}); encode it as 0/1 columns")
            elif col.isna().any():
                problems.append(f"covariate '{c}' has missing values (first at row {int(np.flatnonzero(col.isna())[0])})")
        if problems:
            raise InputError("covariates cannot be used as given", problems=problems)
        arr = X.to_numpy(dtype=float)
    elif sp.issparse(X):
        arr = sp.csc_matrix(X, dtype=float)
        names = feature_names or [f"x{j}" for j in range(arr.shape[1])]
        if not np.isfinite(arr.data).all():
            raise InputError("the sparse covariate matrix holds NaN or infinite values")
    else:
        arr = np.asarray(X, dtype=float)
        if arr.ndim == 1:
            arr = arr[:, None]
        names = feature_names or [f"x{j}" for j in range(arr.shape[1])]
        if not np.isfinite(arr).all():
            r, c = np.argwhere(~np.isfinite(arr))[0]
            raise InputError(f"covariate '{names[c]}' has a missing or infinite value at row {r}")
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise InputError(f"covariates must be a 2-D table with at least one column. Got shape {arr.shape}.")
    if len(names) != arr.shape[1]:
        raise InputError(f"{len(names)} feature names for {arr.shape[1]} covariate columns")
    return arr, names


def _group_range(X: Any, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sub = X[mask]
    if sp.issparse(sub):
        return sub.min(axis=0).toarray().ravel(), sub.max(axis=0).toarray().ravel()
    return sub.min(axis=0), sub.max(axis=0)


def separation_problems(X: Any, t: np.ndarray, names: list[str], *, quasi: bool) -> list[str]:
    """Covariates that alone separate treated from untreated (completely, or quasi-completely).

    A column separates completely when every treated value lies strictly above (or below) every
    untreated value; quasi-completely when the ranges touch at one value (e.g. a binary covariate
    present only in the treated). Either makes the maximum-likelihood coefficient infinite.
    """
    tmin, tmax = _group_range(X, t)
    cmin, cmax = _group_range(X, ~t)
    out = []
    for j, name in enumerate(names):
        if tmin[j] == tmax[j] == cmin[j] == cmax[j]:
            continue  # constant: reported elsewhere
        if cmax[j] < tmin[j] or tmax[j] < cmin[j]:
            side = "above" if cmax[j] < tmin[j] else "below"
            out.append(f"covariate '{name}' separates the groups perfectly: every treated value is {side} "
                       f"every untreated value (treated {tmin[j]:g}..{tmax[j]:g}, untreated {cmin[j]:g}..{cmax[j]:g})")
        elif quasi and (cmax[j] <= tmin[j] or tmax[j] <= cmin[j]):
            out.append(f"covariate '{name}' separates the groups quasi-completely (treated {tmin[j]:g}..{tmax[j]:g}, "
                       f"untreated {cmin[j]:g}..{cmax[j]:g}); its coefficient would be infinite. Remove it "
                       "or use penalty='l2'")
    return out


def _check_rank(gram: np.ndarray, n: int, names: list[str]) -> None:
    """Raise naming constant or linearly dependent covariates (from X'X with intercept first).

    The rank is judged on the correlation matrix, so covariates on very different scales (days,
    0/1 flags) are not mistaken for collinear ones.
    """
    mean = gram[0, 1:] / n
    cov = gram[1:, 1:] / n - np.outer(mean, mean)
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    const = sd <= 1e-12 * np.maximum(1.0, np.abs(mean))
    if const.any():
        raise InputError("covariates with a single value cannot be in the propensity model (they are "
                         "collinear with the intercept); drop: " + ", ".join(f"'{names[j]}'" for j in np.flatnonzero(const)))
    corr = cov / np.outer(sd, sd)
    _, r, piv = scipy.linalg.qr(corr, pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int((diag > diag[0] * 1e-9).sum())
    if rank < corr.shape[0]:
        raise InputError("covariates are collinear (one is a linear combination of others); drop: "
                         + ", ".join(f"'{names[k]}'" for k in piv[rank:]))


def _irls(X: Any, t: np.ndarray, max_iter: int, tol: float, names: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """Newton-Raphson (with step-halving) for logistic regression with intercept.

    Returns beta, its covariance (inverse information) and the number of iterations.
    """
    n = X.shape[0]
    Xa = sp.hstack([sp.csc_matrix(np.ones((n, 1))), X], format="csc") if sp.issparse(X) else np.column_stack([np.ones(n), X])
    y = t.astype(float)

    def hessian(w: np.ndarray) -> np.ndarray:
        if sp.issparse(Xa):
            return np.asarray((Xa.T @ Xa.multiply(w[:, None])).todense())
        return (Xa * w[:, None]).T @ Xa

    _check_rank(np.asarray((Xa.T @ Xa).todense()) if sp.issparse(Xa) else Xa.T @ Xa, n, names)

    def deviance(eta: np.ndarray) -> float:
        return float(2.0 * np.sum(np.logaddexp(0.0, eta) - y * eta))

    beta = np.zeros(Xa.shape[1])
    beta[0] = np.log(y.mean() / (1 - y.mean()))
    eta = Xa @ beta
    dev = deviance(eta)
    for it in range(1, max_iter + 1):
        mu = expit(eta)
        w = mu * (1 - mu)
        grad = Xa.T @ (y - mu)
        info = hessian(w)
        try:
            with warnings.catch_warnings():
                # an ill-conditioned information matrix comes with separation, which the divergence
                # check below reports as one clear error; scipy's warning would only add noise
                warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
                step = scipy.linalg.solve(info, grad, assume_a="pos")
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
            step = np.full_like(beta, np.inf)
        if not np.all(np.isfinite(step)) or (it > 25 and np.max(np.abs(eta)) > 30):
            raise InputError(_divergence_message(beta, names))
        new_eta = Xa @ (beta + step)
        new_dev = deviance(new_eta)
        halvings = 0
        while new_dev > dev * (1 + 1e-12) and halvings < 30:  # step-halving if the deviance rises
            step = step / 2
            new_eta = Xa @ (beta + step)
            new_dev = deviance(new_eta)
            halvings += 1
        beta = beta + step
        eta, dev = new_eta, new_dev
        if np.max(np.abs(step)) <= tol * (1.0 + np.max(np.abs(beta))):
            # information at the weights of the last iteration, as R's glm reports it
            return beta, np.linalg.inv(info), it
    raise InputError(f"the propensity model did not converge in max_iter={max_iter} Newton steps. "
                        + _divergence_message(beta, names))


def _divergence_message(beta: np.ndarray, names: list[str]) -> str:
    top = np.argsort(-np.abs(beta[1:]))[:3]
    listed = ", ".join(f"'{names[k]}' ({beta[1 + k]:+.3g})" for k in top)
    return ("The propensity model diverges: fitted probabilities reach 0 or 1, i.e. a combination of "
            f"covariates separates treated from untreated. Largest coefficients: {listed}. "
            "Remove or merge these covariates, or use penalty='l2'.")


_DEFAULTS: dict[str, Any] = {"penalty": "none", "cv_folds": 5, "max_iter": 1000, "tol": 1e-10, "random_state": 0}


class PropensityModel:
    """Logistic propensity-score model on the scikit-learn contract (``get_params``/``set_params``,
    so ``sklearn.base.clone`` works; not derived from sklearn's ``BaseEstimator``, whose import costs
    ~0.3 s in every ``follicle run``).

    Parameters
    ----------
    penalty : ``"none"`` (maximum likelihood, as R ``glm``), ``"l1"`` or ``"l2"`` (regularised,
        strength chosen by cross-validation).
    cv_folds : folds of the stratified cross-validation (penalised fits only).
    max_iter : maximum solver iterations.
    tol : convergence tolerance of the Newton steps (relative to the coefficient size).
    random_state : seed of the fold assignment.

    Attributes
    ----------
    coef_, intercept_ : fitted coefficients (on the original covariate scale) and intercept.
    se_ : standard errors of (intercept, coefficients); NaN for penalised fits.
    feature_names_in_ : covariate names.
    C_ : inverse penalty chosen by cross-validation (``inf`` when unpenalised).
    cv_path_ : (l1) the penalties tried and their cross-validated log loss.
    n_iter_ : Newton iterations (unpenalised fits).
    ps_, auc_, equipoise_ : training-set propensity scores, their AUC and equipoise.
    """

    def __init__(self, *, penalty: Penalty = "none", cv_folds: int = 5, max_iter: int = 1000,
                 tol: float = 1e-10, random_state: int = 0) -> None:
        self.penalty = penalty
        self.cv_folds = cv_folds
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    _PARAMS = ("penalty", "cv_folds", "max_iter", "tol", "random_state")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._PARAMS}

    def set_params(self, **params: Any) -> PropensityModel:
        for k, v in params.items():
            if k not in self._PARAMS:
                raise ValueError(f"Invalid parameter {k!r} for PropensityModel.")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        changed = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if v != _DEFAULTS[k])
        return f"PropensityModel({changed})"

    def _check_fitted(self) -> None:
        """scikit-learn's ``NotFittedError`` before ``fit`` (imported only then)."""
        if not hasattr(self, "coef_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("This PropensityModel instance is not fitted yet. Call 'fit' first.")

    def _check_params(self) -> None:
        problems = []
        if self.penalty not in ("none", "l1", "l2"):
            problems.append(f"The 'penalty' parameter must be 'none', 'l1' or 'l2'. Got {self.penalty!r} instead.")
        if not isinstance(self.cv_folds, (int, np.integer)) or self.cv_folds < 2:
            problems.append(f"The 'cv_folds' parameter must be an integer >= 2. Got {self.cv_folds!r} instead.")
        if not isinstance(self.max_iter, (int, np.integer)) or self.max_iter < 1:
            problems.append(f"The 'max_iter' parameter must be an integer >= 1. Got {self.max_iter!r} instead.")
        if not self.tol > 0:
            problems.append(f"The 'tol' parameter must be > 0. Got {self.tol!r} instead.")
        if problems:
            raise InputError("invalid propensity-score settings", problems=problems)

    def fit(self, X: Any, t: Any, *, feature_names: list[str] | None = None) -> PropensityModel:
        """Fit the model of treatment *t* (0/1) on covariates *X* (DataFrame, array or sparse)."""
        self._check_params()
        arr, names = _design(X, feature_names)
        tr = as_treatment(t, name="treatment")
        if arr.shape[0] != tr.shape[0]:
            raise InputError(f"covariates have {arr.shape[0]} rows but the treatment has {tr.shape[0]}")
        problems = separation_problems(arr, tr, names, quasi=self.penalty == "none")
        if problems:
            raise InputError("perfectly separated propensity score: treatment is predictable from a "
                             "covariate, so treated and untreated do not overlap", problems=problems)
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        if self.penalty == "none":
            beta, cov, it = _irls(arr, tr, int(self.max_iter), float(self.tol), names)
            self.intercept_ = float(beta[0])
            self.coef_ = beta[1:]
            self.se_ = np.sqrt(np.diag(cov))
            self.C_ = np.inf
            self.n_iter_ = it
        else:
            self._fit_penalised(arr, tr)
        self.ps_ = self.predict_ps(arr)
        self.auc_ = ps_auc(self.ps_, tr)
        self.equipoise_ = equipoise(self.ps_, tr)
        return self

    def _fit_penalised(self, arr: Any, tr: np.ndarray) -> None:
        scale = (abs(arr).max(axis=0).toarray().ravel() if sp.issparse(arr) else np.abs(arr).max(axis=0))
        scale = np.where(scale > 0, scale, 1.0)
        xs = arr @ sp.diags(1.0 / scale) if sp.issparse(arr) else arr / scale
        xs = sp.csr_matrix(xs) if sp.issparse(xs) else xs
        if self.penalty == "l1":
            coef, intercept, c, n_iter, path = _l1_path_cv(xs, tr.astype(int), int(self.cv_folds), int(self.max_iter),
                                                            self.random_state)
            self.cv_path_ = path
        else:
            coef, intercept, c, n_iter = _l2_cv(xs, tr.astype(int), int(self.cv_folds), int(self.max_iter),
                                                self.random_state)
        self.coef_ = coef / scale
        self.intercept_ = intercept
        self.se_ = np.full(self.coef_.shape[0] + 1, np.nan)
        self.C_ = c
        self.n_iter_ = n_iter

    def decision_function(self, X: Any) -> np.ndarray:
        """Linear predictor (logit of the propensity score)."""
        self._check_fitted()
        arr, _ = _design(X, list(self.feature_names_in_))
        if arr.shape[1] != self.n_features_in_:
            raise InputError(f"expected {self.n_features_in_} covariates, got {arr.shape[1]}")
        return np.asarray(arr @ self.coef_).ravel() + self.intercept_

    def predict_ps(self, X: Any) -> np.ndarray:
        """Propensity scores P(treated | X)."""
        return expit(self.decision_function(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """scikit-learn style (n, 2) array: P(untreated), P(treated)."""
        p = self.predict_ps(X)
        return np.column_stack([1 - p, p])

    def coefficients(self) -> pd.DataFrame:
        """Table of term, coef, se, z, p (se/z/p NaN for penalised fits)."""
        self._check_fitted()
        coef = np.concatenate([[self.intercept_], self.coef_])
        z = coef / self.se_
        return pd.DataFrame({"term": ["(intercept)", *self.feature_names_in_], "coef": coef, "se": self.se_,
                             "z": z, "p": 2 * norm_sf(np.abs(z))})


#: penalties tried, as multiples of the smallest C at which some coefficient leaves zero
L1_GRID = 10 ** np.arange(0.25, 4.01, 0.25)
#: stop once the cross-validated loss has been worse than the best for this many weaker penalties in a row
L1_PATIENCE = 2
#: a loss counts as worse when above the best by this relative margin (a flat stretch of the path is not)
L1_WORSE = 1e-6


def _l1_fit(xs: Any, y: np.ndarray, c: float, max_iter: int, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    # liblinear: coordinate descent, fast on sparse data; it penalises the intercept as a feature
    # of value intercept_scaling, so a large scaling makes that penalty negligible
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        return LogisticRegression(l1_ratio=1.0, solver="liblinear", C=c, intercept_scaling=100.0, max_iter=max_iter,
                                  random_state=seed).fit(xs, y)


def _l1_path_cv(xs: Any, y: np.ndarray, folds: int, max_iter: int,
                seed: int) -> tuple[np.ndarray, float, float, int, pd.DataFrame]:
    """Lasso logistic regression with the penalty chosen by stratified k-fold cross-validation.

    As glmnet and Cyclops do, the search walks the regularisation path from the strongest useful
    penalty (the smallest C at which a coefficient leaves zero) towards weaker ones,
    in steps of 10^0.25, scoring each by the mean held-out log loss, and stops when the loss has
    been worse than the best for :data:`L1_PATIENCE` steps in a row (weak penalties are the slow,
    over-fitted end of the path; a flat stretch does not stop it). The strongest useful penalty is
    glmnet's lambda_max: with the intercept at the logit of the treated share, a coefficient leaves
    zero once C exceeds 1 / max_j |x_j' (t - mean t)|.
    Returns coefficients, intercept, the chosen C, iterations and the path (C, cv_log_loss).
    """
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    gradient = np.abs(np.asarray(xs.T @ (y - y.mean()))).max()
    c_min = 1.0 / gradient if gradient > 0 else 1.0
    path, best, best_c, worse = [], np.inf, None, 0
    for c in c_min * L1_GRID:
        losses = []
        for train, test in splits:
            m = _l1_fit(xs[train], y[train], c, max_iter, seed)
            losses.append(log_loss(y[test], m.predict_proba(xs[test])[:, 1], labels=[0, 1]))
        loss = float(np.mean(losses))
        path.append((float(c), loss))
        if loss < best:
            best, best_c = loss, float(c)
        worse = worse + 1 if loss > best * (1 + L1_WORSE) else 0
        if worse >= L1_PATIENCE:
            break
    final = _l1_fit(xs, y, best_c, max_iter, seed)
    return (final.coef_.ravel(), float(final.intercept_[0]), best_c, int(np.max(final.n_iter_)),
            pd.DataFrame(path, columns=["C", "cv_log_loss"]))


def _l2_cv(xs: Any, y: np.ndarray, folds: int, max_iter: int, seed: int) -> tuple[np.ndarray, float, float, int]:
    """Ridge logistic regression, C from 10 values 1e-4..1e4 by stratified k-fold cross-validation."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    model = LogisticRegressionCV(
        Cs=10, l1_ratios=(0.0,), solver="lbfgs", cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
        scoring="neg_log_loss", max_iter=max_iter, use_legacy_attributes=False, random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        model.fit(xs, y)
    return model.coef_.ravel(), float(model.intercept_[0]), float(model.C_), int(np.max(model.n_iter_))


def fit_propensity(X: Any, t: Any, *, penalty: Penalty = "none", cv_folds: int = 5,
                   max_iter: int = 1000) -> PropensityModel:
    """Fit a :class:`PropensityModel`; its ``ps_`` holds the scores of the rows of *X*."""
    return PropensityModel(penalty=penalty, cv_folds=cv_folds, max_iter=max_iter).fit(X, t)


def ps_auc(ps: Any, t: Any) -> float:
    """Area under the ROC curve of the PS for treatment (Mann-Whitney, ties counted half); O(n log n)."""
    tr = as_treatment(t)
    ranks = rank_average(np.asarray(ps, dtype=float))
    n1 = tr.sum()
    n0 = tr.shape[0] - n1
    return float((ranks[tr].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def preference_score(ps: Any, t: Any) -> np.ndarray:
    """Walker's preference score: the PS with the treated share removed on the logit scale.

    ln(F / (1 - F)) = ln(PS / (1 - PS)) - ln(P / (1 - P)), P the proportion treated (Walker 2013).
    """
    tr = as_treatment(t)
    p = np.asarray(ps, dtype=float)
    share = tr.mean()
    logit = np.log(p) - np.log1p(-p) - np.log(share / (1 - share))
    return expit(logit)


def equipoise(ps: Any, t: Any, bounds: tuple[float, float] = (0.3, 0.7)) -> float:
    """Share of units whose preference score lies within *bounds* (Walker 2013: 0.3-0.7)."""
    f = preference_score(ps, t)
    return float(np.mean((f >= bounds[0]) & (f <= bounds[1])))
