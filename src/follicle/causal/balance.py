"""Covariate balance: standardised mean differences (SMD) before and after matching or weighting.

Continuous covariates: d = (m1 - m0) / sqrt((s1^2 + s0^2) / 2); binary (0/1) covariates:
d = (p1 - p0) / sqrt((p1 (1 - p1) + p0 (1 - p0)) / 2). With weights the means are weighted and a
continuous covariate's variance is the weighted (reliability-weights) variance
sum(w) / (sum(w)^2 - sum(w^2)) * sum(w (x - m)^2). Each SMD uses the SDs of the sample it
describes (before: everyone; after: the matched or weighted sample), as OHDSI CohortMethod does.
A covariate passes when |SMD after| < 0.1 (Austin 2009; OHDSI diagnostics).

References
----------
Austin PC. Balance diagnostics for comparing the distribution of baseline covariates between
treatment groups in propensity-score matched samples. Stat Med 2009;28:3083-3107.
Austin PC, Stuart EA. Moving towards best practice when using inverse probability of treatment
weighting (IPTW) using the propensity score to estimate causal treatment effects in observational
studies. Stat Med 2015;34:3661-3679.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from follicle.causal._validate import as_treatment
from follicle.causal.propensity import _design
from follicle.errors import InputError


def _is_binary(X: Any) -> np.ndarray:
    if sp.issparse(X):
        csc = sp.csc_matrix(X)
        out = np.ones(csc.shape[1], bool)
        for j in range(csc.shape[1]):
            d = csc.data[csc.indptr[j]:csc.indptr[j + 1]]
            out[j] = bool(np.all((d == 0) | (d == 1)))
        return out
    return np.all((X == 0) | (X == 1), axis=0)


def _moments(X: Any, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted means and reliability-weighted variances of every column (w >= 0)."""
    sw = w.sum()
    if sp.issparse(X):
        m1 = np.asarray(X.T @ w).ravel() / sw
        m2 = np.asarray(X.multiply(X).T @ w).ravel() / sw
    else:
        m1 = X.T @ w / sw
        m2 = (X * X).T @ w / sw
    sw2 = (w * w).sum()
    denom = sw * sw - sw2
    var = np.maximum(m2 - m1 * m1, 0.0) * (sw * sw / denom if denom > 0 else np.nan)
    return m1, var


def smd(X: Any, t: Any, weights: Any | None = None, *, binary: Any | None = None) -> np.ndarray:
    """Standardised mean difference (treated minus control) of each column of *X*.

    Parameters
    ----------
    X : covariates (DataFrame, array or sparse), one row per unit.
    t : treatment indicator (0/1).
    weights : optional non-negative weights (matching or IPT weights); units with weight 0 drop out.
    binary : optional bool per column; by default a column holding only 0 and 1 is binary.
    """
    arr, _ = _design(X)
    tr = as_treatment(t)
    w = np.ones(tr.shape[0]) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != tr.shape or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise InputError(f"The 'weights' must be {tr.shape[0]} finite values >= 0.")
    if w[tr].sum() == 0 or w[~tr].sum() == 0:
        raise InputError("The 'weights' leave a treatment group empty (all its weights are 0).")
    is_bin = _is_binary(arr) if binary is None else np.asarray(binary, bool)
    keep1 = tr & (w > 0)
    keep0 = ~tr & (w > 0)
    m1, v1 = _moments(arr[keep1], w[keep1])
    m0, v0 = _moments(arr[keep0], w[keep0])
    v1 = np.where(is_bin, m1 * (1 - m1), v1)
    v0 = np.where(is_bin, m0 * (1 - m0), v0)
    # weighted means of a constant column can miss it by rounding (1 - 1e-16): no negative variances,
    # and differences at rounding level are none
    sd = np.sqrt(np.maximum((v1 + v0) / 2.0, 0.0))
    diff = m1 - m0
    diff = np.where(np.abs(diff) <= 1e-12 * np.maximum(1.0, np.abs(m1) + np.abs(m0)), 0.0, diff)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(sd > 0, diff / np.where(sd > 0, sd, 1.0), np.where(diff == 0, 0.0, np.sign(diff) * np.inf))
    return out


def balance_table(X: Any, t: Any, *, weights_after: Any | None = None, weights_before: Any | None = None,
                  threshold: float = 0.1, feature_names: list[str] | None = None) -> pd.DataFrame:
    """Balance per covariate: covariate, smd_before, smd_after, status (PASS/FAIL at |SMD| < threshold).

    ``weights_after`` are matching weights (``MatchResult.weights()``) or IPT weights; without them
    the status is judged on ``smd_before``.
    """
    if not threshold > 0:
        raise InputError(f"The 'threshold' parameter must be > 0. Got {threshold!r} instead.")
    arr, names = _design(X, feature_names)
    before = smd(arr, t, weights_before)
    after = smd(arr, t, weights_after) if weights_after is not None else np.full(before.shape, np.nan)
    judged = after if weights_after is not None else before
    return pd.DataFrame({
        "covariate": names,
        "smd_before": before,
        "smd_after": after,
        "status": np.where(np.abs(judged) < threshold, "PASS", "FAIL"),
    })
