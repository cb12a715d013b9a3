"""Greedy nearest-neighbour matching kernels on one dimension (compiled with numba when available).

Two orders, both without replacement and both O(n log n):

* ``closest_pairs``: repeatedly match the globally closest remaining (treated, control) pair,
  ties broken by (distance, treated index, control index). On a line the closest remaining pair is
  always between neighbouring groups of equal values ("sites"), so a heap over neighbouring sites
  replaces the O(n^2) list of all pairs.
* ``ordered_nearest``: treated units in a given (random) order each take the nearest available
  control; "nearest available" is found with two path-compressed union-find structures over the
  sorted controls.

Both return, per treated unit (position in the input arrays), the matched control position or -1.
The plain-Python bodies are kept (``.py_func``) so tests can run them without compilation.
"""

from __future__ import annotations

import numpy as np

try:  # numba is a declared dependency; the fallback keeps the package importable without it
    from numba import njit
except ImportError:  # pragma: no cover - exercised only where numba is missing

    def njit(*args, **kwargs):  # type: ignore[no-redef]
        def wrap(func):
            func.py_func = func
            return func

        return wrap


@njit(cache=True)
def _heap_less(d, ti, ci, i, j):
    if d[i] != d[j]:
        return d[i] < d[j]
    if ti[i] != ti[j]:
        return ti[i] < ti[j]
    return ci[i] < ci[j]


@njit(cache=True)
def _heap_swap(d, ti, ci, sa, sb, i, j):
    d[i], d[j] = d[j], d[i]
    ti[i], ti[j] = ti[j], ti[i]
    ci[i], ci[j] = ci[j], ci[i]
    sa[i], sa[j] = sa[j], sa[i]
    sb[i], sb[j] = sb[j], sb[i]


@njit(cache=True)
def _heap_push(d, ti, ci, sa, sb, size, dv, tv, cv, av, bv):
    i = size
    d[i] = dv
    ti[i] = tv
    ci[i] = cv
    sa[i] = av
    sb[i] = bv
    while i > 0:
        parent = (i - 1) // 2
        if _heap_less(d, ti, ci, i, parent):
            _heap_swap(d, ti, ci, sa, sb, i, parent)
            i = parent
        else:
            break
    return size + 1


@njit(cache=True)
def _heap_pop(d, ti, ci, sa, sb, size):
    """Move the minimum to position ``size - 1`` and restore the heap on the rest."""
    last = size - 1
    _heap_swap(d, ti, ci, sa, sb, 0, last)
    i = 0
    while True:
        left = 2 * i + 1
        right = left + 1
        small = i
        if left < last and _heap_less(d, ti, ci, left, small):
            small = left
        if right < last and _heap_less(d, ti, ci, right, small):
            small = right
        if small == i:
            break
        _heap_swap(d, ti, ci, sa, sb, i, small)
        i = small
    return last


# Site records, one row of ``S`` per site (one cache line, the kernel is memory-bound):
_KIND, _HEAD, _END, _PREV, _NEXT, _UNIT = 0, 1, 2, 3, 4, 5  # _UNIT: unit at the head; kind -1 = gone


@njit(cache=True)
def _candidate(left, right, S, value, width):
    """(distance, treated, control) of the pair between neighbouring sites, distance -1 if none."""
    if left < 0 or right < 0:
        return -1.0, -1, -1
    kl = S[left, _KIND]
    kr = S[right, _KIND]
    if kl < 0 or kr < 0 or kl == kr:
        return -1.0, -1, -1
    dist = value[right] - value[left]
    if dist > width:
        return -1.0, -1, -1
    if kl == 0:  # left site holds treated units
        return dist, S[left, _UNIT], S[right, _UNIT]
    return dist, S[right, _UNIT], S[left, _UNIT]


@njit(cache=True)
def _push_sites(left, right, S, value, width, d, ti, ci, sa, sb, size):
    """Push the candidate pair between neighbouring sites ``left`` < ``right`` if it can match."""
    dist, tv, cv = _candidate(left, right, S, value, width)
    if dist < 0:
        return size
    return _heap_push(d, ti, ci, sa, sb, size, dist, tv, cv, left, right)


