"""Benchmark: Follicle's Cox, Kaplan-Meier and log-rank on 1M rows against lifelines, same run.

Run: ``PYTHONPATH=src python bench/bench_survival.py [--n 1000000] [--skip-lifelines]``.
Prints wall time, CPU time (process), peak memory and the lifelines/Follicle ratio. Times are
from untraced runs (best of several for Follicle, one for lifelines); peak memory is from a
separate run under tracemalloc (which numpy reports its buffers to). tracemalloc slows pandas-heavy
code a lot, so lifelines' memory is only traced with --lifelines-memory. The machine's load
average is printed too: on a shared machine wall time overstates the cost; CPU time is steadier.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from follicle.survival import compare_survival, fit_outcome_model, kaplan_meier_by_group, logrank_test


def measure(fn: Callable[[], Any], repeat: int = 1, trace: bool = True) -> tuple[Any, float, float, float]:
    """(result, best wall s, best CPU s, peak MB) over *repeat* untraced runs and one traced run."""
    best_wall = best_cpu = float("inf")
    result = None
    for _ in range(repeat):
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        w1, c1 = time.perf_counter(), time.process_time()
        best_wall, best_cpu = min(best_wall, w1 - w0), min(best_cpu, c1 - c0)
    peak = float("nan")
    if trace:
        gc.collect()
        tracemalloc.start()
        fn()
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return result, best_wall, best_cpu, peak


def make_data(n: int, seed: int = 1) -> pd.DataFrame:
    """Binary treatment, true log HR -0.4, exponential event and censoring times (about 60% events)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, n)
    t = rng.exponential(1 / np.exp(-0.4 * x))
    c = rng.exponential(2.0, n)
    return pd.DataFrame({"t": np.minimum(t, c), "e": (t <= c).astype(np.int64), "x": x, "pair": np.arange(n) // 2})


def row(name: str, wall: float, cpu: float, peak: float, ref: tuple[float, float, float] | None = None) -> str:
    ratio = f"{ref[0] / wall:6.1f}x wall, {ref[1] / cpu:6.1f}x cpu" if ref else ""
    return f"| {name:<62} | {wall:8.3f} | {cpu:8.3f} | {peak:8.1f} | {ratio} |"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--skip-lifelines", action="store_true")
    ap.add_argument("--lifelines-memory", action="store_true", help="also trace lifelines' memory (slow)")
    args = ap.parse_args()
    print(f"n = {args.n:,}; load average before: {os.getloadavg()}")
    print("| step | wall s | cpu s | peak MB | lifelines / follicle |")
    print("|---|---|---|---|---|")
    base = make_data(args.n)
    datasets = {"continuous times": base, "integer-day times": base.assign(t=np.ceil(base["t"] * 365.0))}
    notes = []
    for label, d in datasets.items():
        ours, w, c, m = measure(lambda: fit_outcome_model(d["t"], d["e"], d["x"], ties="efron", robust_se=False), 3)
        if not args.skip_lifelines:
            from lifelines import CoxPHFitter

            ll, lw, lc, lm = measure(lambda: CoxPHFitter().fit(d[["t", "e", "x"]], "t", "e"),
                                     trace=args.lifelines_memory)
            print(row(f"lifelines CoxPHFitter Efron, {label}", lw, lc, lm))
            print(row(f"follicle Cox Efron, {label}", w, c, m, (lw, lc)))
            diff = abs(ours.coef[0] - ll.params_["x"])
            notes.append(f"{label}: coef follicle {ours.coef[0]:.10f}, lifelines {ll.params_['x']:.10f}, "
                         f"abs diff {diff:.2e}, rel diff {diff / abs(ours.coef[0]):.2e}")
        else:
            print(row(f"follicle Cox Efron, {label}", w, c, m))
    d = datasets["continuous times"]
    _, w, c, m = measure(lambda: fit_outcome_model(d["t"], d["e"], d["x"], robust_se=True, pair_id=d["pair"]), 2)
    print(row("follicle Cox Efron, robust SE clustered on pair", w, c, m))
    _, w, c, m = measure(lambda: fit_outcome_model(d["t"], d["e"], d["x"], robust_se=True, stratify_by_pair=True,
                                                   pair_id=d["pair"]), 1)
    print(row("follicle Cox Efron, stratified by pair + robust", w, c, m))
    for label, d in datasets.items():
        _, w, c, m = measure(lambda: compare_survival(d["t"], d["e"], d["x"]), 3)
        km_ref = None
        if not args.skip_lifelines:
            from lifelines import KaplanMeierFitter
            from lifelines.statistics import logrank_test as ll_logrank

            def lifelines_km_lr() -> Any:
                a, b = d[d["x"] == 1], d[d["x"] == 0]
                KaplanMeierFitter().fit(a["t"], a["e"])
                KaplanMeierFitter().fit(b["t"], b["e"])
                return ll_logrank(a["t"], b["t"], a["e"], b["e"])

            _, lw, lc, lm = measure(lifelines_km_lr, trace=args.lifelines_memory)
            km_ref = (lw, lc)
            print(row(f"lifelines KM x2 + logrank_test, {label}", lw, lc, lm))
        print(row(f"follicle compare_survival (KM + log-rank), {label}", w, c, m, km_ref))
        _, w, c, m = measure(
            lambda: (kaplan_meier_by_group(d["t"], d["e"], d["x"]), logrank_test(d["t"], d["e"], d["x"])), 3)
        print(row(f"follicle kaplan_meier_by_group + logrank_test, {label}", w, c, m, km_ref))
    for note in notes:
        print(note)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
