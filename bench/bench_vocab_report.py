"""Benchmark: the concept-set resolution report (routes, rows and persons per route, rows a set could
be missing; issue 16) against the cohort extraction it accompanies.

    PYTHONPATH=src python bench/bench_vocab_report.py [--persons 200000] [--db /tmp/world_200k.duckdb] [--repeat 3]

Builds (once, cached at --db) a synthetic AA world, then in fresh child processes (cold, alternating):
1. extract: ``StudySession`` + the attrition of every cohort of studies/jaki_neuropsych.yaml;
2. report: ``StudySession`` + ``concept_set_report()`` (per domain one grouped count over the event
   codes and one join of the distinct (person, code) pairs to (flag, code) pairs).
Prints every run, the medians, peak MB and the ratio of the report's own time to the extraction (the
report's extra cost is what ``follicle cohorts`` and ``follicle run`` pay on top of the extraction).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "jaki_neuropsych.yaml"


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(task: str, db: str) -> None:
    import ibis

    from follicle.study.session import StudySession
    from follicle.study.spec import load_spec

    spec = load_spec(STUDY)
    con = ibis.duckdb.connect(db, read_only=True)
    start = time.perf_counter()
    with StudySession(spec, con) as s:
        opened = time.perf_counter()
        if task == "extract":
            for name in spec.cohorts:
                s.attrition(name)
        else:
            report = s.concept_set_report()
            assert len(report.sets) == len(spec.concept_sets)
        end = time.perf_counter()
    print(json.dumps({"seconds": end - start, "after_session": end - opened, "peak_mb": _peak_mb()}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=200_000)
    ap.add_argument("--db", default="/tmp/world_200k.duckdb")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", choices=["extract", "report"])
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.db)
        return
    if not Path(args.db).exists():
        from follicle.synth.build import build_world

        build_world(args.persons, 1, args.db)
    runs: dict[str, list[dict]] = {"extract": [], "report": []}
    for _ in range(args.repeat):
        for task in runs:
            out = subprocess.run([sys.executable, __file__, "--child", task, "--db", args.db], check=True,
                                 capture_output=True, text=True).stdout
            runs[task].append(json.loads(out.strip().splitlines()[-1]))
            print(task, runs[task][-1])
    med = {t: statistics.median(r["seconds"] for r in v) for t, v in runs.items()}
    own = statistics.median(r["after_session"] for r in runs["report"])
    peak = {t: max(r["peak_mb"] for r in v) for t, v in runs.items()}
    print(f"medians: extract (session + attrition) {med['extract']:.2f} s (peak {peak['extract']:.0f} MB); "
          f"session + report {med['report']:.2f} s (peak {peak['report']:.0f} MB), of which the report {own:.2f} s; "
          f"report / extract = {own / med['extract']:.2f}")


if __name__ == "__main__":
    main()
