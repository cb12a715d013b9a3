"""Benchmark: a user's first ``follicle analyze match`` after install against the second (issue #21).

A fresh install has no numba cache; the matching kernels below ``PLAIN_MAX_UNITS`` units run in plain
Python, so the first run compiles nothing. This script deletes the numba cache of the kernels (as a
fresh install), then times whole ``follicle analyze match`` processes, first and second, and a plain
Python peer process (pandas + scikit-learn logistic PS + greedy matching with ``bisect``) on the
same CSV, in the same run. Prints wall seconds, peak RSS of each process, and the ratios.

Run: ``python bench/bench_first_match.py [--n 20000]`` (``follicle`` from the same virtualenv).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import follicle.causal

PEER = r"""
import bisect, sys
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
d = pd.read_csv(sys.argv[1]); covs = ["age", "female", "severity", "prior"]
ps = LogisticRegression(penalty=None, max_iter=1000).fit(d[covs], d["treated"]).predict_proba(d[covs])[:, 1]
lg = np.log(ps / (1 - ps)); t = d["treated"].to_numpy() == 1
width = 0.1 * np.sqrt((lg[t].var(ddof=1) + lg[~t].var(ddof=1)) / 2)
cx = sorted(zip(lg[~t].tolist(), np.flatnonzero(~t).tolist()))
vals = [v for v, _ in cx]
pairs = 0
for i in np.random.default_rng(0).permutation(np.flatnonzero(t)).tolist():
    k = bisect.bisect_left(vals, lg[i]); best = None
    for j in (k - 1, k):
        if 0 <= j < len(vals) and abs(vals[j] - lg[i]) <= width and (best is None or abs(vals[j] - lg[i]) < abs(vals[best] - lg[i])):
            best = j
    if best is not None:
        del vals[best]; del cx[best]; pairs += 1
print(pairs)
"""


def world(n: int, path: Path) -> None:
    rng = np.random.default_rng(21)
    age = rng.normal(40, 12, n).round()
    female = (rng.random(n) < 0.6).astype(int)
    severity = rng.normal(0, 1, n).round(2)
    prior = (rng.random(n) < 0.3).astype(int)
    p = 1 / (1 + np.exp(-(-0.5 + 0.02 * (age - 40) + 0.4 * severity + 0.3 * prior)))
    pd.DataFrame({"treated": (rng.random(n) < p).astype(int), "age": age, "female": female,
                  "severity": severity, "prior": prior}).to_csv(path, index=False)


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    secs = time.perf_counter() - t0
    return secs, max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000, help="patients in the CSV")
    args = ap.parse_args()
    cache = Path(follicle.causal.__file__).parent / "__pycache__"
    removed = [f.unlink() or f.name for f in cache.glob("_greedy*.nb*")] if cache.is_dir() else []
    print(f"numba cache files of the kernels removed (as a fresh install): {len(removed)}")
    follicle_bin = str(Path(sys.executable).with_name("follicle"))
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "patients.csv"
        world(args.n, csv)
        cmd = [follicle_bin, "analyze", "match", str(csv), "--treatment", "treated",
               "--covariates", "age,female,severity,prior", "--json"]
        first, rss1 = timed(cmd)
        second, rss2 = timed(cmd)
        peer, rss_p = timed([sys.executable, "-c", PEER, str(csv)])
    print(f"workload: {args.n:,} patients, 4 covariates, logistic PS, 1:1 random order, caliper 0.1 SD logit")
    print(f"follicle analyze match, first run   {first:6.2f} s  max RSS {rss1:5.0f} MiB")
    print(f"follicle analyze match, second run  {second:6.2f} s  (first / second = {first / second:.2f})")
    print(f"plain Python peer process          {peer:6.2f} s  (follicle first run / peer = {first / peer:.2f})")


if __name__ == "__main__":
    main()
