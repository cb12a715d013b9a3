"""Pooling: inverse-variance equal-effects and random-effects models, Mantel-Haenszel, Peto.

:func:`meta_analysis` is the entry point: effect sizes in, one :class:`MetaResult` out.
The inverse-variance core :func:`fit_rma` also fits meta-regressions (used by Egger's test).

Conventions follow metafor 3.8 ``rma.uni``: z-tests unless ``knha=True`` (Hartung-Knapp /
Knapp-Hartung: variance scaled by the weighted residual mean square, not truncated at 1, and
t with k - p df); prediction interval ``mu +/- crit sqrt(se^2 + tau^2)`` with the same
critical value (normal, or t with k - p df under knha).

References
----------
Hartung J, Knapp G. A refined method for the meta-analysis of controlled clinical trials with
    binary outcome. Stat Med 2001;20:3875-89.
Riley RD, Higgins JPT, Deeks JJ. Interpretation of random effects meta-analyses. BMJ 2011;342:d549.
Viechtbauer W. Conducting meta-analyses in R with the metafor package. J Stat Softw 2010;36(3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.special import chdtrc, ndtr, ndtri, stdtr, stdtrit

from follicle.synthesis.effect_sizes import EffectSizes, binary_effects
from follicle.synthesis.heterogeneity import conventional_i2, heterogeneity, qprofile_tau2_ci
from follicle.synthesis.mantel_haenszel import mantel_haenszel
from follicle.synthesis.peto import peto
from follicle.synthesis.tau2 import TAU2_METHODS, _design, fit_tau2

METHODS = ("EE", "MH", "PETO") + TAU2_METHODS
RATIO_MEASURES = ("OR", "RR", "PETO", "HR", "RATIO")  # RATIO: generic log-ratio estimates


@dataclass(frozen=True)
class RmaFit:
    """An inverse-variance (meta-)regression fit: coefficients and their inference."""

    beta: np.ndarray
    se: np.ndarray
    stat: np.ndarray  # z or t values
    pval: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    tau2: float
    df: int | None  # t degrees of freedom under knha, else None
    crit: float
    weights: np.ndarray
    notes: tuple[str, ...] = ()
    s2w: float = 1.0  # Hartung-Knapp scale factor (1 for z-tests)


def fit_rma(
    yi: object,
    vi: object,
    X: np.ndarray | None = None,
    *,
    method: str = "REML",
    knha: bool = False,
    level: float = 0.95,
    tau2: float | None = None,
) -> RmaFit:
    """Weighted least squares with weights 1/(vi + tau^2); tau^2 estimated by *method* or given.

    With no residual degrees of freedom (k = p, e.g. k = 1) tau^2 is 0 and ``knha`` falls back to
    z-tests, as metafor does; ``notes`` says so, and says when tau^2 needed the fallback
    algorithm of :func:`follicle.synthesis.tau2.fit_tau2`.
    """
    yi_ = np.asarray(yi, dtype=float)
    vi_ = np.asarray(vi, dtype=float)
    X_ = _design(yi_.size, X)
    k, p = X_.shape
    if k < p:
        raise ValueError(f"{k} studies cannot fit {p} coefficients")
    notes: list[str] = []
    if tau2 is None:
        if method == "EE":
            tau2 = 0.0
        else:
            tf = fit_tau2(yi_, vi_, method, X_)
            tau2 = tf.tau2
            if "fallback" in tf.algorithm:
                notes.append(f"tau2 ({method}): {tf.note}")
    if knha and k - p < 1:
        knha = False
        notes.append(f"k = {k}: Hartung-Knapp needs k > {p}; z-tests used instead (as metafor)")
    w = 1.0 / (vi_ + tau2)
    WX = X_ * w[:, None]
    vb = np.linalg.inv(X_.T @ WX)
    beta = vb @ (WX.T @ yi_)
    alpha = 1 - level
    s2w = 1.0
    if knha:
        rss = float(np.sum(w * (yi_ - X_ @ beta) ** 2))
        s2w = 0.0 if rss <= np.finfo(float).eps else rss / (k - p)
        vb = s2w * vb
        df: int | None = k - p
        crit = float(stdtrit(df, 1 - alpha / 2)) if df > 0 else float("nan")
    else:
        df = None
        crit = float(-ndtri(alpha / 2))
    se = np.sqrt(np.diag(vb))
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = beta / se
    pval = 2 * (stdtr(df, -np.abs(stat)) if df is not None else ndtr(-np.abs(stat)))
    return RmaFit(
        beta=beta,
        se=se,
        stat=stat,
        pval=pval,
        ci_low=beta - crit * se,
        ci_high=beta + crit * se,
        tau2=float(tau2),
        df=df,
        crit=crit,
        weights=w,
        notes=tuple(notes),
        s2w=s2w,
    )


@dataclass(frozen=True)
class MetaResult:
    """A pooled estimate with heterogeneity statistics, on the analysis scale (log for ratios).

    ``labels``/``yi``/``vi``/``weights`` hold the studies with a study-level estimate (the
    forest-plot rows); ``input_labels``/``input_weights`` hold every study given, in input
    order, with weight 0 for a study dropped from the fit (metafor's table weight for MH/Peto,
    which keep double-zero tables in the pooled estimate). ``not_estimable`` maps a part of the
    result that could not be computed (``estimate``, ``tau2_ci``...) to the reason; those
    numbers are NaN. ``notes`` record how the fit departed from the default path.
    """

    measure: str
    method: str
    knha: bool
    level: float
    k: int
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    stat: float
    pval: float
    df: int | None
    tau2: float
    tau2_ci_low: float
    tau2_ci_high: float
    i2_ci_low: float
    i2_ci_high: float
    i2: float
    i2_conventional: float
    h2: float
    q: float
    q_df: int
    q_p: float
    labels: list[str] = field(default_factory=list)
    yi: list[float] = field(default_factory=list)
    vi: list[float] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)  # percent
    dropped: list[str] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)
    input_labels: list[str] = field(default_factory=list)
    input_weights: list[float] = field(default_factory=list)  # percent, every study given
    not_estimable: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def is_ratio(self) -> bool:
        return self.measure in RATIO_MEASURES

    @property
    def estimable(self) -> bool:
        return "estimate" not in self.not_estimable

    def exp(self) -> dict[str, float]:
        """Estimate and intervals back-transformed (ratio measures)."""
        keys = ("estimate", "ci_low", "ci_high", "pi_low", "pi_high")
        return {key: float(np.exp(getattr(self, key))) for key in keys}

    def studies(self) -> list[dict[str, Any]]:
        """Every study given, in input order: yi, vi (None where dropped) and weight (0 where dropped)."""
        shown = {lab: (y, v) for lab, y, v in zip(self.labels, self.yi, self.vi)}
        labels = self.input_labels or list(self.labels)
        weights = self.input_weights or list(self.weights)
        gone = set(self.dropped)
        rows = []
        for lab, w in zip(labels, weights):
            y, v = shown.get(lab, (None, None))
            rows.append({"study": lab, "yi": y, "vi": v, "weight": w, "dropped": lab in gone})
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: the keys of ``follicle meta --json``."""
        out: dict[str, Any] = {
            "measure": self.measure,
            "method": self.method,
            "knha": self.knha,
            "level": self.level,
            "k": self.k,
            "estimate": self.estimate,
            "se": self.se,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "pi_low": self.pi_low,
            "pi_high": self.pi_high,
            "pval": self.pval,
            "df": self.df,
            "tau2": self.tau2,
            "tau2_ci_low": self.tau2_ci_low,
            "tau2_ci_high": self.tau2_ci_high,
            "i2_ci_low": self.i2_ci_low,
            "i2_ci_high": self.i2_ci_high,
            "i2": self.i2,
            "i2_conventional": self.i2_conventional,
            "h2": self.h2,
            "q": self.q,
            "q_df": self.q_df,
            "q_p": self.q_p,
        }
        if self.is_ratio:
            out["exp"] = self.exp()
        out["studies"] = self.studies()
        if self.dropped:
            out["dropped"] = list(self.dropped)
        out["not_estimable"] = dict(self.not_estimable)
        out["notes"] = list(self.notes)
        out.update(self.extra)
        return out

    def as_row(self) -> dict[str, Any]:
        """Flat summary without per-study lists (for tables)."""
        d = asdict(self)
        for key in ("labels", "yi", "vi", "weights", "dropped", "extra", "input_labels", "input_weights",
                    "not_estimable", "notes"):
            d.pop(key)
        return d


