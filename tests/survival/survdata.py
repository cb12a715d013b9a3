"""Data the survival tests generate (seeded), shared by the differential tests against R."""

from __future__ import annotations

import numpy as np
import pandas as pd


def matched_cohort(seed: int = 11, n_pairs: int = 150, tie_scale: float = 1.0) -> pd.DataFrame:
    """Matched pairs with a shared frailty, integer (heavily tied) times, covariates and weights."""
    rng = np.random.default_rng(seed)
    n = 2 * n_pairs
    pair = np.repeat(np.arange(n_pairs), 2)
    treat = np.tile([1, 0], n_pairs)
    frailty = np.repeat(rng.normal(0, 0.5, n_pairs), 2)
    age = rng.normal(50, 10, n).round(1)
    sex = rng.integers(0, 2, n)
    lp = -0.5 * treat + 0.03 * (age - 50) + 0.4 * sex + frailty
    t = rng.exponential(1 / np.exp(lp)) * 10
    c = rng.uniform(0, 15, n)
    time = np.ceil(np.minimum(t, c) / tie_scale) * tie_scale
    event = (t <= c).astype(int)
    return pd.DataFrame(
        {"time": time, "event": event, "treat": treat, "age": age, "sex": sex, "pair": pair,
         "grp3": rng.integers(0, 3, n), "w": rng.uniform(0.5, 2.0, n).round(3)}
    )
