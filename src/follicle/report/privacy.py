"""Small-cell suppression for everything that leaves the machine.

A count from 1 to ``min_cell_count - 1`` is written as ``"<{min_cell_count}"`` (default ``"<10"``);
0 and counts at or above the threshold are kept. Estimates that would let a reader recover a
suppressed count (a risk with its denominator, an incidence rate with its person-time) are
withheld by the callers that assemble results; this module supplies the primitives.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_MIN_CELL_COUNT = 10


def suppressed_label(min_cell_count: int = DEFAULT_MIN_CELL_COUNT) -> str:
    """The text written in place of a small count, e.g. ``"<10"``."""
    return f"<{min_cell_count}"


def is_small(count: Any, min_cell_count: int = DEFAULT_MIN_CELL_COUNT) -> bool:
    """True when *count* is a positive count below the threshold (and must not leave the machine)."""
    if count is None or isinstance(count, str):
        return False
    try:
        value = float(count)
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(value) and 0 < value < min_cell_count)


def suppress_count(count: Any, min_cell_count: int = DEFAULT_MIN_CELL_COUNT) -> Any:
    """*count* unchanged, or the suppressed label when it is a small positive count."""
    if is_small(count, min_cell_count):
        return suppressed_label(min_cell_count)
    if isinstance(count, (np.integer,)):
        return int(count)
    return count


def suppress_columns(
    frame: pd.DataFrame, columns: Iterable[str], min_cell_count: int = DEFAULT_MIN_CELL_COUNT
) -> pd.DataFrame:
    """A copy of *frame* with small counts in *columns* replaced by the label (object dtype)."""
    out = frame.copy()
    for col in columns:
        if col in out.columns:
            out[col] = out[col].astype(object).map(lambda v: suppress_count(v, min_cell_count))
    return out


def find_small_counts(
    obj: Any, count_keys: Iterable[str], min_cell_count: int = DEFAULT_MIN_CELL_COUNT, path: str = ""
) -> list[str]:
    """Paths in a JSON-like *obj* where a key in *count_keys* holds a small count (an audit helper)."""
    keys = set(count_keys)
    found: list[str] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            sub = f"{path}.{key}" if path else str(key)
            if key in keys and is_small(value, min_cell_count):
                found.append(sub)
            found += find_small_counts(value, keys, min_cell_count, sub)
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            found += find_small_counts(value, keys, min_cell_count, f"{path}[{i}]")
    return found
