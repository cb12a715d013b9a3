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


@njit(cache=True)
def _candidate(left, right, kind, value, head, end, order, width):
    """(distance, treated, control) of the pair between neighbouring sites, distance -1 if none."""
    if left < 0 or right < 0 or kind[left] == kind[right]:
        return -1.0, -1, -1
    dist = value[right] - value[left]
    if dist > width or head[left] >= end[left] or head[right] >= end[right]:
        return -1.0, -1, -1
    a = order[head[left]]
    b = order[head[right]]
    if kind[left] == 0:  # left site holds treated units
        return dist, a, b
    return dist, b, a


@njit(cache=True)
def _push_sites(left, right, kind, value, head, end, order, width, d, ti, ci, sa, sb, size):
    """Push the candidate pair between neighbouring sites ``left`` < ``right`` if it can match."""
    dist, tv, cv = _candidate(left, right, kind, value, head, end, order, width)
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
    order = idx[np.argsort(vals, kind="mergesort")]
    k = 0
    while k < m:
        j = k + 1
        while j < m and x[order[j]] == x[order[k]]:
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
    # sites: runs of equal value, split in a treated part and a control part
    n_sites = 0
    site_first = np.empty(m + 1, np.int64)
    for k in range(m):
        if k == 0 or x[order[k]] != x[order[k - 1]]:
            site_first[n_sites] = k
            n_sites += 1
    site_first[n_sites] = m
    # after the zero-distance phase each site keeps only one kind: represent it as a range
    kind = np.empty(n_sites, np.int64)  # 0 treated, 1 control, -1 empty
    value = np.empty(n_sites, np.float64)
    head = np.empty(n_sites, np.int64)
    end = np.empty(n_sites, np.int64)
    for s in range(n_sites):
        lo = site_first[s]
        hi = site_first[s + 1]
        value[s] = x[order[lo]]
        split = lo
        while split < hi and treated[order[split]]:
            split += 1
        nt = split - lo
        nc = hi - split
        k = min(nt, nc)
        for j in range(k):  # distance 0: k-th smallest treated index with k-th smallest control
            match[order[lo + j]] = order[split + j]
        if nt > k:
            kind[s] = 0
            head[s] = lo + k
            end[s] = split
        elif nc > k:
            kind[s] = 1
            head[s] = split + k
            end[s] = hi
        else:
            kind[s] = -1
            head[s] = hi
            end[s] = hi
    # linked list of non-empty sites
    prev = np.full(n_sites, -1, np.int64)
    nxt = np.full(n_sites, -1, np.int64)
    alive = np.zeros(n_sites, np.bool_)
    last = -1
    for s in range(n_sites):
        if kind[s] >= 0:
            alive[s] = True
            prev[s] = last
            if last >= 0:
                nxt[last] = s
            last = s
    n_t = 0
    for k in range(m):
        if treated[order[k]]:
            n_t += 1
    cap = n_sites + 6 * min(n_t, m - n_t) + 9
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
    sb_ = np.empty(n_sites, np.int64)
    ni = 0
    for s in range(n_sites):
        if alive[s]:
            dist, tv, cv = _candidate(s, nxt[s], kind, value, head, end, order, width)
            if dist >= 0:
                sd_[ni] = dist
                st_[ni] = tv
                sc_[ni] = cv
                sa_[ni] = s
                sb_[ni] = nxt[s]
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
    top = cap - 1  # the chosen candidate is copied to this slot of the heap arrays
    while ptr < ni or size > 0:
        take_sorted = size == 0
        if not take_sorted and ptr < ni:
            q = srt[ptr]
            if sd_[q] != hd[0]:
                take_sorted = sd_[q] < hd[0]
            elif st_[q] != ht[0]:
                take_sorted = st_[q] < ht[0]
            else:
                take_sorted = sc_[q] < hc[0]
        if take_sorted:
            q = srt[ptr]
            ptr += 1
            hd[top] = sd_[q]
            ht[top] = st_[q]
            hc[top] = sc_[q]
            ha[top] = sa_[q]
            hb[top] = sb_[q]
        else:
            size = _heap_pop(hd, ht, hc, ha, hb, size)
            hd[top] = hd[size]
            ht[top] = ht[size]
            hc[top] = hc[size]
            ha[top] = ha[size]
            hb[top] = hb[size]
        a = ha[top]
        b = hb[top]
        if not (alive[a] and alive[b] and nxt[a] == b):
            continue
        t_site = a if kind[a] == 0 else b
        c_site = b if kind[a] == 0 else a
        if order[head[t_site]] != ht[top] or order[head[c_site]] != hc[top]:
            continue
        match[ht[top]] = hc[top]
        head[a] += 1
        head[b] += 1
        gap_left = -1
        gap_right = -1
        for s in (a, b):
            if head[s] >= end[s]:
                alive[s] = False
                p = prev[s]
                q = nxt[s]
                if p >= 0:
                    nxt[p] = q
                if q >= 0:
                    prev[q] = p
                gap_left = p
                gap_right = q
        if alive[a]:
            size = _push_sites(prev[a], a, kind, value, head, end, order, width, hd, ht, hc, ha, hb, size)
            size = _push_sites(a, nxt[a], kind, value, head, end, order, width, hd, ht, hc, ha, hb, size)
        if alive[b]:
            size = _push_sites(prev[b], b, kind, value, head, end, order, width, hd, ht, hc, ha, hb, size)
            size = _push_sites(b, nxt[b], kind, value, head, end, order, width, hd, ht, hc, ha, hb, size)
        if not alive[a] and not alive[b]:
            size = _push_sites(gap_left, gap_right, kind, value, head, end, order, width,
                               hd, ht, hc, ha, hb, size)
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
