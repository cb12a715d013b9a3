"""Validation of survival inputs: one clear :class:`InputError` naming the column and the rule.

Public functions in :mod:`follicle.survival` accept arrays or pandas Series; a Series' name (or
the keyword name) is used in messages, so a researcher sees which column of their file is wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from follicle.errors import InputError


def column_name(values: Any, default: str) -> str:
    """The name to show for *values*: a Series' own name, else *default*."""
    name = getattr(values, "name", None)
    return str(name) if isinstance(name, str) and name else default


def _first_rows(mask: np.ndarray, limit: int = 5) -> str:
    rows = np.flatnonzero(mask)[:limit]
    more = " ..." if mask.sum() > limit else ""
    return ", ".join(str(int(r)) for r in rows) + more


def as_time(values: Any, name: str = "time") -> np.ndarray:
    """Follow-up times as float64: numeric, finite and >= 0 (row numbers of offenders named)."""
    name = column_name(values, name)
    series = pd.Series(np.asarray(values) if not isinstance(values, pd.Series) else values)
    if len(series) == 0:
        raise InputError(f"column '{name}' is empty: no rows to analyse")
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        coerced = pd.to_numeric(series, errors="coerce")
        bad = coerced.isna().to_numpy() & series.notna().to_numpy()
        if bad.any():
            example = series[bad].iloc[0]
            raise InputError(
                f"column '{name}' must hold numeric times; got non-numeric value {example!r} "
                f"(rows {_first_rows(bad)}, counting from 0)"
            )
        series = coerced
    arr = series.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = ~np.isfinite(arr)
    if missing.any():
        raise InputError(f"column '{name}' has missing or infinite times (rows {_first_rows(missing)}, counting from 0)")
    negative = arr < 0
    if negative.any():
        raise InputError(
            f"column '{name}' must hold times >= 0; got {float(arr[negative][0])!r} (rows {_first_rows(negative)}, counting from 0)"
        )
    return arr


def as_event(values: Any, n: int, name: str = "event") -> np.ndarray:
    """Event indicators as bool: 1/0, True/False (anything else is an error naming the rows)."""
    name = column_name(values, name)
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    if len(series) != n:
        raise InputError(f"column '{name}' has {len(series)} rows; expected {n} (one per time)")
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=bool)
    coerced = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isin(coerced, (0.0, 1.0))
    if bad.any():
        example = series[bad].iloc[0]
        example = example.item() if hasattr(example, "item") else example
        raise InputError(
            f"column '{name}' must hold event indicators 1 (event) or 0 (censored); got {example!r} "
            f"(rows {_first_rows(bad)}, counting from 0)"
        )
    return coerced == 1.0


def as_time_event(time: Any, event: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(time, event)`` arrays of equal length."""
    t = as_time(time)
    return t, as_event(event, len(t))


def require_events(event: np.ndarray, name: str = "event", what: str = "this analysis") -> None:
    """All-censored data cannot inform a hazard; say so naming the event column."""
    if not event.any():
        raise InputError(f"column '{name}' has no events (all {len(event)} rows censored): {what} needs at least one")


def as_groups(values: Any, n: int, name: str = "group", *, min_groups: int = 2) -> tuple[np.ndarray, list[Any]]:
    """Integer codes and sorted labels of a grouping column; at least *min_groups* distinct values."""
    name = column_name(values, name)
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    if len(series) != n:
        raise InputError(f"column '{name}' has {len(series)} rows; expected {n} (one per time)")
    missing = series.isna().to_numpy()
    if missing.any():
        raise InputError(f"column '{name}' has missing values (rows {_first_rows(missing)}, counting from 0)")
    codes, labels = pd.factorize(series, sort=True)
    if len(labels) < min_groups:
        raise InputError(
            f"column '{name}' must have at least {min_groups} distinct groups to compare; "
            f"got {len(labels)} ({', '.join(map(str, labels[:3]))})"
        )
    return codes.astype(np.int64), list(labels)


def check_choice(param: str, value: Any, choices: tuple[str, ...]) -> str:
    """Parameter *param* must be one of *choices* (message names parameter, rule and value)."""
    if value not in choices:
        raise ValueError(f"The '{param}' parameter must be one of {', '.join(map(repr, choices))}. Got {value!r} instead.")
    return value


def check_conf_level(conf_level: float) -> float:
    if not 0 < conf_level < 1:
        raise ValueError(f"The 'conf_level' parameter must be in (0, 1). Got {conf_level!r} instead.")
    return float(conf_level)
