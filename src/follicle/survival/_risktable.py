"""Risk-set counts per distinct time (and stratum and group), from one sort: O(n log n).

Kaplan-Meier and the log-rank test both need, at every distinct time, how many are at risk
(time >= t) and how many have the event, per group. Counts are integers, so the reverse
cumulative sums below are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RiskTable:
    """Counts at each distinct (stratum, time), times ascending within stratum.

    Arrays ``n_risk``, ``n_event`` and ``n_censor`` have shape (n_groups, n_times), so
    each group's counts are contiguous.
    """

    time: np.ndarray
    stratum: np.ndarray
    n_risk: np.ndarray
    n_event: np.ndarray
    n_censor: np.ndarray


MAX_COUNTING_TIME = 10_000_000


def distinct_times(time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct times and each subject's index into them (``np.unique(return_inverse)``).

    Whole-number times (days, the usual unit) up to ten million are counted with ``bincount`` in
    O(n), without sorting; other times are sorted once.
    """
    n = len(time)
    if n and time.max() <= MAX_COUNTING_TIME:
        as_int = time.astype(np.int64)
        if np.array_equal(as_int, time):
            present = np.bincount(as_int) > 0
            code = np.cumsum(present) - 1
            return np.flatnonzero(present).astype(np.float64), code[as_int]
    order = np.argsort(time)
    ts = time[order]
    new = np.empty(n, dtype=bool)
    new[:1] = True
    np.not_equal(ts[1:], ts[:-1], out=new[1:])
    inv = np.empty(n, dtype=np.int64)
    inv[order] = np.cumsum(new) - 1
    return ts[new], inv


def risk_table(
    time: np.ndarray,
    event: np.ndarray,
    group: np.ndarray | None = None,
    n_groups: int = 1,
    stratum: np.ndarray | None = None,
) -> RiskTable:
    """Per distinct (stratum, time): numbers at risk, events and censorings per group code."""
    n = len(time)
    if group is None:
        group = np.zeros(n, dtype=np.int64)
    if stratum is None:
        times, gid = distinct_times(time)
        strat_of = np.zeros(len(times), dtype=np.int64)
    else:
        order = np.lexsort((time, stratum))
        ts, ss = time[order], stratum[order]
        new = np.empty(n, dtype=bool)
        new[0] = True
        new[1:] = (ts[1:] != ts[:-1]) | (ss[1:] != ss[:-1])
        times, strat_of = ts[new], ss[new]
        gid = np.cumsum(new) - 1  # distinct (stratum, time) index, in sorted order
        group, event = group[order], event[order]
    n_t = len(times)
    key = group * n_t + gid
    total = np.bincount(key, minlength=n_t * n_groups).reshape(n_groups, n_t)
    events = np.bincount(key[event.astype(bool)], minlength=n_t * n_groups).reshape(n_groups, n_t)
    # reverse cumulative sum within stratum: at risk at t = count with time >= t in the stratum
    rev = np.cumsum(total[:, ::-1], axis=1)[:, ::-1]
    if stratum is not None and n_t:
        last = np.flatnonzero(np.r_[strat_of[1:] != strat_of[:-1], True])  # last row of each stratum
        after = np.zeros((n_groups, len(last)), dtype=rev.dtype)
        nxt = last + 1
        inside = nxt < n_t
        after[:, inside] = rev[:, nxt[inside]]
        which = np.searchsorted(last, np.arange(n_t))  # stratum index of each row
        rev = rev - after[:, which]
    return RiskTable(times, strat_of, rev, events, total - events)
