"""What the content-keyed step cache costs and saves on a synthetic world (issue 14, point 1).

In one process, on the world at --db (built by ``follicle synth`` or bench_study.py):

* the content hashes of the tables a study reads (:data:`follicle.run.study.STUDY_TABLES`), with
  DuckDB's native row hash (what every run pays to check the cache), and the portable MD5 hashes
  of every CDM table (``follicle cdm fingerprint``), each timed (median of --repeat);
* a cold run of the bundled study (empty work folder), a warm re-run (everything reused), and a
  re-run after one value of one row of condition_occurrence is changed in a copy (everything that
  reads the table recomputed);
* peak RSS of the process.

Usage::

    PYTHONPATH=src python bench/bench_cache.py --db /tmp/world-200000-1.duckdb [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "studies" / "jaki_neuropsych.yaml"


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from follicle.cdm.connect import connect
    from follicle.cdm.fingerprint import table_hashes
    from follicle.run.study import STUDY_TABLES, run_study
    from follicle.study.spec import load_spec

    con = connect(args.db, read_only=True)
    rows = {t: con.table(t).count().execute() for t in STUDY_TABLES if t in con.list_tables()}
    native_s, _ = timed(lambda: table_hashes(con, STUDY_TABLES, portable=False), args.repeat)
    portable_s, _ = timed(lambda: table_hashes(con), args.repeat)
    con.disconnect()

    spec = load_spec(STUDY)
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        cold = run_study(spec, args.db, tmp / "out")
        cold_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm = run_study(spec, args.db, tmp / "out")
        warm_s = time.perf_counter() - t0
        # reading every stored artefact back (Arrow IPC + JSON, digests checked) against pickle of the
        # same objects in memory (the previous store's format), in the same run
        from follicle.run.cache import decode

        folders = [f for f in (tmp / "out.work" / "cache").glob("*/*") if f.is_dir()]
        t0 = time.perf_counter()
        objs = [decode(f) for f in folders]
        decode_s = time.perf_counter() - t0
        blobs = [pickle.dumps(o, protocol=pickle.HIGHEST_PROTOCOL) for o in objs]
        t0 = time.perf_counter()
        for b in blobs:
            pickle.loads(b)
        unpickle_s = time.perf_counter() - t0
        store_bytes = sum(p.stat().st_size for p in (tmp / "out.work").rglob("*") if p.is_file())
        copy = tmp / "edited.duckdb"
        shutil.copy(args.db, copy)
        with duckdb.connect(str(copy)) as c:
            c.execute("UPDATE condition_occurrence SET condition_concept_id = 0 WHERE condition_occurrence_id = "
                      "(SELECT min(condition_occurrence_id) FROM condition_occurrence)")
        t0 = time.perf_counter()
        edited = run_study(spec, copy, tmp / "out")
        edited_s = time.perf_counter() - t0
    print(json.dumps({
        "db": str(args.db), "rows_hashed": sum(rows.values()), "rows_by_table": rows,
        "study_tables_native_hash_s": round(native_s, 3), "all_tables_portable_md5_s": round(portable_s, 3),
        "artefacts": len(folders), "decode_all_s": round(decode_s, 3), "unpickle_all_s": round(unpickle_s, 3),
        "store_bytes": store_bytes, "pickle_bytes": sum(len(b) for b in blobs),
        "cold_run_s": round(cold_s, 2), "warm_rerun_s": round(warm_s, 2), "warm_computed": dict(warm.store.computed),
        "one_row_edited_rerun_s": round(edited_s, 2), "edited_computed": dict(edited.store.computed),
        "cold_computed": sum(cold.store.computed.values()),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "loadavg_1m": os.getloadavg()[0],
    }, indent=2))


if __name__ == "__main__":
    main()
