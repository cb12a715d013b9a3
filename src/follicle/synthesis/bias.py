"""Small-study effects: Egger's regression test and trim-and-fill, as metafor's ``regtest``/``trimfill``.

References
----------
Egger M, Davey Smith G, Schneider M, Minder C. Bias in meta-analysis detected by a simple,
    graphical test. BMJ 1997;315:629-34.
Sterne JAC, Egger M. Regression methods to detect publication and other bias in meta-analysis.
    In: Rothstein HR et al. (eds), Publication Bias in Meta-Analysis. Wiley 2005, 99-110.
Duval S, Tweedie R. Trim and fill: a simple funnel-plot-based method of testing and adjusting
    for publication bias in meta-analysis. Biometrics 2000;56:455-63.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import statsmodels.api as sm
from scipy.stats import rankdata

from follicle.synthesis.pooling import MetaResult, fit_rma


@dataclass(frozen=True)
class EggerResult:
    model: str  # "rma" (metafor default) or "lm" (Egger 1997)
    stat: float  # z (or t) for the standard-error coefficient
    pval: float
    df: int | None
    limit_estimate: float  # intercept: the estimate as se -> 0
    limit_ci_low: float
    limit_ci_high: float
    notes: tuple[str, ...] = ()  # e.g. tau2 of the regression found by the fallback algorithm


def egger_test(
    yi: object,
    vi: object,
    *,
    model: Literal["rma", "lm"] = "rma",
    method: str = "REML",
    knha: bool = False,
    level: float = 0.95,
) -> EggerResult:
    """Regression test for funnel-plot asymmetry with the standard error as predictor.

    ``model="rma"`` (metafor's default): a meta-regression ``yi ~ sei`` with the same tau^2
    *method* (and knha) as the main model; ``model="lm"``: Egger's weighted least squares with
    weights 1/vi and a multiplicative dispersion (the classic test, t with k - 2 df).
    """
    y = np.asarray(yi, float)
    v = np.asarray(vi, float)
    if y.size < 3:
        raise ValueError(f"Egger's test needs at least 3 studies; got k = {y.size}.")
    X = np.column_stack([np.ones_like(y), np.sqrt(v)])
    if model == "rma":
        fit = fit_rma(y, v, X, method=method, knha=knha, level=level)
        return EggerResult(
            model=model, stat=float(fit.stat[1]), pval=float(fit.pval[1]), df=fit.df,
            limit_estimate=float(fit.beta[0]), limit_ci_low=float(fit.ci_low[0]), limit_ci_high=float(fit.ci_high[0]),
            notes=fit.notes,
        )
    if model != "lm":
        raise ValueError(f"The 'model' parameter must be 'rma' or 'lm'. Got {model!r} instead.")
    res = sm.WLS(y, X, weights=1 / v).fit()
    lo, hi = res.conf_int(alpha=1 - level)[0]
    return EggerResult(
        model=model, stat=float(res.tvalues[1]), pval=float(res.pvalues[1]), df=int(res.df_resid),
        limit_estimate=float(res.params[0]), limit_ci_low=float(lo), limit_ci_high=float(hi),
    )


@dataclass(frozen=True)
class TrimFillResult:
    k0: int  # number of studies filled in
    se_k0: float
    side: str  # side on which studies were missing: "left" or "right"
    filled_yi: np.ndarray
    filled_vi: np.ndarray
    adjusted: MetaResult  # the model refitted with the filled studies


def trim_and_fill(
    result: MetaResult,
    *,
    side: Literal["left", "right"] | None = None,
    estimator: Literal["L0", "R0"] = "L0",
    maxiter: int = 100,
) -> TrimFillResult:
    """Duval & Tweedie's trim-and-fill for an inverse-variance model, as metafor's ``trimfill``.

    The side with missing studies, when not given, is chosen as metafor does: from the sign of
    the slope of ``yi ~ sqrt(vi)`` fitted with the model's tau^2 method (positive slope ->
    studies missing on the left). Trimmed refits and the final fit use the model's tau^2 method
    with z-tests (metafor does not pass knha on).
    """
    from follicle.synthesis.effect_sizes import EffectSizes
    from follicle.synthesis.pooling import meta_analysis

    if result.method in ("MH", "PETO"):
        raise ValueError("trim-and-fill needs an inverse-variance model (EE or a tau^2 method)")
    method = result.method
    yi0 = np.asarray(result.yi, float)
    vi0 = np.asarray(result.vi, float)
    k = yi0.size
    if k < 3:
        raise ValueError(f"trim-and-fill needs at least 3 studies; got k = {k}.")
    if side is None:
        X = np.column_stack([np.ones(k), np.sqrt(vi0)])
        slope = fit_rma(yi0, vi0, X, method=method).beta[1]
        side = "right" if slope < 0 else "left"
    if side not in ("left", "right"):
        raise ValueError(f"The 'side' parameter must be 'left' or 'right'. Got {side!r} instead.")
    yi = -yi0 if side == "right" else yi0.copy()
    order = np.argsort(yi, kind="stable")
    yi, vi = yi[order], vi0[order]
    k0, k0_prev, it = 0, -1, 0
    beta = float("nan")
    se_k0 = float("nan")
    while k0 != k0_prev:
        k0_prev = k0
        it += 1
        if it > maxiter:
            raise ArithmeticError("trim-and-fill did not converge")
        beta = float(fit_rma(yi[: k - k0], vi[: k - k0], method=method).beta[0])
        yc = yi - beta
        signed = np.sign(yc) * rankdata(np.abs(yc), method="ordinal")
        if estimator == "L0":
            sr = signed[signed > 0].sum()
            k0f = (4 * sr - k * (k + 1)) / (2 * k - 1)
            var_sr = (k * (k + 1) * (2 * k + 1) + 10 * k0f**3 + 27 * k0f**2 + 17 * k0f
                      - 18 * k * k0f**2 - 18 * k * k0f + 6 * k**2 * k0f) / 24
            se_k0 = 4 * np.sqrt(var_sr) / (2 * k - 1)
        elif estimator == "R0":
            k0f = (k - max(-signed[signed < 0])) - 1 if np.any(signed < 0) else k - 1
            se_k0 = np.sqrt(2 * max(0, k0f) + 2)
        else:
            raise ValueError(f"The 'estimator' parameter must be 'L0' or 'R0'. Got {estimator!r} instead.")
        k0 = int(max(0, _round_half_even(k0f)))
        se_k0 = max(0.0, float(se_k0))
    if k0 == 0:
        return TrimFillResult(k0=0, se_k0=se_k0, side=side, filled_yi=np.array([]), filled_vi=np.array([]),
                              adjusted=result)
    yc = yi - beta
    mirrored = -(yc[k - k0:] - beta)  # 2 beta - yi on the working scale
    fill_y = -mirrored if side == "right" else mirrored
    fill_v = vi[k - k0:]
    labels = list(result.labels) + [f"Filled {i + 1}" for i in range(k0)]
    es = EffectSizes(measure=result.measure, yi=np.concatenate([yi0, fill_y]), vi=np.concatenate([vi0, fill_v]),
                     labels=labels)
    adjusted = meta_analysis(es, method=method, knha=False, level=result.level)
    return TrimFillResult(k0=k0, se_k0=se_k0, side=side, filled_yi=fill_y, filled_vi=fill_v, adjusted=adjusted)


def _round_half_even(x: float) -> float:
    """R's round(): halves go to the even neighbour (as numpy's)."""
    return float(np.round(x))
