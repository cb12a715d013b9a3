"""Benchmark the synthetic world: wall time and peak memory of `follicle synth` at several sizes.

Each size runs in a fresh subprocess (so peak RSS is that run's own), timing the steps:
simulate -> CDM tables (Arrow) -> DuckDB write. Prints a table with the time per 100k persons,
so the scaling ratio (time(1M) / time(100k), ideal 10) is visible. Usage::

    PYTHONPATH=src python bench/bench_synth.py [--sizes 100000 1000000] [--truth]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys, time
from follicle.synth.world import simulate
from follicle.cdm.write import write_cdm
n, db, truth = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
t0 = time.perf_counter()
w = simulate(persons=n, seed=1)
t1 = time.perf_counter()
tables = w.to_cdm()
t2 = time.perf_counter()
rows = write_cdm(tables, db, overwrite=True)
t3 = time.perf_counter()
tt = None
if truth:
    w.truth(); tt = time.perf_counter() - t3
print(json.dumps({"persons": n, "simulate_s": t1 - t0, "tables_s": t2 - t1, "write_s": t3 - t2,
                  "total_s": t3 - t0, "truth_s": tt, "rows": sum(rows.values()),
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def run(n: int, truth: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "bench.duckdb")
        out = subprocess.run([sys.executable, "-c", CHILD, str(n), db, "1" if truth else "0"],
                             capture_output=True, text=True, check=True, env={**os.environ})
        return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--truth", action="store_true", help="also time the truth computation")
    args = ap.parse_args()
    results = [run(n, args.truth) for n in args.sizes]
    print(f"{'persons':>10} {'simulate s':>10} {'tables s':>9} {'write s':>8} {'total s':>8} "
          f"{'s/100k':>7} {'rows':>11} {'peak GiB':>8}" + ("  truth s" if args.truth else ""))
    for r in results:
        line = (f"{r['persons']:>10,} {r['simulate_s']:>10.1f} {r['tables_s']:>9.1f} {r['write_s']:>8.1f} "
                f"{r['total_s']:>8.1f} {r['total_s'] / r['persons'] * 1e5:>7.1f} {r['rows']:>11,} "
                f"{r['peak_rss_gib']:>8.2f}")
        if args.truth:
            line += f"  {r['truth_s']:>7.1f}"
        print(line)
    if len(results) > 1:
        a, b = results[0], results[-1]
        print(f"scaling: {b['persons'] / a['persons']:.0f}x persons -> {b['total_s'] / a['total_s']:.1f}x time, "
              f"{b['peak_rss_gib'] / a['peak_rss_gib']:.1f}x peak memory")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
