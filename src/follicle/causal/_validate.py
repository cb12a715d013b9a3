"""Input checks shared by the causal functions: one clear message naming what is wrong."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from follicle.errors import InputError


def as_treatment(t: Any, name: str = "t") -> np.ndarray:
    """A 0/1 (or bool) treatment vector as bool, with both groups present."""
    arr = np.asarray(t.to_numpy() if isinstance(t, (pd.Series, pd.Index)) else t)
    if arr.ndim != 1:
        raise InputError(f"The treatment '{name}' must be one-dimensional. Got shape {arr.shape}.")
    if arr.dtype == bool:
        out = arr
    else:
        try:
            num = arr.astype(float)
        except (TypeError, ValueError):
            raise InputError(f"The treatment '{name}' must be 0/1. Got non-numeric values "
                             f"such as {arr[:3].tolist()!r}.") from None
        bad = ~np.isin(num, (0.0, 1.0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"The treatment '{name}' must be 0/1 (no missing values). "
                             f"Got {arr[i]!r} at row {i}.")
        out = num == 1.0
    n1 = int(out.sum())
    if n1 == 0 or n1 == out.shape[0]:
        group = "treated (1)" if n1 else "untreated (0)"
        raise InputError(f"The treatment '{name}' has a single group: every row is {group}; "
                         "two groups are needed.")
    return out


def as_ps(ps: Any, *, n: int, allow_bounds: bool = False, name: str = "ps") -> np.ndarray:
    """Propensity scores as float64, finite and in (0, 1) (``[0, 1]`` if ``allow_bounds``)."""
    arr = np.asarray(ps.to_numpy() if isinstance(ps, (pd.Series, pd.Index)) else ps, dtype=float)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InputError(f"The '{name}' array must be one-dimensional with {n} values (one per unit). "
                         f"Got shape {arr.shape}.")
    lo_ok = arr >= 0 if allow_bounds else arr > 0
    hi_ok = arr <= 1 if allow_bounds else arr < 1
    bad = ~(np.isfinite(arr) & lo_ok & hi_ok)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        rule = "[0, 1]" if allow_bounds else "(0, 1) (strictly; 0 and 1 have no logit)"
        raise InputError(f"The '{name}' values must lie in {rule}. Got {arr[i]!r} at row {i}.")
    return arr
