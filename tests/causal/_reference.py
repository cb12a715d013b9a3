"""O(n^2) reference implementations of greedy matching, for property tests on small cases."""

from __future__ import annotations

import numpy as np


def exhaustive_closest(x: np.ndarray, treated: np.ndarray, width: float) -> dict[int, int]:
    """List every (treated, control) pair, sort by (distance, treated, control), take greedily."""
    tpos = np.flatnonzero(treated)
    cpos = np.flatnonzero(~treated)
    pairs = sorted((abs(x[i] - x[j]), int(i), int(j)) for i in tpos for j in cpos)
    used_t: set[int] = set()
    used_c: set[int] = set()
    out: dict[int, int] = {}
    for d, i, j in pairs:
        if d > width or i in used_t or j in used_c:
            continue
        used_t.add(i)
        used_c.add(j)
        out[i] = j
    return out


def exhaustive_ordered(x: np.ndarray, order: np.ndarray, controls: np.ndarray, width: float) -> dict[int, int]:
    """Treated in *order*, each scanning all controls for the nearest unused one within *width*."""
    used: set[int] = set()
    out: dict[int, int] = {}
    for i in order:
        best = None
        for j in controls:
            if int(j) in used:
                continue
            d = abs(x[i] - x[j])
            if d <= width and (best is None or d < best[0] or (d == best[0] and j < best[1])):
                best = (d, int(j))
        if best is not None:
            used.add(best[1])
            out[int(i)] = best[1]
    return out
