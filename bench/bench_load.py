"""Benchmark: ``follicle cdm load`` against pandas.read_csv + DuckDB insert, on GiBleed and a 10x copy.

Each variant runs in its own subprocess so that wall time and peak resident memory (ru_maxrss of
that child, which counts DuckDB's native memory too) are measured separately. The 10x copy repeats
every data row of each GiBleed CSV ten times (built in a temporary folder, deleted afterwards).

With FOLLICLE_TEST_PG_URL set, a third variant loads into a temporary PostgreSQL schema.

Run: ``PYTHONPATH=src python bench/bench_load.py [--shared ../shared] [--factor 10]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _replicate(src: Path, dest: Path, factor: int) -> None:
    dest.mkdir()
    for path in src.glob("*.csv"):
        with path.open("rb") as fh:
            header, body = fh.readline(), fh.read()
        if body and not body.endswith(b"\n"):
            body += b"\n"
        with (dest / path.name).open("wb") as out:
            out.write(header)
            for _ in range(factor):
                out.write(body)


def _run_follicle(src: str, db: str) -> dict:
    from follicle.cdm.load import load_cdm

    result = load_cdm(src, db)
    return {"rows": sum(result.rows.values())}


def _run_pandas(src: str, db: str) -> dict:
    """Baseline: pandas.read_csv (type inference) per file, then DuckDB CREATE TABLE from the frame."""
    import duckdb
    import pandas as pd

    rows = 0
    con = duckdb.connect(db)
    for path in sorted(Path(src).glob("*.csv")):
        df = pd.read_csv(path, low_memory=False)
        con.register("df", df)
        con.execute(f'CREATE TABLE "{path.stem.lower()}" AS SELECT * FROM df')
        con.unregister("df")
        rows += len(df)
    con.close()
    return {"rows": rows}


def _run_follicle_pg(src: str, db: str) -> dict:
    """follicle into PostgreSQL (FOLLICLE_TEST_PG_URL): staged in DuckDB, then COPY in one transaction."""
    import psycopg
    from psycopg import sql

    from follicle.cdm.load import load_cdm

    url = os.environ["FOLLICLE_TEST_PG_URL"].rstrip("/")
    schema = f"follicle_bench_{os.getpid()}"
    try:
        result = load_cdm(src, f"{url}/{schema}")
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    return {"rows": sum(result.rows.values())}


VARIANTS = {"follicle": _run_follicle, "pandas+duckdb": _run_pandas, "follicle->pg": _run_follicle_pg}


def _child(variant: str, src: str, db: str) -> None:
    start = time.perf_counter()
    out = VARIANTS[variant](src, db)
    out["seconds"] = time.perf_counter() - start
    print(json.dumps(out))


def _measure(variant: str, src: Path, tmp: Path) -> dict:
    db = tmp / f"{variant.replace('+', '_').replace('->', '_')}.duckdb"
    db.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, __file__, "--child", variant, str(src), str(db)],
                            stdout=subprocess.PIPE, env={**os.environ})
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{variant} failed on {src}")
    out = json.loads(stdout)
    out["peak_mb"] = usage.ru_maxrss / 1024  # Linux: kilobytes
    db.unlink(missing_ok=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "SRC", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    gibleed = Path(os.environ.get("FOLLICLE_SHARED", args.shared)) / "data" / "omop" / "gibleed"
    if not gibleed.is_dir():
        raise SystemExit(f"GiBleed not found at {gibleed} (set FOLLICLE_SHARED)")
    print(f"{'data':<14}{'variant':<16}{'rows':>12}{'seconds':>10}{'peak MB':>10}{'time ratio':>12}")
    with tempfile.TemporaryDirectory(prefix="follicle-bench-") as tmp:
        tmp = Path(tmp)
        big = tmp / f"gibleed_x{args.factor}"
        _replicate(gibleed, big, args.factor)
        for label, src in (("gibleed", gibleed), (f"gibleed x{args.factor}", big)):
            variants = ["follicle", "pandas+duckdb"]
            variants += ["follicle->pg"] if os.environ.get("FOLLICLE_TEST_PG_URL") else []
            res = {v: _measure(v, src, tmp) for v in variants}
            base = res["pandas+duckdb"]["seconds"]
            for v, r in res.items():
                print(f"{label:<14}{v:<16}{r['rows']:>12,}{r['seconds']:>10.2f}{r['peak_mb']:>10.0f}"
                      f"{r['seconds'] / base:>12.2f}")


if __name__ == "__main__":
    main()
