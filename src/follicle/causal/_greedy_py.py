"""The greedy matching kernels of :mod:`follicle.causal._greedy` in plain Python, needing no compilation.

Same algorithms, same results (tests compare them pair by pair), written over Python lists with the
sorting done by numpy. A numba kernel is ~20x faster once compiled, but compiling it costs 2-5 s at
a user's first run (more on a loaded machine), which is longer than these take up to a few hundred
thousand units; :func:`follicle.causal.matching.match` picks these below :data:`PLAIN_MAX_UNITS`.
"""

from __future__ import annotations

import heapq

import numpy as np

#: Up to this many units (treated + controls) matching runs in plain Python (no numba import, no
#: compilation); above it the compiled kernel's speed outweighs its one-off compilation.
PLAIN_MAX_UNITS = 300_000


def closest_pairs(x: np.ndarray, treated: np.ndarray, active: np.ndarray, width: float) -> np.ndarray:
    """Closest-pair-first greedy 1:1 matching of active units (see ``_greedy.closest_pairs``)."""
    n = x.shape[0]
    match = np.full(n, -1, np.int64)
    idx = np.flatnonzero(active)
    if idx.shape[0] == 0:
        return match
    vals = x[idx]
    srt = np.lexsort((idx, ~treated[idx], vals))  # by value, treated first, then position
    order_a = idx[srt]
    sv = vals[srt]
    order = order_a.tolist()
    is_t = treated[order_a].tolist()
    starts = np.flatnonzero(np.r_[True, sv[1:] != sv[:-1]]).tolist()
    bounds = starts + [len(order)]
    value = sv[starts].tolist()
    n_sites = len(starts)
    kind = [-1] * n_sites  # 0 treated, 1 controls, -1 empty
    head = [0] * n_sites
    end = [0] * n_sites
    pairs_t: list[int] = []
    pairs_c: list[int] = []
    for s in range(n_sites):
        lo, hi = bounds[s], bounds[s + 1]
        split = lo
        while split < hi and is_t[split]:
            split += 1
        nt, nc = split - lo, hi - split
        q = min(nt, nc)
        pairs_t.extend(order[lo:lo + q])
        pairs_c.extend(order[split:split + q])
        if nt > q:
            kind[s], head[s], end[s] = 0, lo + q, split
        elif nc > q:
            kind[s], head[s], end[s] = 1, split + q, hi
    alive = [s for s in range(n_sites) if kind[s] >= 0]
    prev = [-1] * n_sites
    nxt = [-1] * n_sites
    for a, b in zip(alive, alive[1:]):
        nxt[a] = b
        prev[b] = a

    def candidate(left: int, right: int) -> tuple[float, int, int] | None:
        if left < 0 or right < 0:
            return None
        kl, kr = kind[left], kind[right]
        if kl < 0 or kr < 0 or kl == kr:
            return None
        dist = value[right] - value[left]
        if dist > width:
            return None
        if kl == 0:
            return dist, order[head[left]], order[head[right]]
        return dist, order[head[right]], order[head[left]]

    heap: list[tuple[float, int, int, int, int]] = []
    for a, b in zip(alive, alive[1:]):
        c = candidate(a, b)
        if c is not None:
            heap.append((c[0], c[1], c[2], a, b))
    heapq.heapify(heap)

    def push(left: int, right: int) -> None:
        c = candidate(left, right)
        if c is not None:
            heapq.heappush(heap, (c[0], c[1], c[2], left, right))

    while heap:
        _, tu, cu, a, b = heapq.heappop(heap)
        if kind[a] < 0 or nxt[a] != b or kind[b] < 0:
            continue
        if kind[a] == 0:
            if order[head[a]] != tu or order[head[b]] != cu:
                continue
        elif order[head[a]] != cu or order[head[b]] != tu:
            continue
        pairs_t.append(tu)
        pairs_c.append(cu)
        gap_left = gap_right = -1
        for s in (a, b):
            head[s] += 1
            if head[s] >= end[s]:
                kind[s] = -1
                p, r = prev[s], nxt[s]
                if p >= 0:
                    nxt[p] = r
                if r >= 0:
                    prev[r] = p
                gap_left, gap_right = p, r
        a_alive, b_alive = kind[a] >= 0, kind[b] >= 0
        if a_alive:
            push(prev[a], a)
            push(a, nxt[a])
        if b_alive:
            push(prev[b], b)
            push(b, nxt[b])
        if not a_alive and not b_alive:
            push(gap_left, gap_right)
    match[np.asarray(pairs_t, np.int64)] = np.asarray(pairs_c, np.int64)
    return match


def ordered_nearest(x: np.ndarray, treated_order: np.ndarray, controls: np.ndarray, width: float,
                    used: np.ndarray) -> np.ndarray:
    """Treated units in ``treated_order`` each take the nearest unused control within ``width``
    (see ``_greedy.ordered_nearest``; ``used`` is updated in place)."""
    m = controls.shape[0]
    cx_a = x[controls]
    cx = cx_a.tolist()
    new_run = np.r_[True, cx_a[1:] != cx_a[:-1]] if m else np.zeros(0, bool)
    run_start = np.maximum.accumulate(np.where(new_run, np.arange(m), 0)).tolist()
    ctrl = controls.tolist()
    right = list(range(m + 1))  # right[k]: first unused slot >= k (m = none)
    left = list(range(m + 1))  # left[k+1]: last unused slot <= k (0 = none)
    for k in np.flatnonzero(used).tolist():
        right[k] = k + 1
        left[k + 1] = k

    def find(parent: list[int], i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    vs = x[treated_order].tolist()
    positions = np.searchsorted(cx_a, x[treated_order]).tolist()
    out = [-1] * len(vs)
    taken: list[int] = []
    for j, (v, pos) in enumerate(zip(vs, positions)):
        r = find(right, pos)
        lft = find(left, pos) - 1
        if lft >= 0:
            lft = find(right, run_start[lft])
        best = -1
        if r < m and cx[r] - v <= width:
            best = r
        if lft >= 0 and v - cx[lft] <= width:
            if best < 0:
                best = lft
            else:
                dl, dr = v - cx[lft], cx[r] - v
                if dl < dr or (dl == dr and ctrl[lft] < ctrl[r]):
                    best = lft
        if best >= 0:
            out[j] = ctrl[best]
            taken.append(best)
            right[best] = best + 1
            left[best + 1] = best
    used[np.asarray(taken, np.int64)] = True
    return np.asarray(out, np.int64)
