"""Small-cell suppression for everything that leaves the machine (one rule, used everywhere).

A count from 1 to ``min_cell_count - 1`` is written as ``"<{min_cell_count}"`` (default ``"<10"``);
0 and counts at or above the threshold are kept. Estimates that would let a reader recover a
suppressed count (a risk with its denominator, an incidence rate with its person-time) are
withheld by the callers that assemble results; this module supplies the primitives.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

DEFAULT_MIN_CELL_COUNT = 10


def suppressed_label(min_cell_count: int = DEFAULT_MIN_CELL_COUNT) -> str:
    """The text written in place of a small count, e.g. ``"<10"``."""
    return f"<{min_cell_count}"


def is_small(count: Any, min_cell_count: int = DEFAULT_MIN_CELL_COUNT) -> bool:
    """True when *count* is a positive count below the threshold (and must not leave the machine)."""
    if count is None or isinstance(count, (str, bool, np.bool_)):
        return False
    try:
        value = float(count)
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(value) and 0 < value < min_cell_count)


def suppress_count(count: Any, min_cell_count: int = DEFAULT_MIN_CELL_COUNT) -> Any:
    """*count* unchanged (numpy integers as int), or the label when it is a small positive count."""
    if is_small(count, min_cell_count):
        return suppressed_label(min_cell_count)
    if isinstance(count, np.integer):
        return int(count)
    return count


def suppress_counts(obj: Any, count_keys: Iterable[str], min_cell_count: int = DEFAULT_MIN_CELL_COUNT) -> Any:
    """A copy of the JSON-like *obj* with every small count under a key in *count_keys* suppressed.

    A count key may hold one count or a list of counts (e.g. numbers at risk); estimates under
    other keys are left as they are.
    """
    keys = set(count_keys)

    def one(value: Any) -> Any:
        return [one(v) for v in value] if isinstance(value, list) else suppress_count(value, min_cell_count)

    if isinstance(obj, dict):
        return {k: one(v) if k in keys else suppress_counts(v, keys, min_cell_count) for k, v in obj.items()}
    if isinstance(obj, list):
        return [suppress_counts(v, keys, min_cell_count) for v in obj]
    return obj
