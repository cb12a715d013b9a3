"""Benchmark: extraction of the bundled JAKi study vs one scan of the columns it reads, in one process.

    PYTHONPATH=src python bench/bench_cohorts.py [--persons 1000000] [--db /tmp/world_1m.duckdb] [--repeat 5]

Builds (once, cached at --db) a synthetic AA world with ``follicle.synth.build_world``, then runs
``--repeat`` fresh child processes (cold: no Follicle state; peak RSS = VmHWM of the child). Each child,
on one DuckDB connection:

1. scan (the peer): one in-engine aggregate (``count(*)`` and ``max`` of each column) over exactly
   the columns the extraction reads, of exactly the tables it reads (:data:`NEEDED`: the event,
   person, observation-period and death columns and the vocabulary columns of concept-set
   resolution), run once untimed to warm the same caches the extraction then finds warm, then timed;
2. extract: ``StudySession`` + ``build_population`` for every comparison of
   studies/jaki_neuropsych.yaml (concept sets, cohorts, attrition, analysis tables pulled to pandas).

Prints every run, the medians, peak MB and the ratio extract / scan per child and of the medians, in
wall time and in CPU time (user + system of all the child's threads, DuckDB's included: steadier
on a shared machine).
Target (issue 21, point 4): extraction within 3x the scan at 200k and 1M persons.
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
#: table -> the columns the extraction of the bundled study reads from it
NEEDED = {
    "condition_occurrence": ("person_id", "condition_concept_id", "condition_source_concept_id",
                             "condition_source_value", "condition_start_date"),
    "drug_exposure": ("person_id", "drug_concept_id", "drug_source_concept_id", "drug_source_value",
                      "drug_exposure_start_date", "drug_exposure_end_date", "route_concept_id"),
    "person": ("person_id", "year_of_birth", "gender_concept_id"),
    "observation_period": ("person_id", "observation_period_start_date", "observation_period_end_date"),
    "death": ("person_id", "death_date"),
    "concept": ("concept_id", "concept_code", "vocabulary_id", "concept_name", "standard_concept"),
    "concept_ancestor": ("ancestor_concept_id", "descendant_concept_id"),
    "concept_relationship": ("concept_id_1", "concept_id_2", "relationship_id"),
}


def _peak_mb() -> float:
    """Peak resident memory of this process in MB (VmHWM: reset at exec, unlike ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scan(con) -> tuple[float, float, int]:
    """Wall and CPU seconds and rows of one aggregate per table over the :data:`NEEDED` columns (DuckDB SQL)."""
    t0, c0 = time.perf_counter(), time.process_time()
    rows = 0
    for name, cols in NEEDED.items():
        aggs = ", ".join(f"max({c})" for c in cols)
        rows += int(con.con.execute(f"SELECT count(*), {aggs} FROM {name}").fetchone()[0])
    return time.perf_counter() - t0, time.process_time() - c0, rows


def task_pair(db: str, threads: int) -> dict:
    import ibis

    from follicle.study import StudySession, build_population, load_spec

    spec = load_spec(STUDY)
    con = ibis.duckdb.connect(db, read_only=True, threads=threads)
    scan(con)  # warm-up: the OS page cache and DuckDB's buffers, as the extraction will find them
    scan_s, scan_cpu, rows = scan(con)
    t0, c0 = time.perf_counter(), time.process_time()
    sizes = {}
    with StudySession(spec, con) as session:
        for name in spec.comparisons:
            pop = build_population(spec, con, name, session=session)
            sizes[name] = len(pop.table)
    return {"scan": scan_s, "extract": time.perf_counter() - t0, "scan_cpu": scan_cpu, "extract_cpu": time.process_time() - c0,
            "rows": rows, "analysis_rows": sizes, "peak_mb": _peak_mb()}


def _child(db: str, threads: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--task", "pair", "--db", db, "--threads", str(threads)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--task", choices=["pair"], default=None)
    ap.add_argument("--repeat", type=int, default=5, help="fresh-process runs")
    args = ap.parse_args()
    db = args.db or f"/tmp/follicle_bench_world_{args.persons}.duckdb"
    if args.task:
        print(json.dumps(task_pair(db, args.threads)))
        return
    if not Path(db).exists():
        from follicle.synth import build_world

        t0 = time.perf_counter()
        build_world(args.persons, args.seed, db)
        print(f"built world of {args.persons:,} persons in {time.perf_counter() - t0:.1f} s at {db}")
    runs = [_child(db, args.threads) for _ in range(args.repeat)]
    scan_m, extract_m, scan_c, extract_c = (statistics.median(r[k] for r in runs)
                                            for k in ("scan", "extract", "scan_cpu", "extract_cpu"))
    print(f"{'run':<6}{'scan s':>9}{'extract s':>11}{'ratio':>8}{'scan CPU s':>12}{'extract CPU s':>15}{'CPU ratio':>11}{'peak MB':>9}")
    for i, r in enumerate(runs):
        print(f"{i + 1:<6}{r['scan']:>9.3f}{r['extract']:>11.2f}{r['extract'] / r['scan']:>8.1f}{r['scan_cpu']:>12.3f}"
              f"{r['extract_cpu']:>15.2f}{r['extract_cpu'] / max(r['scan_cpu'], 1e-9):>11.1f}{r['peak_mb']:>9.0f}")
    print(f"scan: {runs[0]['rows']:,} rows, {sum(map(len, NEEDED.values()))} columns of {len(NEEDED)} tables; "
          f"extract: analysis rows {runs[0]['analysis_rows']}")
    print(f"medians: scan {scan_m:.3f} s, extract {extract_m:.2f} s, ratio {extract_m / scan_m:.1f} (target <= 3); "
          f"CPU (all threads): scan {scan_c:.3f} s, extract {extract_c:.2f} s, ratio {extract_c / max(scan_c, 1e-9):.1f}")


if __name__ == "__main__":
    main()
