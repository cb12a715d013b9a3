"""Small helpers shared by the generator modules: day numbers, logistic, weighted choice."""

from __future__ import annotations

from datetime import date

import numpy as np

EPOCH = date(1970, 1, 1)
DAYS_PER_YEAR = 365.25


def day(d: date) -> int:
    """Days since 1970-01-01 (the generator's integer date)."""
    return (d - EPOCH).days


def expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def linear(coefs: dict[str, float], cov: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Sum of coefficient x covariate over the named covariates (float64, length n)."""
    out = np.zeros(n)
    for name, b in coefs.items():
        if b:
            out += b * cov[name]
    return out


def choose(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """Row-wise weighted choice: *weights* is (n, k), rows need not sum to 1; returns column index.

    Rows whose weights are all zero get -1.
    """
    total = weights.sum(axis=1)
    cum = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * total
    idx = (cum <= u[:, None]).sum(axis=1)
    idx = np.minimum(idx, weights.shape[1] - 1)
    return np.where(total > 0, idx, -1)


def choose_fixed(rng: np.random.Generator, weights: list[float] | np.ndarray, n: int) -> np.ndarray:
    """n draws from one categorical distribution given by *weights*."""
    w = np.asarray(weights, dtype=float)
    return rng.choice(len(w), size=n, p=w / w.sum())