def _check_method(method: str, knha: bool, effects: EffectSizes) -> None:
    if method not in METHODS:
        raise ValueError(f"The 'method' parameter must be one of {METHODS}. Got {method!r} instead.")
    if method in ("MH", "PETO"):
        if effects.tables is None:
            raise ValueError(f"The {method} method needs 2x2 tables (binary arm data). Got measure {effects.measure}.")
        if method == "PETO" and effects.measure not in ("OR", "PETO"):
            raise ValueError(f"The PETO method pools odds ratios; the 'measure' must be OR. Got {effects.measure!r}.")
        if method == "MH" and effects.measure not in ("OR", "RR", "RD"):
            raise ValueError(f"The MH method needs measure OR, RR or RD. Got {effects.measure!r} instead.")
        if knha:
            raise ValueError(f"The 'knha' option applies to inverse-variance models, not to method {method}.")


def _no_studies(effects: EffectSizes) -> ValueError:
    why = f" (double-zero studies dropped: {', '.join(effects.dropped)})" if effects.dropped else ""
    return ValueError(f"no study left to pool{why}")


def meta_analysis(
    effects: EffectSizes,
    *,
    method: str = "REML",
    knha: bool = False,
    level: float = 0.95,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = True,
    qprofile: bool = True,
) -> MetaResult:
    """Pool study effects by *method*.

    Parameters
    ----------
    effects : EffectSizes
        From :mod:`follicle.synthesis.effect_sizes`.
    method : EE, MH, PETO, DL, REML, PM, ML, SJ, HE, EB, HS or HSk
        EE is the inverse-variance equal (fixed) effect model; the tau^2 estimators give
        random-effects models; MH and PETO need binary data.
    knha : bool
        Hartung-Knapp adjustment (inverse-variance models).
    add, to, drop00 :
        For MH and PETO only: the continuity correction and double-zero rule for the study-level
        values used in Q and the plots (metafor ``rma.mh``/``rma.peto`` defaults); the pooled
        estimate itself uses the uncorrected tables (double-zero ones included, as metafor).
    qprofile : bool
        Compute the Q-profile CI for tau^2 (refits such as leave-one-out skip it: NaN).

    Returns
    -------
    MetaResult
        Pooled estimate (model scale) with CI and prediction interval, tau^2 (with Q-profile
        CI), I^2, H^2, Q, and per-study weights; ``exp()`` gives them on the ratio scale.

    Notes
    -----
    Edge cases as metafor 3.8: k = 1 is fitted with tau^2 = 0, Q = 0 (df 0), I^2 = 0, H^2 = 1,
    the prediction interval equal to the CI and z-tests under ``knha``; the Q-profile CI is then
    not estimable. A Mantel-Haenszel OR (RR) with no informative table is NaN with the reason in
    ``not_estimable``, while the CMH test is still reported. The Q-profile CI for tau^2 is an
    auxiliary result: if it cannot be computed it is NaN with the reason, and the pooled
    estimate stands.
    """
    _check_method(method, knha, effects)
    if effects.k < 1:
        raise _no_studies(effects)
    if method in ("MH", "PETO"):
        return _pool_tables(effects, method, level, add, to, drop00)
    yi, vi = effects.yi, effects.vi
    fit = fit_rma(yi, vi, method=method, knha=knha, level=level)
    het = heterogeneity(yi, vi)
    mu, se = float(fit.beta[0]), float(fit.se[0])
    half = fit.crit * np.sqrt(se**2 + fit.tau2)
    not_estimable: dict[str, str] = {}
    lo, hi = float("nan"), float("nan")
    if not qprofile:
        pass
    elif het.df < 1:
        not_estimable["tau2_ci"] = f"k = {effects.k}: no degrees of freedom for the Q-profile interval"
    else:
        try:
            lo, hi = qprofile_tau2_ci(yi, vi, level=level, tau2_hint=fit.tau2)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            not_estimable["tau2_ci"] = f"Q-profile root finding failed: {exc}"
    if method == "EE":
        i2, h2 = het.i2_conventional, (het.q / het.df if het.df > 0 else 1.0)
    else:
        i2, h2 = het.i2(fit.tau2), het.h2(fit.tau2)
    notes = list(fit.notes)
    if effects.k == 1:
        notes.append("k = 1: tau2 = 0, Q = 0 (df 0), I2 = 0 and the prediction interval equals the CI (as metafor)")
    shown = dict(zip(effects.labels, 100 * fit.weights / fit.weights.sum()))
    all_labels = effects.all_labels
    return MetaResult(
        measure=effects.measure,
        method=method,
        knha=fit.df is not None,
        level=level,
        k=effects.k,
        estimate=mu,
        se=se,
        ci_low=float(fit.ci_low[0]),
        ci_high=float(fit.ci_high[0]),
        pi_low=mu - half,
        pi_high=mu + half,
        stat=float(fit.stat[0]),
        pval=float(fit.pval[0]),
        df=fit.df,
        tau2=fit.tau2,
        tau2_ci_low=lo,
        tau2_ci_high=hi,
        i2_ci_low=het.i2(lo) if np.isfinite(lo) else float("nan"),
        i2_ci_high=het.i2(hi) if np.isfinite(hi) else float("nan"),
        i2=i2,
        i2_conventional=het.i2_conventional,
        h2=h2,
        q=het.q,
        q_df=het.df,
        q_p=het.q_p,
        labels=list(effects.labels),
        yi=effects.yi.tolist(),
        vi=effects.vi.tolist(),
        weights=[float(shown[lab]) for lab in effects.labels],
        dropped=list(effects.dropped),
        input_labels=all_labels,
        input_weights=[float(shown.get(lab, 0.0)) for lab in all_labels],
        not_estimable=not_estimable,
        notes=notes,
    )