@njit(cache=True)
def closest_pairs(x, treated, active, width):
    """Closest-pair-first greedy 1:1 matching of active units.

    Parameters
    ----------
    x : float64 array, matching scale (logit PS or PS) for every unit.
    treated : bool array, True for treated units.
    active : bool array, units taking part in this pass.
    width : float, caliper width on the scale of ``x`` (``inf`` for none).

    Returns
    -------
    int64 array of length ``len(x)``: for each treated unit the matched control, else -1.
    """
    n = x.shape[0]
    match = np.full(n, -1, np.int64)
    idx = np.nonzero(active)[0]
    m = idx.shape[0]
    if m == 0:
        return match
    # sort by (value, control-after-treated, index): a stable sort by value keeps index order
    # (idx is increasing); runs of equal values are then partitioned treated-first, stably
    vals = np.empty(m, np.float64)
    for k in range(m):
        vals[k] = x[idx[k]]
    perm = np.argsort(vals, kind="mergesort")
    order = idx[perm]
    sv = vals[perm]
    k = 0
    while k < m:
        j = k + 1
        while j < m and sv[j] == sv[k]:
            j += 1
        if j - k > 1:
            run = order[k:j].copy()
            w = k
            for r in range(run.shape[0]):
                if treated[run[r]]:
                    order[w] = run[r]
                    w += 1
            for r in range(run.shape[0]):
                if not treated[run[r]]:
                    order[w] = run[r]
                    w += 1
        k = j
    # sites: runs of equal value; equal values match first (distance 0: k-th smallest treated
    # index with k-th smallest control), then each site holds one kind only, kept as a range
    n_sites = 0
    for k in range(m):
        if k == 0 or sv[k] != sv[k - 1]:
            n_sites += 1
    S = np.empty((n_sites, 8), np.int64)
    value = np.empty(n_sites, np.float64)
    s = -1
    lo = 0
    n_t = 0
    for k in range(m + 1):
        if k == m or (k > 0 and sv[k] != sv[k - 1]):
            s += 1
            hi = k
            value[s] = sv[lo]
            split = lo
            while split < hi and treated[order[split]]:
                split += 1
            nt = split - lo
            nc = hi - split
            n_t += nt
            q = min(nt, nc)
            for j in range(q):
                match[order[lo + j]] = order[split + j]
            if nt > q:
                S[s, _KIND] = 0
                S[s, _HEAD] = lo + q
                S[s, _END] = split
            elif nc > q:
                S[s, _KIND] = 1
                S[s, _HEAD] = split + q
                S[s, _END] = hi
            else:
                S[s, _KIND] = -1
                S[s, _HEAD] = hi
                S[s, _END] = hi
            S[s, _UNIT] = order[S[s, _HEAD]] if S[s, _KIND] >= 0 else -1
            lo = k
    # doubly linked list of non-empty sites
    last = -1
    for s in range(n_sites):
        S[s, _PREV] = -1
        S[s, _NEXT] = -1
        if S[s, _KIND] >= 0:
            S[s, _PREV] = last
            if last >= 0:
                S[last, _NEXT] = s
            last = s
    cap = 6 * min(n_t, m - n_t) + 9
    hd = np.empty(cap, np.float64)
    ht = np.empty(cap, np.int64)
    hc = np.empty(cap, np.int64)
    ha = np.empty(cap, np.int64)
    hb = np.empty(cap, np.int64)
    # initial candidates (neighbouring sites) sorted once by (distance, treated, control); the
    # candidates that appear later, as sites empty, go to a heap; the loop merges the two streams
    sd_ = np.empty(n_sites, np.float64)
    st_ = np.empty(n_sites, np.int64)
    sc_ = np.empty(n_sites, np.int64)
    sa_ = np.empty(n_sites, np.int64)
    ni = 0
    for s in range(n_sites):
        if S[s, _KIND] >= 0:
            dist, tv, cv = _candidate(s, S[s, _NEXT], S, value, width)
            if dist >= 0:
                sd_[ni] = dist
                st_[ni] = tv
                sc_[ni] = cv
                sa_[ni] = s
                ni += 1
    srt = np.argsort(sd_[:ni], kind="mergesort")
    k = 0
    while k < ni:  # ties in distance: order by (treated, control)
        j = k + 1
        while j < ni and sd_[srt[j]] == sd_[srt[k]]:
            j += 1
        for u in range(k + 1, j):  # insertion sort of a (short) run of equal distances
            v = srt[u]
            w = u - 1
            while w >= k and (st_[srt[w]] > st_[v] or (st_[srt[w]] == st_[v] and sc_[srt[w]] > sc_[v])):
                srt[w + 1] = srt[w]
                w -= 1
            srt[w + 1] = v
        k = j
    ptr = 0
    size = 0
    while ptr < ni or size > 0:
        take_sorted = size == 0
        if not take_sorted:
            q = srt[ptr] if ptr < ni else -1
            if q < 0:
                take_sorted = False
            elif sd_[q] != hd[0]:
                take_sorted = sd_[q] < hd[0]
            elif st_[q] != ht[0]:
                take_sorted = st_[q] < ht[0]
            else:
                take_sorted = sc_[q] < hc[0]
        if take_sorted:
            q = srt[ptr]
            ptr += 1
            tu = st_[q]
            cu = sc_[q]
            a = sa_[q]
            b = -2  # the right neighbour at push time: checked through the links below
        else:
            size = _heap_pop(hd, ht, hc, ha, hb, size)
            tu = ht[size]
            cu = hc[size]
            a = ha[size]
            b = hb[size]
        if S[a, _KIND] < 0:
            continue
        nb = S[a, _NEXT]
        if nb < 0 or (b != -2 and nb != b) or S[nb, _KIND] < 0:
            continue
        b = nb
        if S[a, _KIND] == 0:
            if S[a, _UNIT] != tu or S[b, _UNIT] != cu:
                continue
        elif S[a, _UNIT] != cu or S[b, _UNIT] != tu:
            continue
        match[tu] = cu
        gap_left = -1
        gap_right = -1
        for s in (a, b):
            S[s, _HEAD] += 1
            if S[s, _HEAD] >= S[s, _END]:
                S[s, _KIND] = -1
                p = S[s, _PREV]
                r = S[s, _NEXT]
                if p >= 0:
                    S[p, _NEXT] = r
                if r >= 0:
                    S[r, _PREV] = p
                gap_left = p
                gap_right = r
            else:
                S[s, _UNIT] = order[S[s, _HEAD]]
        a_alive = S[a, _KIND] >= 0
        b_alive = S[b, _KIND] >= 0
        if a_alive:
            size = _push_sites(S[a, _PREV], a, S, value, width, hd, ht, hc, ha, hb, size)
            size = _push_sites(a, S[a, _NEXT], S, value, width, hd, ht, hc, ha, hb, size)
        if b_alive:
            size = _push_sites(S[b, _PREV], b, S, value, width, hd, ht, hc, ha, hb, size)
            size = _push_sites(b, S[b, _NEXT], S, value, width, hd, ht, hc, ha, hb, size)
        if not a_alive and not b_alive:
            size = _push_sites(gap_left, gap_right, S, value, width, hd, ht, hc, ha, hb, size)
    return match


