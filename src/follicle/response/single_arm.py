"""Single-arm (pilot trial) analysis: responder rate with an exact CI and regrowth among responders.

References
----------
Clopper CJ, Pearson ES. The use of confidence or fiducial limits illustrated in the case of the
binomial. Biometrika 1934;26:404-413 (the exact interval R's ``binom.test`` reports).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class ResponderRate:
    """Responders among evaluable patients with an exact (Clopper-Pearson) confidence interval."""

    responders: int
    n: int
    rate: float
    ci_low: float
    ci_high: float
    conf_level: float

    def to_dict(self) -> dict:
        return asdict(self)


def clopper_pearson(x: int, n: int, conf_level: float = 0.95) -> tuple[float, float]:
    """Exact binomial CI for x successes in n trials: the limits of ``binom.test(x, n)`` in R."""
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}")
    if int(x) != x or not 0 <= x <= n:
        raise ValueError(f"x must be an integer in [0, n={n}]; got {x!r}")
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be in (0, 1); got {conf_level!r}")
    alpha = 1.0 - conf_level
    low = 0.0 if x == 0 else stats.beta.ppf(alpha / 2, x, n - x + 1)
    high = 1.0 if x == n else stats.beta.ppf(1 - alpha / 2, x + 1, n - x)
    return float(low), float(high)


def responder_rate(responded: np.ndarray | pd.Series, conf_level: float = 0.95) -> ResponderRate:
    """Responder rate among evaluable patients (missing values are not evaluable and dropped).

    Use non-responder imputation upstream (``endpoints.landmark_values``) to count a patient
    without an assessment as a non-responder instead.
    """
    arr = pd.Series(responded, dtype="float").dropna().to_numpy()
    if arr.size == 0:
        raise ValueError("responder_rate needs at least one evaluable patient; got none")
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError("responded must hold 0/1 (or True/False) values")
    x, n = int(arr.sum()), int(arr.size)
    low, high = clopper_pearson(x, n, conf_level)
    return ResponderRate(x, n, x / n, low, high, conf_level)


def mean_sd(values: np.ndarray | pd.Series) -> tuple[int, float, float]:
    """Count, mean and sample SD (n-1 denominator, NaN when fewer than 2) of the non-missing values."""
    arr = pd.Series(values, dtype="float").dropna().to_numpy()
    if arr.size == 0:
        return 0, float("nan"), float("nan")
    sd = float(np.std(arr, ddof=1)) if arr.size > 1 else float("nan")
    return int(arr.size), float(np.mean(arr)), sd


def single_arm_summary(
    endpoints: pd.DataFrame,
    *,
    responder_col: str = "responder",
    regrowth_col: str = "regrowth_pct",
    conf_level: float = 0.95,
) -> dict:
    """Responder rate (exact CI) and mean (SD) percent regrowth among responders and overall.

    *endpoints* has one row per patient (``endpoints.patient_endpoints`` output).
    """
    for col in (responder_col, regrowth_col):
        if col not in endpoints.columns:
            raise ValueError(f"endpoints table needs column {col!r}; has {list(endpoints.columns)}")
    rate = responder_rate(endpoints[responder_col], conf_level)
    resp = endpoints[endpoints[responder_col].astype("float") == 1.0]
    n_r, mean_r, sd_r = mean_sd(resp[regrowth_col])
    n_a, mean_a, sd_a = mean_sd(endpoints[regrowth_col])
    return {
        "n_patients": int(len(endpoints)),
        "responder_rate": rate.to_dict(),
        "regrowth_responders": {"n": n_r, "mean": mean_r, "sd": sd_r},
        "regrowth_all": {"n": n_a, "mean": mean_a, "sd": sd_a},
    }
