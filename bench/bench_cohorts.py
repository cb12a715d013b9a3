"""Benchmark: extraction of the bundled JAKi study vs one full scan of the tables it reads.

    PYTHONPATH=src python bench/bench_cohorts.py [--persons 1000000] [--db /tmp/world_1m.duckdb] [--repeat 5]

Builds (once, cached at --db) a synthetic AA world with ``follicle.synth.build_world``, then in
separate child processes (so peak RSS, DuckDB's native memory included, belongs to one task):
1. scan: one in-engine aggregate over every column of every table the study reads (the floor
   for any engine that must read the data once);
2. extract: ``StudySession`` + ``build_population`` for every comparison of
   studies/jaki_neuropsych.yaml (concept sets, cohorts, attrition, analysis tables pulled to pandas).
Each task runs ``--repeat`` times (default 5), scan and extraction alternating, each in a fresh
process (cold: nothing cached), so that drift of a shared machine falls on both alike. Prints every
run, the medians, peak MB and the ratio of the medians extract / scan. Targets (issue 4): extract
<= 30 s on 1M persons and <= 3x the scan.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "jaki_neuropsych.yaml"
TABLES = ("person", "observation_period", "drug_exposure", "condition_occurrence", "death",
          "concept", "concept_ancestor", "concept_relationship")


def _peak_mb() -> float:
    """Peak resident memory of this process in MB (VmHWM: reset at exec, unlike ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def task_scan(db: str, threads: int) -> dict:
    import ibis

    con = ibis.duckdb.connect(db, read_only=True, threads=threads)
    t0 = time.perf_counter()
    rows = 0
    for name in TABLES:
        t = con.table(name)
        aggs = {f"m{i}": t[c].max() for i, c in enumerate(t.columns)}
        con.execute(t.aggregate(n=t.count(), **aggs))
        rows += int(con.execute(t.count()))
    return {"seconds": time.perf_counter() - t0, "rows": rows, "peak_mb": _peak_mb()}


def task_extract(db: str, threads: int) -> dict:
    import ibis

    from follicle.study import StudySession, build_population, load_spec

    spec = load_spec(STUDY)
    con = ibis.duckdb.connect(db, read_only=True, threads=threads)
    t0 = time.perf_counter()
    sizes = {}
    with StudySession(spec, con) as session:
        for name in spec.comparisons:
            pop = build_population(spec, con, name, session=session)
            sizes[name] = len(pop.table)
    return {"seconds": time.perf_counter() - t0, "analysis_rows": sizes, "peak_mb": _peak_mb()}


def _child(task: str, db: str, threads: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--task", task, "--db", db, "--threads", str(threads)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--task", choices=["scan", "extract"], default=None)
    ap.add_argument("--repeat", type=int, default=5, help="fresh-process runs of each task")
    args = ap.parse_args()
    db = args.db or f"/tmp/follicle_bench_world_{args.persons}.duckdb"
    if args.task:
        print(json.dumps((task_scan if args.task == "scan" else task_extract)(db, args.threads)))
        return
    if not Path(db).exists():
        from follicle.synth import build_world

        t0 = time.perf_counter()
        build_world(args.persons, args.seed, db)
        print(f"built world of {args.persons:,} persons in {time.perf_counter() - t0:.1f} s at {db}")
    runs: dict[str, list[dict]] = {"scan": [], "extract": []}
    for _ in range(args.repeat):
        for task, done in runs.items():
            done.append(_child(task, db, args.threads))
    scan, extract = (statistics.median(r["seconds"] for r in runs[t]) for t in ("scan", "extract"))
    print(f"{'step':<10}{'median s':>10}{'peak MB':>10}   runs (s)")
    for task, median in (("scan", scan), ("extract", extract)):
        peak = max(r["peak_mb"] for r in runs[task])
        seconds = " ".join(f"{r['seconds']:.2f}" for r in runs[task])
        print(f"{task:<10}{median:>10.2f}{peak:>10.0f}   {seconds}")
    print(f"scan: {runs['scan'][0]['rows']:,} rows in {len(TABLES)} tables; "
          f"extract: analysis rows {runs['extract'][0]['analysis_rows']}")
    ratios = sorted(e["seconds"] / s["seconds"] for s, e in zip(runs["scan"], runs["extract"], strict=True))
    print(f"ratio extract / scan (medians): {extract / scan:.2f} (target <= 3); per pair {' '.join(f'{r:.2f}' for r in ratios)}; "
          "extract target <= 30 s at 1M persons")


if __name__ == "__main__":
    main()
