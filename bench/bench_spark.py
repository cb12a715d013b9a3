"""Local Spark against DuckDB: ``cdm load``, ``cohorts`` and the whole study (``run``), same world.

The synthetic world (``--persons``, seed 1) is built once into a cache folder outside the repo and
written as a Parquet folder (a network's export). Then, in the same run, each step is one CLI
command in its own child process, on DuckDB and on local Spark (``spark:///DIR``, master
``FOLLICLE_SPARK_MASTER``, default ``local[*]``): time, and peak memory as the peak of the sum of
the RSS of the child's whole process tree (Spark's JVM is a child of the Python process), polled
every 0.1 s from /proc. Spark's times include starting its JVM (10-30 s), as a user's command
does. Prints each step, the ratio Spark / DuckDB, and checks that both engines found the same
cohorts. Usage::

    PYTHONPATH=src python bench/bench_spark.py [--persons 200000] [--cache /tmp/follicle-bench] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "studies" / "jaki_neuropsych.yaml"
FOLLICLE = [sys.executable, "-m", "follicle"]


def _tree_rss_kib(root: int) -> int:
    """Sum of VmRSS of *root* and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid, ppid = int(entry), int(fields.get("PPid", "0").strip())
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) if "VmRSS" in fields else 0
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


def measure(cmd: list[str], env: dict[str, str]) -> dict:
    """Run *cmd*; seconds, peak process-tree RSS (MiB) and its stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    peak = 0
    stop = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss_kib(proc.pid))
            stop.wait(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    stop.set()
    poller.join()
    if proc.returncode not in (0, 3):  # 3: run wrote results, some outcome not estimable
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-2000:]}")
    return {"seconds": round(seconds, 2), "peak_mib": round(peak / 1024), "stdout": out}


def build(persons: int, cache: Path) -> Path:
    """The world as a Parquet folder (cached): one file per non-empty CDM table."""
    import duckdb

    from follicle.synth.build import build_world

    folder = cache / f"world-{persons}-parquet"
    if folder.is_dir():
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    db = cache / f"world-{persons}.duckdb"
    if not db.exists():
        build_world(persons, 1, db)
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=".parquet-"))
    con = duckdb.connect(str(db), read_only=True)
    try:
        for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
            if con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]:
                con.execute(f"COPY {name} TO '{tmp / name}.parquet' (FORMAT parquet)")
    finally:
        con.close()
    tmp.rename(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=200_000)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/follicle-bench"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    world = build(args.persons, args.cache)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    work = Path(tempfile.mkdtemp(prefix="follicle-bench-spark-"))
    targets = {"duckdb": str(work / "world.duckdb"), "spark": f"spark://{work / 'spark'}"}
    rows: list[dict] = []
    cohorts: dict[str, dict] = {}
    try:
        for engine, db in targets.items():
            steps = {
                "load": [*FOLLICLE, "cdm", "load", str(world), "--db", db, "--json"],
                "cohorts": [*FOLLICLE, "cohorts", str(STUDY), "--db", db, "--json"],
                "study": [*FOLLICLE, "run", str(STUDY), "--db", db, "--out", str(work / f"out-{engine}"), "--json"],
            }
            for step, cmd in steps.items():
                r = measure(cmd, env)
                if step == "cohorts":
                    cohorts[engine] = json.loads(r["stdout"])
                rows.append({"engine": engine, "step": step, "seconds": r["seconds"], "peak_mib": r["peak_mib"]})
                print(f"{engine:7s} {step:8s} {r['seconds']:8.2f} s  peak {r['peak_mib']:6d} MiB", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    same = cohorts["duckdb"] == cohorts["spark"]
    print(f"\n{args.persons:,} persons; cohorts identical on both engines: {same}")
    print(f"{'step':8s} {'duckdb s':>9s} {'spark s':>9s} {'ratio':>6s} {'duckdb MiB':>11s} {'spark MiB':>10s}")
    by = {(r["engine"], r["step"]): r for r in rows}
    for step in ("load", "cohorts", "study"):
        d, s = by["duckdb", step], by["spark", step]
        print(f"{step:8s} {d['seconds']:9.2f} {s['seconds']:9.2f} {s['seconds'] / d['seconds']:6.1f} "
              f"{d['peak_mib']:11d} {s['peak_mib']:10d}")
    if args.json:
        print(json.dumps({"persons": args.persons, "rows": rows, "cohorts_identical": same}))
    if not same:
        raise SystemExit("the engines disagree on the cohorts")


if __name__ == "__main__":
    main()
