"""Benchmark: greedy caliper matching of 1M treated vs 1M controls, and propensity-score fitting.

Prints time, peak memory and the ratio against peers measured in the same run:
* matching: a scikit-learn ``NearestNeighbors`` greedy matcher (the usual Python approach: k nearest
  controls per treated, first unused one within the caliper, re-query when all k are used) and a
  plain pandas/numpy scan over the available controls (O(n^2)), both on a smaller n (stated);
* PS fit: statsmodels ``Logit`` (Newton) on the same data, coefficients compared.

Run: ``PYTHONPATH=src python bench/bench_matching.py [--n 1000000] [--peer-n 20000]``
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from follicle.causal import _greedy, fit_propensity, match, pooled_sd_logit


CPU: list[float] = []  # CPU seconds of the last timed call (the dev machine is shared: wall is noisy)


def timed(func, *args, **kwargs):
    """Result, wall seconds, peak MiB traced by tracemalloc (numpy buffers; not numba's own)."""
    tracemalloc.start()
    c0 = time.process_time()
    t0 = time.perf_counter()
    out = func(*args, **kwargs)
    secs = time.perf_counter() - t0
    CPU[:] = [time.process_time() - c0]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, secs, peak / 2**20


def sklearn_nn_match(ps, t, caliper, seed, k=10):
    """Greedy random-order matching with sklearn NearestNeighbors (peer)."""
    from sklearn.neighbors import NearestNeighbors

    x = logit(ps)
    width = caliper * pooled_sd_logit(ps, t)
    tpos = np.random.default_rng(seed).permutation(np.flatnonzero(t))
    cpos = np.flatnonzero(~t)
    nn = NearestNeighbors(n_neighbors=min(k, cpos.size)).fit(x[cpos, None])
    dist, ind = nn.kneighbors(x[tpos, None])
    used = np.zeros(cpos.size, bool)
    pairs = {}
    for row, i in enumerate(tpos):
        for d, j in zip(dist[row], ind[row]):
            if d > width:
                break
            if not used[j]:
                used[j] = True
                pairs[int(i)] = int(cpos[j])
                break
        else:  # all k nearest already used: scan the unused controls
            free = np.flatnonzero(~used)
            if free.size:
                dd = np.abs(x[cpos[free]] - x[i])
                j = free[np.argmin(dd)]
                if dd.min() <= width:
                    used[j] = True
                    pairs[int(i)] = int(cpos[j])
    return pairs


def pandas_scan_match(ps, t, caliper, seed):
    """Greedy random-order matching by scanning all available controls per treated (peer, O(n^2))."""
    df = pd.DataFrame({"x": logit(ps), "t": t})
    width = caliper * pooled_sd_logit(ps, t)
    controls = df[~df.t].copy()
    pairs = {}
    for i in np.random.default_rng(seed).permutation(np.flatnonzero(t)):
        if controls.empty:
            break
        d = (controls.x - df.x.iat[i]).abs()
        j = d.idxmin()
        if d[j] <= width:
            pairs[int(i)] = int(j)
            controls = controls.drop(index=j)
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000, help="treated = controls = n")
    ap.add_argument("--peer-n", type=int, default=20_000, help="n per arm for the slow peers")
    ap.add_argument("--ps-n", type=int, default=1_000_000, help="rows for the PS-fit benchmark")
    args = ap.parse_args()
    rng = np.random.default_rng(2024)

    print("warm-up (numba compile or cache load; used above PLAIN_MAX_UNITS units) ...")
    x3, t3 = np.array([0.2, 0.3, 0.4]), np.array([True, False, False])
    _greedy.closest_pairs(x3, t3, np.ones(3, bool), 1.0)
    _greedy.ordered_nearest(x3, np.array([0]), np.array([1, 2]), 1.0, np.zeros(2, bool))

    n = args.n
    t = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    ps = expit(np.r_[rng.normal(0.3, 1.0, n), rng.normal(-0.3, 1.0, n)])
    print(f"\n== matching {n:,} treated vs {n:,} controls, caliper 0.1 SD of logit PS ==")
    for order in ("random", "closest"):
        res, secs, peak = timed(match, ps, t, caliper=0.1, order=order, seed=1)
        print(f"follicle match order={order:8s} {secs:6.2f} s (cpu {CPU[0]:.2f} s)  peak traced {peak:7.1f} MiB  "
              f"pairs {res.n_pairs:,}  (target <= 5 s)")
    res, secs, peak = timed(match, ps, t, caliper=0.1, ratio=3, variable_ratio=True, order="closest")
    print(f"follicle match 1:3 variable closest {secs:6.2f} s (cpu {CPU[0]:.2f} s)  peak traced {peak:7.1f} MiB  pairs {res.n_pairs:,}")
    print(f"process max RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")

    m = args.peer_n
    sub = np.r_[np.arange(m), n + np.arange(m)]
    ps_s, t_s = ps[sub], t[sub]
    print(f"\n== peers on {m:,} treated vs {m:,} controls (random order, same caliper) ==")
    ours, s_ours, p_ours = timed(match, ps_s, t_s, caliper=0.1, order="random", seed=1)
    print(f"follicle              {s_ours:8.3f} s  peak traced {p_ours:6.1f} MiB  pairs {ours.n_pairs:,}")
    nn_pairs, s_nn, p_nn = timed(sklearn_nn_match, ps_s, t_s, 0.1, 1)
    print(f"sklearn NearestNbrs   {s_nn:8.3f} s  peak traced {p_nn:6.1f} MiB  pairs {len(nn_pairs):,}  "
          f"ratio {s_nn / s_ours:,.0f}x slower")
    m2 = min(m, 5000)
    sub2 = np.r_[np.arange(m2), n + np.arange(m2)]
    ours2, s_ours2, _ = timed(match, ps[sub2], t[sub2], caliper=0.1, order="random", seed=1)
    pd_pairs, s_pd, p_pd = timed(pandas_scan_match, ps[sub2], t[sub2], 0.1, 1)
    same = dict(zip(ours2.treated.tolist(), ours2.control.tolist())) == pd_pairs
    print(f"pandas scan (n={m2:,}) {s_pd:8.3f} s  peak traced {p_pd:6.1f} MiB  pairs {len(pd_pairs):,}  "
          f"ratio {s_pd / s_ours2:,.0f}x slower; identical pairs: {same}")

    k = args.ps_n
    print(f"\n== propensity model: {k:,} rows, 10 covariates ==")
    X = pd.DataFrame(rng.normal(size=(k, 6)), columns=[f"z{j}" for j in range(6)])
    for j in range(4):
        X[f"b{j}"] = (rng.random(k) < 0.2 + 0.1 * j).astype(float)
    beta = np.linspace(-0.5, 0.5, 10)
    tt = (rng.random(k) < expit(-0.5 + X.to_numpy() @ beta)).astype(int)
    model, s_f, p_f = timed(fit_propensity, X, tt)
    print(f"follicle fit_propensity  {s_f:6.2f} s  peak traced {p_f:7.1f} MiB  iterations {model.n_iter_}")
    import statsmodels.api as sm

    Xc = sm.add_constant(X)
    sm_res, s_sm, p_sm = timed(lambda: sm.Logit(tt, Xc).fit(disp=0, method="newton", tol=1e-10))
    diff = np.max(np.abs(np.r_[model.intercept_, model.coef_] - sm_res.params.to_numpy()))
    print(f"statsmodels Logit        {s_sm:6.2f} s  peak traced {p_sm:7.1f} MiB  ratio {s_sm / s_f:.1f}x; "
          f"max |coef diff| {diff:.1e}")


if __name__ == "__main__":
    main()