def _table_weights(tables: np.ndarray, measure: str) -> np.ndarray:
    """metafor ``weights.rma.mh`` / ``weights.rma.peto``: the MH (or Peto V) weight of each table."""
    a, b, c, d = (tables[:, j] for j in range(4))
    n1, n2 = a + b, c + d
    N = n1 + n2
    if measure == "OR":
        return (b / N) * c
    if measure == "RR":
        return (c / N) * n1
    if measure == "RD":
        return n1 * n2 / N
    xt, yt = a + c, b + d
    with np.errstate(invalid="ignore", divide="ignore"):
        v = xt * yt * (n1 / N) * (n2 / N) / (N - 1)
    return np.where(np.isfinite(v), v, 0.0)


def _pool_tables(effects: EffectSizes, method: str, level: float, add: float, to: str, drop00: bool) -> MetaResult:
    tables = np.asarray(effects.tables, dtype=float)
    measure = "PETO" if method == "PETO" else effects.measure
    a, b, c, d = (tables[:, j] for j in range(4))
    shown = binary_effects(
        a, a + b, c, c + d, measure=measure, labels=effects.labels, add=add, to=to, drop00=drop00  # type: ignore[arg-type]
    )
    extra: dict[str, float] = {}
    not_estimable: dict[str, str] = {}
    k_yi = shown.k
    if method == "MH":
        r = mantel_haenszel(tables, effects.measure)
        est, se = r.estimate, r.se
        if r.reason:
            not_estimable["estimate"] = r.reason
        if effects.measure == "OR":
            extra = {"cmh": r.cmh, "cmh_p": r.cmh_p, "tarone": r.tarone, "tarone_p": r.tarone_p}
            if not np.isfinite(r.cmh):
                not_estimable["cmh"] = "no events (or no non-events) in any table: the CMH test is not computable"
        # metafor: QE = max(0, sum wi (yi - beta)^2) over the study-level values (NA if beta is)
        q = (max(0.0, float(np.sum((shown.yi - est) ** 2 / shown.vi))) if np.isfinite(est) else float("nan")) \
            if k_yi > 1 else 0.0
        df = max(k_yi - 1, 0)
    else:
        r2 = peto(tables)
        est, se = r2.estimate, r2.se
        q = r2.q if r2.k_pos > 1 else 0.0  # metafor: Q-test only with more than one informative table
        df = max(k_yi - 1, 0) if r2.k_pos > 1 else 0
    crit = float(-ndtri((1 - level) / 2))
    i2c = conventional_i2(q, df) if np.isfinite(q) else float("nan")
    h2 = (q / df if df > 0 else 1.0) if np.isfinite(q) else float("nan")
    q_p = (float(chdtrc(df, q)) if df > 0 else 1.0) if np.isfinite(q) else float("nan")
    w_all = _table_weights(tables, measure)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = 100 * w_all / w_all.sum()  # NaN for every table when no table carries weight (as metafor)
    by_label = dict(zip(effects.labels, pct.tolist()))
    all_labels = effects.all_labels
    with np.errstate(invalid="ignore", divide="ignore"):
        stat = est / se
    return MetaResult(
        measure=effects.measure,
        method=method,
        knha=False,
        level=level,
        k=int(tables.shape[0]),  # metafor's k: all tables, including double-zero ones
        estimate=est,
        se=se,
        ci_low=est - crit * se,
        ci_high=est + crit * se,
        pi_low=est - crit * se,
        pi_high=est + crit * se,
        stat=float(stat),
        pval=float(2 * ndtr(-abs(stat))),
        df=None,
        tau2=0.0,
        tau2_ci_low=float("nan"),
        tau2_ci_high=float("nan"),
        i2_ci_low=float("nan"),
        i2_ci_high=float("nan"),
        i2=i2c,
        i2_conventional=i2c,
        h2=h2,
        q=q,
        q_df=df,
        q_p=q_p,
        labels=list(shown.labels),
        yi=shown.yi.tolist(),
        vi=shown.vi.tolist(),
        weights=[by_label[lab] for lab in shown.labels],
        dropped=list(effects.dropped) + list(shown.dropped),
        extra=extra,
        input_labels=all_labels,
        input_weights=[by_label.get(lab, 0.0) for lab in all_labels],
        not_estimable=not_estimable,
    )
