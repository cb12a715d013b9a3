"""Case-deletion influence diagnostics for an inverse-variance model, as metafor's ``influence.rma.uni``.

For each study i the model is refitted without it (same tau^2 method and test); from the
deletion fit come the externally standardised residual (``rstudent``), DFFITS, Cook's distance,
the covariance ratio, tau^2 and Q without the study, and DFBETAS; with the hat value and the
weight of the full fit. A study is flagged influential as metafor flags it: |DFFITS| >
3 sqrt(p/(k-p)), or P(chi2_1 <= Cook's D) > 0.5, or hat > 3p/k, or |DFBETAS| > 1.
A deletion fit that fails leaves its row NaN with the reason (metafor leaves it NA).

References
----------
Viechtbauer W, Cheung MWL. Outlier and influence diagnostics for meta-analysis.
    Res Synth Methods 2010;1:112-25.
Belsley DA, Kuh E, Welsch RE. Regression Diagnostics. Wiley 1980 (DFFITS, DFBETAS, COVRATIO).
Cook RD. Detection of influential observation in linear regression. Technometrics 1977;19:15-18.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import chdtr

from follicle.synthesis.heterogeneity import heterogeneity
from follicle.synthesis.pooling import MetaResult, fit_rma

INFLUENCE_COLUMNS = ["study", "rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "q_del", "hat", "weight",
                     "dfbetas", "influential", "note"]


def influence(result: MetaResult) -> pd.DataFrame:
    """One row per study of an inverse-variance :class:`MetaResult` (columns ``INFLUENCE_COLUMNS``)."""
    if result.method in ("MH", "PETO"):
        raise ValueError(f"influence diagnostics need an inverse-variance model; method {result.method} pools 2x2 tables")
    y = np.asarray(result.yi, float)
    v = np.asarray(result.vi, float)
    k, p = y.size, 1
    if k < 2:
        raise ValueError(f"influence diagnostics need at least 2 studies; k = {k} (metafor stops at k = 1)")
    full = fit_rma(y, v, method=result.method, knha=result.knha, level=result.level)
    mu, vb = float(full.beta[0]), float(full.se[0] ** 2)
    w = full.weights
    hat = w / w.sum()
    hat = np.where(hat > 1 - 10 * np.finfo(float).eps, 1.0, hat)
    rows = []
    for i, lab in enumerate(result.labels):
        keep = np.arange(k) != i
        row: dict[str, object] = {"study": lab, "hat": float(hat[i]), "weight": float(100 * hat[i]), "note": ""}
        try:
            res = fit_rma(y[keep], v[keep], method=result.method, knha=result.knha, level=result.level)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            rows.append(row | {c: float("nan") for c in ("rstudent", "dffits", "cook_d", "cov_r", "tau2_del",
                                                           "q_del", "dfbetas")} | {"influential": False,
                                                                                    "note": f"deletion fit failed: {exc}"})
            continue
        t2, s2w = res.tau2, res.s2w
        pred = float(res.beta[0])
        vpred = float(res.se[0] ** 2)
        diff = mu - pred
        resid = y[i] - pred
        if abs(resid) < 100 * np.finfo(float).eps:
            resid = 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            rstudent = resid / np.sqrt(v[i] * s2w + vpred + t2 * s2w)
            dffits = diff / np.sqrt(s2w * hat[i] * (t2 + v[i]))
            vb_del = 1.0 / np.sum(1.0 / (v + t2))
            dfbetas = diff / np.sqrt(s2w * vb_del)
            cook = diff**2 / vb
            cov_r = vpred / vb
        flagged = (abs(dffits) > 3 * np.sqrt(p / (k - p)) or chdtr(1, cook) > 0.5 or hat[i] > 3 * p / k
                   or abs(dfbetas) > 1)
        rows.append(row | {"rstudent": float(rstudent), "dffits": float(dffits), "cook_d": float(cook),
                           "cov_r": float(cov_r), "tau2_del": float(t2), "q_del": heterogeneity(y[keep], v[keep]).q,
                           "dfbetas": float(dfbetas), "influential": bool(flagged)})
    return pd.DataFrame(rows, columns=INFLUENCE_COLUMNS)
