"""Benchmark the synthetic world at scale on DuckDB: synth, load, cohorts and the whole study.

For each size, each step runs as its own ``follicle`` process under ``/usr/bin/time`` (wall time
and the process's peak RSS):

1. ``synth --db``       stream the world into a DuckDB CDM (+ truth JSON)
2. ``synth --parquet``  stream the same world into a folder of Parquet tables
3. ``cdm load``         load that Parquet folder into a new DuckDB CDM (the folder is then removed)
4. ``cohorts``          build the study's cohorts on the synthesised DuckDB CDM
5. ``run``              the whole study (``studies/jaki_neuropsych.yaml``) on that CDM

At the smallest size it also runs the peer of step 1, the whole-in-memory path (``simulate`` ->
``World.to_cdm`` -> ``write_cdm``, what ``follicle synth`` did before streaming), so the streaming
memory is read against it (the peer computes the truth too, as step 1 does). Each result is appended as one JSON line to ``--results`` as soon as it
is measured (a long run that is stopped keeps what finished); the table at the end gives each
step's growth from the smallest to the largest size (time ratio, memory ratio). Usage::

    python bench/bench_scale.py --sizes 1000000 10000000 --work /tmp/scale [--results scale.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUDY = ROOT / "studies" / "jaki_neuropsych.yaml"
FOLLICLE = [sys.executable, "-m", "follicle"]
IN_MEMORY = r"""
import json, sys
from follicle.synth import simulate
from follicle.cdm.write import write_cdm
w = simulate(persons=int(sys.argv[1]), seed=1)
write_cdm(w.to_cdm(), sys.argv[2], overwrite=True)
json.dumps(w.truth(), default=str)
"""


def timed(cmd: list[str]) -> dict:
    """Run *cmd* under /usr/bin/time; its wall seconds, peak RSS (GiB) and exit code."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        proc = subprocess.run(["/usr/bin/time", "-o", tf.name, "-f", "%e %M", *cmd], capture_output=True, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
        wall, kib = tf.read().strip().splitlines()[-1].split()
    out = {"seconds": float(wall), "peak_gib": int(kib) / 2**20, "exit": proc.returncode}
    if proc.returncode not in (0, 3):  # 3: `run` finished, some estimate could not be made (named in its output)
        out["error"] = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return out


def steps(n: int, work: Path, chunk: int, with_peer: bool, on_loaded: bool) -> list[tuple[str, list[str], Path | None]]:
    """(step name, command, path to remove after it) for size *n*; cohorts and study run on the
    synthesised DuckDB CDM, or on the one loaded from Parquet when *on_loaded*."""
    db, pq, loaded = work / f"world-{n}.duckdb", work / f"world-{n}-pq", work / f"loaded-{n}.duckdb"
    cdm = loaded if on_loaded else db
    out = [
        ("synth duckdb", [*FOLLICLE, "synth", "--persons", str(n), "--seed", "1", "--db", str(db), "--overwrite",
                          "--truth", str(work / f"truth-{n}.json"), "--chunk-persons", str(chunk), "--json"], None),
        ("synth parquet", [*FOLLICLE, "synth", "--persons", str(n), "--seed", "1", "--parquet", str(pq),
                           "--overwrite", "--chunk-persons", str(chunk), "--json"], None),
        ("cdm load parquet", [*FOLLICLE, "cdm", "load", str(pq), "--db", str(loaded), "--overwrite", "--json"], pq),
        ("cohorts", [*FOLLICLE, "cohorts", str(STUDY), "--db", str(cdm), "--json"], None),
        ("run study", [*FOLLICLE, "run", str(STUDY), "--db", str(cdm), "--out", str(work / f"results-{n}"),
                       "--force", "--json"], None if on_loaded else loaded),
    ]
    if with_peer:
        out.insert(1, ("synth in-memory (peer)", [sys.executable, "-c", IN_MEMORY, str(n), str(work / "peer.duckdb")],
                       work / "peer.duckdb"))
    return out


def remove(path: Path | None) -> None:
    if path is None:
        return
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def report(rows: list[dict]) -> None:
    print(f"{'persons':>11}  {'step':<24} {'seconds':>8} {'peak GiB':>8}  exit")
    for r in rows:
        print(f"{r['persons']:>11,}  {r['step']:<24} {r['seconds']:>8.1f} {r['peak_gib']:>8.2f}  {r['exit']}")
    sizes = sorted({r["persons"] for r in rows})
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        by = {(r["persons"], r["step"]): r for r in rows}
        print(f"growth {lo:,} -> {hi:,} persons ({hi / lo:.0f}x):")
        for step in dict.fromkeys(r["step"] for r in rows):
            a, b = by.get((lo, step)), by.get((hi, step))
            if a and b:
                print(f"  {step:<24} time x{b['seconds'] / a['seconds']:.1f}, peak memory x{b['peak_gib'] / a['peak_gib']:.2f}")
    peer = {r["persons"]: r for r in rows if r["step"].startswith("synth in-memory")}
    for n, p in peer.items():
        s = next((r for r in rows if r["persons"] == n and r["step"] == "synth duckdb"), None)
        if s:
            print(f"streaming vs in-memory at {n:,}: time x{s['seconds'] / p['seconds']:.2f}, "
                  f"peak memory x{s['peak_gib'] / p['peak_gib']:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--work", type=Path, required=True, help="folder for the worlds (tens of GB at 10M)")
    ap.add_argument("--results", type=Path, default=None, help="JSON lines, appended (default <work>/scale.jsonl)")
    ap.add_argument("--chunk-persons", type=int, default=250_000)
    ap.add_argument("--steps", nargs="*", default=None, help="only these step names")
    ap.add_argument("--no-peer", action="store_true", help="skip the in-memory peer")
    ap.add_argument("--on-loaded", action="store_true", help="cohorts and study on the CDM loaded from Parquet")
    ap.add_argument("--report-only", action="store_true", help="print the table of --results and exit")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results = args.results or args.work / "scale.jsonl"
    if not args.report_only:
        for i, n in enumerate(args.sizes):
            for name, cmd, drop in steps(n, args.work, args.chunk_persons, i == 0 and not args.no_peer,
                                       args.on_loaded):
                if args.steps and name not in args.steps:
                    continue
                row = {"persons": n, "step": name, "chunk_persons": args.chunk_persons, **timed(cmd),
                       "cdm": "loaded" if args.on_loaded and name in ("cohorts", "run study") else "synth",
                       "load_avg_1m": os.getloadavg()[0]}
                with results.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
                remove(drop)
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    report(rows)


if __name__ == "__main__":
    main()