@njit(cache=True)
def _find(parent, i):
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:  # path compression
        nxt = parent[i]
        parent[i] = root
        i = nxt
    return root


@njit(cache=True)
def ordered_nearest(x, treated_order, controls, width, used):
    """Treated units in ``treated_order`` each take the nearest unused control within ``width``.

    Parameters
    ----------
    x : float64 array, matching scale for every unit.
    treated_order : int64 array, treated positions in processing order.
    controls : int64 array, control positions sorted by (x, position).
    width : float, caliper width (``inf`` for none).
    used : bool array over ``controls`` (updated in place).

    Returns
    -------
    int64 array aligned with ``treated_order``: matched control position or -1.
    Among controls at equal distance the one with the smallest position is taken, so the result
    equals scanning all controls for the minimum of (distance, position).
    """
    m = controls.shape[0]
    cx = np.empty(m, np.float64)
    run_start = np.empty(m, np.int64)  # first slot holding the same value
    for k in range(m):
        cx[k] = x[controls[k]]
        run_start[k] = run_start[k - 1] if k > 0 and cx[k] == cx[k - 1] else k
    # right[k]: first unused slot >= k (m = none); left[k+1]: last unused slot <= k (0 = none)
    right = np.arange(m + 1)
    left = np.arange(m + 1)
    for k in range(m):
        if used[k]:
            right[k] = k + 1
            left[k + 1] = k
    out = np.full(treated_order.shape[0], -1, np.int64)
    for j in range(treated_order.shape[0]):
        v = x[treated_order[j]]
        pos = np.searchsorted(cx, v)
        r = _find(right, pos)
        lft = _find(left, pos) - 1  # slots 1..m map to controls 0..m-1
        if lft >= 0:  # among equal values take the smallest position still unused
            lft = _find(right, run_start[lft])
        best = -1
        if r < m and cx[r] - v <= width:
            best = r
        if lft >= 0 and v - cx[lft] <= width:
            if best < 0:
                best = lft
            else:
                dl = v - cx[lft]
                dr = cx[r] - v
                if dl < dr or (dl == dr and controls[lft] < controls[r]):
                    best = lft
        if best >= 0:
            out[j] = controls[best]
            used[best] = True
            right[best] = best + 1
            left[best + 1] = best
    return out
