"""Table 1: covariate means per arm before and after matching, with standardised differences."""

from __future__ import annotations

import numpy as np
import pandas as pd


def describe_arms(X: pd.DataFrame, t: np.ndarray, weights: np.ndarray | None = None) -> pd.DataFrame:
    """Weighted mean of every column per arm (a proportion for 0/1 columns): columns target, comparator."""
    w = np.ones(len(t)) if weights is None else np.asarray(weights, dtype=float)
    out = {}
    for arm, value in (("target", 1), ("comparator", 0)):
        m = (t == value) & (w > 0)
        ww = w[m]
        out[arm] = (X.to_numpy(dtype=float)[m] * ww[:, None]).sum(axis=0) / ww.sum() if ww.sum() > 0 else np.nan
    return pd.DataFrame(out, index=X.columns)


def is_binary(column: pd.Series) -> bool:
    values = pd.unique(column.dropna())
    return len(values) <= 2 and set(np.asarray(values, dtype=float)).issubset({0.0, 1.0})


def table1(
    X: pd.DataFrame, t: np.ndarray, match_weights: np.ndarray, balance: pd.DataFrame
) -> pd.DataFrame:
    """One row per covariate: share (%) or mean per arm before/after, SMDs and PASS/FAIL.

    Binary covariates are shown as percentages, continuous ones as means. Counts are not shown,
    so the table cannot reveal a small cell.
    """
    before = describe_arms(X, t)
    after = describe_arms(X, t, match_weights)
    binary = np.array([is_binary(X[c]) for c in X.columns])
    scale = np.where(binary, 100.0, 1.0)
    label = [f"{c} (%)" if b else f"{c} (mean)" for c, b in zip(X.columns, binary)]
    frame = pd.DataFrame({
        "covariate": label,
        "target_before": before["target"].to_numpy() * scale,
        "comparator_before": before["comparator"].to_numpy() * scale,
        "smd_before": balance["smd_before"].to_numpy(),
        "target_after": after["target"].to_numpy() * scale,
        "comparator_after": after["comparator"].to_numpy() * scale,
        "smd_after": balance["smd_after"].to_numpy(),
        "status": balance["status"].to_numpy(),
    })
    return frame
