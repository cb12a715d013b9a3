"""Benchmark: a Cox model with five covariates in a fresh process, Follicle vs lifelines, same run.

bench_survival.py times Cox with one binary covariate (treatment), where Follicle's Newton step
costs a few operations per event. A model with covariates is the general case: this script fits
Efron Cox on 2 binary + 3 continuous covariates (true log HRs -0.4, 0.3, 0.2, -0.1, 0.05,
continuous times, ~60% events) in child processes, so each time includes interpreter start and
imports, as a user's ``follicle analyze survival`` would. It prints the whole-process and fit-only
wall seconds, the coefficient difference to lifelines and the ratio, all from the same run.

Run: ``python bench/bench_cox_covariates.py [--n 1000000] [--lifelines-n 200000]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, pandas as pd
which, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(5)
X = pd.DataFrame({"treat": rng.integers(0, 2, n), "female": rng.integers(0, 2, n), "age": rng.normal(0, 1, n),
                  "score": rng.normal(0, 1, n), "bmi": rng.normal(0, 1, n)}).astype(float)
lp = X.to_numpy() @ np.array([-0.4, 0.3, 0.2, -0.1, 0.05])
t = rng.exponential(1 / np.exp(lp)); c = rng.exponential(2.0, n)
time_, event = np.minimum(t, c), (t <= c).astype(np.int64)
if which == "follicle":
    from follicle.survival import CoxPH
    t1 = time.perf_counter()
    coef = CoxPH(ties="efron").fit(X, time_, event).coef_
else:
    from lifelines import CoxPHFitter
    t1 = time.perf_counter()
    coef = CoxPHFitter().fit(X.assign(T=time_, E=event), "T", "E").params_.to_numpy()
fit = time.perf_counter() - t1
print(json.dumps({"fit_s": fit, "coef": [float(v) for v in coef]}))
"""


def child(which: str, n: int) -> dict:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, which, str(n)], check=True, capture_output=True, text=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return res | {"process_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--lifelines-n", type=int, default=200_000, help="rows for the lifelines comparison")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} (shared 2-core machine); Efron ties, 5 covariates, continuous times")
    for n in sorted({args.lifelines_n, args.n}):
        fol = child("follicle", n)
        print(f"n={n:>9,} follicle: process {fol['process_s']:6.2f} s, fit {fol['fit_s']:6.2f} s")
        if n == args.lifelines_n:
            ll = child("lifelines", n)
            diff = max(abs(a - b) for a, b in zip(fol["coef"], ll["coef"]))
            print(f"n={n:>9,} lifelines: process {ll['process_s']:6.2f} s, fit {ll['fit_s']:6.2f} s; "
                  f"fit ratio {ll['fit_s'] / fol['fit_s']:.1f}x, process ratio {ll['process_s'] / fol['process_s']:.1f}x; "
                  f"max |coef diff| {diff:.1e}")


if __name__ == "__main__":
    main()
