"""Predictors of response: multivariable logistic and linear models, univariable screen, subgroups,
discrimination and calibration.

Logistic models are fitted by maximum likelihood (statsmodels GLM, binomial, logit link; Wald
intervals as R's ``confint.default``) or, for small samples with separation, by Firth's penalised
likelihood (profile intervals, as R's ``logistf``). Linear models use OLS with t intervals (R's
``lm``). Categorical predictors get treatment (dummy) coding against a stated reference level.

References
----------
Hosmer DW, Lemeshow S, Sturdivant RX. Applied Logistic Regression, 3rd ed. Wiley 2013.
Cox DR. Two further applications of a model for binary regression. Biometrika 1958;45:562-565
(calibration slope and intercept by logistic recalibration).
Wada-Irimada M et al. J Dermatol 2025 (the predictor design: SALT <= 20 at 9 months).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from scipy.optimize import brentq
from scipy.special import expit, logit
from sklearn.metrics import roc_auc_score

from follicle.errors import InputError
from follicle.response import separation
from follicle.response.firth import FirthLogisticRegression
from follicle.response.single_arm import clopper_pearson

TERM_COLUMNS = ["term", "coef", "se", "or", "ci_low", "ci_high", "p", "reference"]


@dataclass
class ModelResult:
    """A fitted predictor model: one row per term plus model-level figures.

    For logistic models ``ci_low``/``ci_high`` bound the odds ratio ``or``; for linear models
    they bound the coefficient (``or`` is NaN).
    """

    kind: str
    method: str
    outcome: str
    n: int
    events: int | None
    terms: pd.DataFrame
    metrics: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    infinite: dict[str, str] = field(default_factory=dict)  # term -> "+inf: why" / "-inf: why" (ML under separation)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "method": self.method,
            "outcome": self.outcome,
            "n": self.n,
            "events": self.events,
            "terms": self.terms.to_dict(orient="records"),
            "metrics": self.metrics,
            "warnings": self.warnings,
            "infinite": self.infinite,
        }


def _where(source: str, row: object, col: str) -> str:
    return f"{source}: row {row}, column {col!r}"


def design_matrix(
    data: pd.DataFrame,
    predictors: Sequence[str],
    *,
    categorical: Sequence[str] = (),
    reference: Mapping[str, object] | None = None,
    source: str = "data",
) -> tuple[pd.DataFrame, dict[str, object]]:
    """Numeric design matrix (intercept first) and the reference level of each categorical predictor.

    A predictor is categorical when listed in *categorical* or when its values are not numeric.
    Its reference level is ``reference[name]`` if given, else the most frequent level (ties: the
    first in sorted order). Dummy columns are named ``name[level]``. Missing values raise an
    :class:`InputError` naming the row and column.
    """
    reference = dict(reference or {})
    missing = [p for p in predictors if p not in data.columns]
    if missing:
        raise InputError(f"{source}: no column {missing[0]!r} (columns: {', '.join(map(str, data.columns))})")
    cols: dict[str, np.ndarray] = {"(Intercept)": np.ones(len(data))}
    refs: dict[str, object] = {}
    for name in predictors:
        col = data[name]
        na = col.isna()
        if na.any():
            raise InputError(f"{_where(source, col.index[na.to_numpy()][0], name)}: missing value")
        is_cat = name in categorical or not pd.api.types.is_numeric_dtype(col)
        if not is_cat:
            cols[name] = col.to_numpy(dtype=float)
            continue
        levels = sorted(col.astype(str).unique())
        if name in reference:
            ref = str(reference[name])
            if ref not in levels:
                raise InputError(f"{source}: reference level {ref!r} of {name!r} not among {levels}")
        else:
            counts = col.astype(str).value_counts()
            ref = sorted(counts.index[counts == counts.max()])[0]
        refs[name] = ref
        for level in levels:
            if level != ref:
                cols[f"{name}[{level}]"] = (col.astype(str) == level).to_numpy(dtype=float)
    X = pd.DataFrame(cols, index=data.index)
    return X, refs


def _binary_outcome(data: pd.DataFrame, outcome: str, source: str) -> np.ndarray:
    if outcome not in data.columns:
        raise InputError(f"{source}: no outcome column {outcome!r} (columns: {', '.join(map(str, data.columns))})")
    y = data[outcome]
    na = y.isna()
    if na.any():
        raise InputError(f"{_where(source, y.index[na.to_numpy()][0], outcome)}: missing outcome")
    vals = pd.to_numeric(y.replace({True: 1, False: 0}), errors="coerce")
    bad = vals.isna() | ~vals.isin([0, 1])
    if bad.any():
        row = y.index[bad.to_numpy()][0]
        raise InputError(f"{_where(source, row, outcome)}: binary outcome must be 0 or 1; got {y.loc[row]!r}")
    arr = vals.to_numpy(dtype=float)
    if np.unique(arr).size < 2:
        raise InputError(
            f"{source}: outcome {outcome!r} has one class only (all {int(arr[0])} in {len(arr)} rows); "
            "a logistic model needs both responders and non-responders"
        )
    return arr


def _check_rank(X: pd.DataFrame, source: str) -> None:
    if np.linalg.matrix_rank(X.to_numpy()) < X.shape[1]:
        const = [c for c in X.columns[1:] if np.ptp(X[c].to_numpy()) == 0]
        what = f"constant predictor {const[0]!r}" if const else "collinear predictors"
        raise InputError(f"{source}: cannot fit the model: {what} ({', '.join(X.columns[1:])})")


def _term_table(names, coef, se, lo, hi, p, refs, exp: bool) -> pd.DataFrame:
    with np.errstate(over="ignore"):  # a separated ML fit has huge coefficients: OR is inf
        return _term_rows(names, coef, se, lo, hi, p, refs, exp)


def _term_rows(names, coef, se, lo, hi, p, refs, exp: bool) -> pd.DataFrame:
    rows = []
    for i, name in enumerate(names):
        base = name.split("[", 1)[0]
        rows.append(
            {
                "term": name,
                "coef": float(coef[i]),
                "se": float(se[i]),
                "or": float(np.exp(coef[i])) if exp else float("nan"),
                "ci_low": float(np.exp(lo[i]) if exp else lo[i]),
                "ci_high": float(np.exp(hi[i]) if exp else hi[i]),
                "p": float(p[i]),
                "reference": str(refs[base]) if base in refs and "[" in name else None,
            }
        )
    return pd.DataFrame(rows, columns=TERM_COLUMNS)


def _fit_ml_logistic(X: np.ndarray, y: np.ndarray, conf_level: float):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = sm.GLM(y, X, family=sm.families.Binomial()).fit(tol=1e-12, maxiter=200)
    notes = [str(w.message) for w in caught if "separation" in str(w.message).lower()]
    ci = np.asarray(res.conf_int(alpha=1 - conf_level))
    return res.params, res.bse, ci[:, 0], ci[:, 1], res.pvalues, res.converged, notes


def _fit_firth(X: np.ndarray, y: np.ndarray, conf_level: float):
    f = FirthLogisticRegression(fit_intercept=False, conf_level=conf_level).fit(X, y)
    return f.coef_, f.bse_, f.ci_[:, 0], f.ci_[:, 1], f.pvals_, f.converged_, []


def _describe_separation(name: str, sign: int, x: np.ndarray, y: np.ndarray, complete: bool) -> str:
    """Why the ML estimate of *name* is infinite, in terms of the data."""
    kind = "complete" if complete else "quasi-complete"
    limit = "+inf (odds ratio inf)" if sign > 0 else "-inf (odds ratio 0)"
    values = np.unique(x)
    if values.size == 2 and set(values) <= {0.0, 1.0}:
        # the level whose patients all share one outcome drives the estimate
        level = 1.0 if np.ptp(y[x == 1.0]) == 0 and (y[x == 1.0].size > 0) else 0.0
        n_l, r_l = int(np.sum(x == level)), int(y[x == level].sum())
        why = f"all {n_l} patients with {name} = {level:g} are {'responders' if r_l == n_l else 'non-responders'}"
    else:
        why = f"{name} separates responders from non-responders"
    if name == "(Intercept)":
        return f"the intercept: {kind} separation (with the covariates); its maximum-likelihood estimate is {limit}"
    return f"covariate '{name}': {kind} separation: {why}; its maximum-likelihood estimate is {limit}"


def _ml_under_separation(X: pd.DataFrame, y: np.ndarray, conf_level: float):
    """ML fit with separation handled: infinite coefficients as +/-inf, the rest from the limit model.

    Returns (coef, se, lo, hi, p, converged, messages, infinite, risk) or None when the data
    are not separated (the ordinary fit applies).
    """
    Xa = X.to_numpy()
    sep = separation.detect_separation(Xa, y)
    if not sep.found:
        return None
    sup = separation.fit_sup(Xa, y, sep)
    names = list(X.columns)
    z = stats.norm.ppf(0.5 + conf_level / 2)
    coef, se, pv = sup.coef.copy(), sup.se.copy(), sup.pval.copy()
    lo, hi = coef - z * se, coef + z * se
    complete = bool(sep.separated.all())
    messages, infinite = [], {}
    for j, sign in sep.infinite.items():
        coef[j] = sign * np.inf
        pv[j] = separation.lr_pvalue(Xa, y, j, sup.loglik)
        lim = separation.profile_limit(Xa, y, j, sign, sup.loglik, conf_level) if len(sep.infinite) == 1 else np.nan
        lo[j], hi[j] = (lim, np.inf) if sign > 0 else (-np.inf, lim)
        why = _describe_separation(names[j], sign, Xa[:, j], y, complete)
        infinite[names[j]] = ("+inf: " if sign > 0 else "-inf: ") + why
        messages.append(f"{why}; reported as infinite, with a likelihood-ratio p-value and a one-sided "
                        "profile-likelihood interval (use --firth for Firth's finite penalised estimate)")
    for j in sup.not_estimable:
        infinite[names[j]] = (f"not estimable: with {', '.join(repr(names[i]) for i in sep.infinite)} infinite, "
                              "no patient left varies in it")
        messages.append(f"covariate '{names[j]}': {infinite[names[j]]}")
    eta = np.where(np.isnan(sup.coef), 0.0, sup.coef) @ Xa.T
    risk = np.where(sep.separated, y, 1 / (1 + np.exp(-eta)))
    return coef, se, lo, hi, pv, sup.converged, messages, infinite, risk


def _sparse_terms(X: pd.DataFrame, y: np.ndarray, *, firth: bool, min_count: int = 10,
                  skip: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """Warnings for binary terms with few patients at one level (or, for ML, a level with no
    responders or no non-responders, which Firth's method handles): unstable estimates.
    Terms in *skip* (already reported as infinite or not estimable) are left out."""
    out = []
    for col in X.columns[1:]:
        if col in skip:
            continue
        x = X[col].to_numpy()
        if not np.isin(x, (0.0, 1.0)).all():
            continue
        for level in (0.0, 1.0):
            n = int((x == level).sum())
            ev = int(y[x == level].sum())
            if n < min_count or (not firth and (ev == 0 or ev == n)):
                out.append(f"sparse predictor: {col} = {level:g} in {n} patients ({ev} responders); "
                           "its estimate is unstable (consider --firth or dropping it)")
                break
    return out


def cross_validated_risk(
    X: np.ndarray, y: np.ndarray, *, folds: int = 5, seed: int = 0, firth: bool = False
) -> np.ndarray:
    """Out-of-fold predicted risks (stratified k-fold) for honest AUC and calibration."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=int)
    for cls in (0.0, 1.0):
        idx = np.flatnonzero(y == cls)
        fold[idx] = rng.permutation(np.arange(len(idx)) % folds)
    risk = np.empty(len(y))
    for k in range(folds):
        train, test = fold != k, fold == k
        f = FirthLogisticRegression(fit_intercept=False, profile_ci=False)
        if not firth:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    beta = sm.GLM(y[train], X[train], family=sm.families.Binomial()).fit().params
            except Exception:  # singular fold: fall back to the penalised fit
                beta = f.fit(X[train], y[train]).coef_
        else:
            beta = f.fit(X[train], y[train]).coef_
        risk[test] = 1 / (1 + np.exp(-(X[test] @ beta)))
    return risk


def auc(y: np.ndarray, risk: np.ndarray) -> float:
    """Area under the ROC curve (the c statistic)."""
    return float(roc_auc_score(np.asarray(y), np.asarray(risk)))


def calibration(y: np.ndarray, risk: np.ndarray) -> dict[str, float]:
    """Calibration slope (logistic regression of y on logit risk) and intercept (calibration in
    the large: the intercept with logit risk as an offset). Ideal values are 1 and 0 (Cox 1958).

    Risks of exactly 0 or 1 (out-of-fold predictions of a separated fit) make these models
    separated or non-convergent themselves; the figures are then NaN rather than the large
    numbers an iteration stops at.
    """
    y = np.asarray(y, dtype=float)
    lp = logit(np.clip(np.asarray(risk, dtype=float), 1e-12, 1 - 1e-12))
    design = sm.add_constant(lp)
    if separation.detect_separation(design, y).found:
        return {"slope": float("nan"), "intercept": float("nan")}
    slope_fit = sm.GLM(y, design, family=sm.families.Binomial()).fit(tol=1e-12)
    slope = float(slope_fit.params[1]) if slope_fit.converged else float("nan")
    if not 0 < y.sum() < y.size:
        return {"slope": slope, "intercept": float("nan")}

    def score(a: float) -> float:  # calibration in the large: sum(y) = sum expit(a + lp), decreasing in a
        return float(y.sum() - expit(a + lp).sum())

    lo, hi = -1.0, 1.0
    while score(lo) < 0:
        lo *= 2
    while score(hi) > 0:
        hi *= 2
    return {"slope": slope, "intercept": float(brentq(score, lo, hi, xtol=1e-12, rtol=1e-14))}


def fit_logistic(
    data: pd.DataFrame,
    outcome: str,
    predictors: Sequence[str],
    *,
    categorical: Sequence[str] = (),
    reference: Mapping[str, object] | None = None,
    firth: bool = False,
    conf_level: float = 0.95,
    cv_folds: int = 5,
    seed: int = 0,
    source: str = "data",
) -> ModelResult:
    """Multivariable logistic regression of a binary endpoint: ORs, CIs, p-values, AUC, calibration.

    ``firth=True`` uses Firth's penalised likelihood (use it when events are few or the ML fit
    reports separation). Metrics: apparent AUC, and cross-validated AUC and calibration
    slope/intercept from *cv_folds*-fold out-of-fold risks (when every fold has both classes).

    Separation is found exactly (:mod:`follicle.response.separation`). Under maximum likelihood
    the coefficients it makes infinite are reported as +/-inf (OR inf or 0) with a message
    naming the covariate, a likelihood-ratio p-value and the finite end of the profile interval;
    the other coefficients come from the limit of the likelihood. With ``firth=True`` the
    finite penalised estimates are reported and the message names the separated covariate.
    """
    y = _binary_outcome(data, outcome, source)
    X, refs = design_matrix(data, predictors, categorical=categorical, reference=reference, source=source)
    _check_rank(X, source)
    Xa = X.to_numpy()
    infinite: dict[str, str] = {}
    under = None if firth else _ml_under_separation(X, y, conf_level)
    if under is not None:
        coef, se, lo, hi, p, converged, msgs, infinite, risk = under
        coef = np.asarray(coef)
    else:
        fitter = _fit_firth if firth else _fit_ml_logistic
        coef, se, lo, hi, p, converged, notes = fitter(Xa, y, conf_level)
        coef = np.asarray(coef)
        msgs = list(notes)
        if firth:
            sep = separation.detect_separation(Xa, y)
            for j, sign in sep.infinite.items():
                msgs.append(f"{_describe_separation(X.columns[j], sign, Xa[:, j], y, bool(sep.separated.all()))}; "
                            "Firth's penalised estimate is reported (finite)")
        risk = 1 / (1 + np.exp(-(Xa @ coef)))
    if not converged:
        msgs.append("the fit did not converge")
    msgs += _sparse_terms(X, y, firth=firth, skip=set(infinite))
    metrics: dict = {"auc_apparent": auc(y, risk), "conf_level": conf_level, "reference_levels": refs}
    if cv_folds >= 2 and min(y.sum(), len(y) - y.sum()) >= cv_folds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cv = cross_validated_risk(Xa, y, folds=cv_folds, seed=seed, firth=firth)
            cal = calibration(y, cv)
        metrics.update({"auc_cv": auc(y, cv), "calibration_slope_cv": cal["slope"],
                        "calibration_intercept_cv": cal["intercept"], "cv_folds": cv_folds, "seed": seed})
        if not (np.isfinite(cal["slope"]) and np.isfinite(cal["intercept"])):
            msgs.append("cross-validated calibration not estimable: out-of-fold risks of 0 or 1 (separated folds) "
                        "leave the calibration model without a finite fit")
    terms = _term_table(list(X.columns), coef, se, lo, hi, p, refs, exp=True)
    method = "firth-penalised likelihood, profile CIs" if firth else "maximum likelihood, Wald CIs"
    return ModelResult("logistic", method, outcome, len(y), int(y.sum()), terms, metrics, msgs, infinite)


def fit_linear(
    data: pd.DataFrame,
    outcome: str,
    predictors: Sequence[str],
    *,
    categorical: Sequence[str] = (),
    reference: Mapping[str, object] | None = None,
    conf_level: float = 0.95,
    source: str = "data",
) -> ModelResult:
    """Linear regression (OLS) of a continuous endpoint such as the SALT improvement rate."""
    if outcome not in data.columns:
        raise InputError(f"{source}: no outcome column {outcome!r} (columns: {', '.join(map(str, data.columns))})")
    yser = pd.to_numeric(data[outcome], errors="coerce")
    bad = yser.isna()
    if bad.any():
        row = data.index[bad.to_numpy()][0]
        raise InputError(f"{_where(source, row, outcome)}: outcome must be a number; got {data[outcome].loc[row]!r}")
    X, refs = design_matrix(data, predictors, categorical=categorical, reference=reference, source=source)
    _check_rank(X, source)
    if len(yser) <= X.shape[1]:
        raise InputError(f"{source}: {len(yser)} rows cannot fit {X.shape[1]} coefficients")
    res = sm.OLS(yser.to_numpy(dtype=float), X.to_numpy()).fit()
    ci = np.asarray(res.conf_int(alpha=1 - conf_level))
    terms = _term_table(list(X.columns), res.params, res.bse, ci[:, 0], ci[:, 1], res.pvalues, refs, exp=False)
    metrics = {"r_squared": float(res.rsquared), "adj_r_squared": float(res.rsquared_adj),
               "sigma": float(np.sqrt(res.scale)), "df_resid": float(res.df_resid),
               "conf_level": conf_level, "reference_levels": refs}
    return ModelResult("linear", "ordinary least squares, t CIs", outcome, len(yser), None, terms, metrics, [])


def univariable_screen(
    data: pd.DataFrame,
    outcome: str,
    predictors: Sequence[str],
    *,
    kind: str = "logistic",
    categorical: Sequence[str] = (),
    reference: Mapping[str, object] | None = None,
    firth: bool = False,
    conf_level: float = 0.95,
    source: str = "data",
) -> pd.DataFrame:
    """One model per predictor (the usual Table 2 screen); intercepts dropped."""
    if kind not in ("logistic", "linear"):
        raise ValueError(f"kind must be 'logistic' or 'linear'; got {kind!r}")
    frames = []
    for name in predictors:
        if kind == "logistic":
            res = fit_logistic(data, outcome, [name], categorical=categorical, reference=reference,
                               firth=firth, conf_level=conf_level, cv_folds=0, source=source)
        else:
            res = fit_linear(data, outcome, [name], categorical=categorical, reference=reference,
                             conf_level=conf_level, source=source)
        t = res.terms[res.terms.term != "(Intercept)"].copy()
        t.insert(0, "predictor", name)
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def subgroup_table(
    data: pd.DataFrame, outcome: str, by: str, *, binary: bool = True, conf_level: float = 0.95
) -> pd.DataFrame:
    """Outcome by subgroup (e.g. AA type, sex): responders and rate with an exact CI, or mean (SD)."""
    for col in (outcome, by):
        if col not in data.columns:
            raise InputError(f"no column {col!r} for the subgroup table")
    rows = []
    for level, grp in data.groupby(data[by].astype(str), sort=True):
        vals = pd.to_numeric(grp[outcome], errors="coerce").dropna()
        row: dict = {"subgroup": by, "level": level, "n": int(len(vals))}
        if binary:
            x = int(vals.sum())
            lo, hi = clopper_pearson(x, len(vals), conf_level) if len(vals) else (np.nan, np.nan)
            row.update({"responders": x, "rate": x / len(vals) if len(vals) else np.nan, "ci_low": lo, "ci_high": hi})
        else:
            sd = float(vals.std(ddof=1)) if len(vals) > 1 else np.nan
            t = stats.t.ppf(0.5 + conf_level / 2, len(vals) - 1) if len(vals) > 1 else np.nan
            half = t * sd / np.sqrt(len(vals)) if len(vals) > 1 else np.nan
            mean = float(vals.mean()) if len(vals) else np.nan
            row.update({"mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half})
        rows.append(row)
    return pd.DataFrame(rows)
