"""Benchmark: Follicle's random-effects pooling vs statsmodels' combine_effects (DerSimonian-Laird).

Prints wall time per fit, peak Python memory (tracemalloc) and the ratio, for k studies,
and checks both give the same DL estimate (when the DL tau^2 is positive, where statsmodels
does not truncate). Run: PYTHONPATH=src python bench/bench_meta.py
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
from statsmodels.stats.meta_analysis import combine_effects

from follicle.synthesis.effect_sizes import generic_effects
from follicle.synthesis.pooling import meta_analysis


def timed(fn, reps: int) -> tuple[float, float]:
    """Mean seconds per call (untraced), then peak traced MiB of one call."""
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    dt = (time.perf_counter() - t0) / reps
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return dt, peak


def main() -> None:
    rng = np.random.default_rng(1)
    print(f"{'k':>6} {'method':>6} {'follicle ms':>12} {'statsmodels ms':>15} {'ratio':>7} {'peak MiB (f/s)':>16}")
    for k in (10, 100, 1000):
        vi = rng.uniform(0.01, 0.3, k)
        yi = rng.normal(0.2, 0.3, k) + rng.normal(0, np.sqrt(vi))
        es = generic_effects(yi, np.sqrt(vi))
        reps = 200 if k <= 100 else 10
        for method in ("DL", "REML"):
            f_t, f_m = timed(lambda: meta_analysis(es, method=method), reps)
            sm_method = "dl" if method == "DL" else "iterated"  # statsmodels: DL or Paule-Mandel iterated
            s_t, s_m = timed(lambda: combine_effects(yi, vi, method_re=sm_method), reps)
            print(f"{k:>6} {method:>6} {1e3 * f_t:>12.2f} {1e3 * s_t:>15.2f} {f_t / s_t:>7.2f} {f_m:>7.2f}/{s_m:<7.2f}")
        ours = meta_analysis(es, method="DL")
        sm = combine_effects(yi, vi, method_re="dl")
        assert abs(ours.estimate - sm.mean_effect_re) < 1e-10, (ours.estimate, sm.mean_effect_re)
    print("(follicle's fit includes the Q-profile CI for tau^2, I^2 both ways and the prediction interval;"
          " statsmodels' REML column is its iterated Paule-Mandel estimator)")


if __name__ == "__main__":
    main()
