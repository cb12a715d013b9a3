"""Defer Python's full garbage collections while a study is compiled and extracted.

Compiling a study builds many Ibis and SQLGlot expression objects. Each full (generation 2)
collection walks every live object, including all of pandas, Ibis and SQLGlot. On the bundled
study at 1M persons two such passes took 0.14 s of a 2 s extraction (measured with
``gc.callbacks``). Young-generation collections still run, and the previous thresholds are restored
when the decorated call returns, so nothing outside it is affected.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

#: generation-2 threshold while deferred (Python's default is 10 generation-1 collections)
DEFERRED_THRESHOLD = 1000


def full_collections_deferred(func: Callable[P, R]) -> Callable[P, R]:
    """Run *func* with full collections deferred (nested calls keep the outermost thresholds)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        old = gc.get_threshold()
        gc.set_threshold(old[0], old[1], max(old[2], DEFERRED_THRESHOLD))
        try:
            return func(*args, **kwargs)
        finally:
            gc.set_threshold(*old)

    return wrapper
