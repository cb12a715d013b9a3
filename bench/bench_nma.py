"""Benchmark: Follicle's network meta-analysis vs R metafor's rma.mv on the same contrasts.

For generated networks (two- to four-arm studies) it times Follicle's fit of both models
(``netmeta``) and the full analysis (``analyse``: decomposition, netsplit, P-scores, SUCRA with 10,000
resamples, league tables, for both models), with peak Python memory (tracemalloc), against metafor's
contrast-based GLS fit of the common-effect model plus one random-effects fit for a given tau^2
(rma.mv, timed inside R, data loading excluded), and checks the common-effect estimates agree.
Run: PYTHONPATH=src:tests python bench/bench_nma.py   (needs Rscript with metafor)
"""

from __future__ import annotations

import shutil
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "synthesis" / "nma"))
from nma_networks import binary_network  # noqa: E402
from rbridge import run_r  # noqa: E402

from follicle.synthesis.nma import analyse, netmeta, pairwise  # noqa: E402

R_CODE = r"""
library(metafor)
trts <- sort(unique(c(d$t1, d$t2)), method="radix")
X <- matrix(0, nrow(d), length(trts)); colnames(X) <- trts
for (i in seq_len(nrow(d))) { X[i, d$t1[i]] <- 1; X[i, d$t2[i]] <- -1 }
X <- X[, -1, drop=FALSE]
blocks <- lapply(split(seq_len(nrow(d)), d$study), function(ix) { m <- matrix(d$cv[ix[1]], length(ix), length(ix))
  diag(m) <- d$vi[ix]; m })
V <- bldiag(blocks[unique(d$study)])
V0 <- outer(d$study, d$study, "==") * 0.5; diag(V0) <- 1
reps <- 5
t <- system.time(for (r in 1:reps) { f <- rma.mv(d$yi, V, mods = ~ X - 1); g <- rma.mv(d$yi, V + 0.1 * V0, mods = ~ X - 1) })
out("secs", t[["elapsed"]] / reps)
out("beta", f$beta)
"""


def basic_contrasts(arms: pd.DataFrame) -> pd.DataFrame:
    """Log ORs of each arm vs its study's first arm, variances and the shared-arm covariance."""
    rows = []
    for study, g in arms.groupby("study", sort=False):
        b = g.iloc[0]
        cv = 1 / b.events + 1 / (b.n - b.events)
        for _, a in g.iloc[1:].iterrows():
            yi = np.log(a.events / (a.n - a.events)) - np.log(b.events / (b.n - b.events))
            vi = 1 / a.events + 1 / (a.n - a.events) + cv
            rows.append({"study": study, "t1": a.treatment, "t2": b.treatment, "yi": yi, "vi": vi, "cv": cv})
    return pd.DataFrame(rows)


def timed(fn, reps: int) -> tuple[float, float]:
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
    rscript = shutil.which("Rscript")
    print(f"{'trts':>5} {'studies':>8} {'rows':>5} {'fit ms':>8} {'analyse ms':>11} {'metafor ms':>11} "
          f"{'fit/metafor':>12} {'peak MiB fit/analyse':>21}")
    for n_trt, k in ((10, 40), (20, 120), (30, 250)):
        arms = binary_network(3, n_trt=n_trt, k=k)
        c = pairwise(arms, "OR")
        fit_t, fit_m = timed(lambda: netmeta(c), 5)
        res = netmeta(c)
        an_t, an_m = timed(lambda: analyse(res, better="higher"), 2)
        r_t = float("nan")
        if rscript:
            ref = run_r(rscript, R_CODE, {"d": basic_contrasts(arms)})
            r_t = ref["secs"][0]
            assert np.allclose(res.common.te[1:, 0], ref["beta"], rtol=1e-8), "estimates differ from metafor"
        print(f"{n_trt:>5} {k:>8} {len(c.frame):>5} {1e3 * fit_t:>8.1f} {1e3 * an_t:>11.1f} {1e3 * r_t:>11.1f} "
              f"{fit_t / r_t:>12.2f} {fit_m:>10.1f}/{an_m:<10.1f}")


if __name__ == "__main__":
    main()
