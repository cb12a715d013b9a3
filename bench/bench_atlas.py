"""Benchmark: generating ATLAS (Circe) definitions on GiBleed, Follicle vs Circe's own SQL.

    PYTHONPATH=src:tests/study:tests/study/atlas python bench/bench_atlas.py [--db /tmp/gibleed_circe.duckdb] [--repeat 3]

Loads GiBleed (../shared/data/omop/gibleed, every table a Circe definition reads) into a DuckDB file
once, then, each in a fresh child process (peak RSS, DuckDB's memory included, belongs to one task):
1. follicle: ``follicle.study.atlas.generate.generate`` of the 11 test definitions (concept sets
   resolved, cohorts and attrition computed in DuckDB, rows pulled to pandas);
2. circe (peer): for each definition the SQL of ohdsi-circepy 0.3.0 (OHDSI's port of circe-be and
   SqlRender), translated to DuckDB and run statement by statement, with inclusion statistics, on a
   copy of the file (its SQL writes tables), rows read back.
Prints every run, the medians, peak MB and the ratio follicle / circe.
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
ATLAS = ROOT / "tests" / "study" / "atlas"


def _peak_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _definitions() -> list[Path]:
    from atlas_defs import DEFINITIONS

    return [ATLAS / d for d in DEFINITIONS]


def task_follicle(db: str) -> dict:
    import ibis

    from follicle.study.atlas.generate import generate

    con = ibis.duckdb.connect(db, read_only=True)
    t0 = time.perf_counter()
    results = generate(_definitions(), con)
    return {"seconds": time.perf_counter() - t0, "rows": sum(len(r.rows) for r in results), "peak_mb": _peak_mb()}


def task_circe(db: str, work: str) -> dict:
    from circe_oracle import circe_rows

    t0 = time.perf_counter()
    rows = sum(len(circe_rows(Path(db), json.loads(p.read_text()), Path(work))[0]) for p in _definitions())
    return {"seconds": time.perf_counter() - t0, "rows": rows, "peak_mb": _peak_mb()}


def _child(task: str, db: str, work: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--task", task, "--db", db, "--work", work],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="/tmp/gibleed_circe.duckdb")
    parser.add_argument("--work", default="/tmp")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--task", choices=["follicle", "circe"])
    args = parser.parse_args()
    if args.task:
        task = task_follicle(args.db) if args.task == "follicle" else task_circe(args.db, args.work)
        print(json.dumps(task))
        return
    if not Path(args.db).exists():
        from atlas_defs import CIRCE_TABLES
        from cdmdata import load_csv_cdm

        load_csv_cdm(ROOT.parent / "shared" / "data" / "omop" / "gibleed", Path(args.db), version="5.3", tables=CIRCE_TABLES)
    runs: dict[str, list[dict]] = {"follicle": [], "circe": []}
    for i in range(args.repeat):
        for task in runs:
            r = _child(task, args.db, args.work)
            runs[task].append(r)
            print(f"run {i + 1} {task:8s} {r['seconds']:7.2f} s  peak {r['peak_mb']:6.0f} MB  rows {r['rows']}")
    med = {t: statistics.median(r["seconds"] for r in rs) for t, rs in runs.items()}
    peak = {t: max(r["peak_mb"] for r in rs) for t, rs in runs.items()}
    assert runs["follicle"][0]["rows"] == runs["circe"][0]["rows"], "the two disagree on the rows"
    for t in runs:
        print(f"median {t:8s} {med[t]:7.2f} s  peak {peak[t]:6.0f} MB")
    print(f"ratio follicle / circe: {med['follicle'] / med['circe']:.2f}")


if __name__ == "__main__":
    main()
