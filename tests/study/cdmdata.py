"""Test-only loaders: OMOP CSV folders into a DuckDB file, and a DuckDB CDM copied into a
PostgreSQL schema. (The product loader is `follicle cdm load`; these stay in tests so the study
tests do not depend on it.)"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import duckdb
import ibis

from follicle.cdm import schema

STUDY_TABLES = (
    "person", "observation_period", "drug_exposure", "condition_occurrence", "death",
    "concept", "concept_ancestor", "concept_relationship", "measurement", "procedure_occurrence",
)


def load_csv_cdm(folder: Path, target: Path, *, version: str, tables: tuple[str, ...] = STUDY_TABLES) -> Path:
    """Create the CDM tables of *version* in a new DuckDB file and fill *tables* from *folder*."""
    files = {p.stem.lower(): p for p in folder.glob("*.csv")}
    con = duckdb.connect(str(target))
    try:
        for stmt in schema.create_statements(version, "duckdb"):
            con.execute(stmt)
        for name in tables:
            if name in files:
                con.execute(
                    f"INSERT INTO {name} BY NAME SELECT * FROM read_csv(?, header=true, all_varchar=true)",
                    [str(files[name])],
                )
    finally:
        con.close()
    return target


def copy_to_postgres(duck_path: Path, pg_url: str, *, version: str = "5.3",
                     tables: tuple[str, ...] = STUDY_TABLES) -> tuple[object, str]:
    """Copy *tables* of a DuckDB CDM into a new uniquely named PostgreSQL schema (DDL, then COPY);
    returns (Ibis connection, schema)."""
    name = f"follicle_study_{uuid.uuid4().hex[:10]}"
    pg = ibis.connect(pg_url)
    raw = pg.con  # the psycopg connection, for DDL and COPY (bulk load)
    src = duckdb.connect(str(duck_path), read_only=True)
    try:
        with raw.cursor() as cur:
            cur.execute(f"CREATE SCHEMA {name}")
            for stmt in schema.create_statements(version, "postgres", schema=name):
                cur.execute(stmt)
            for table in tables:
                cols = [r[0] for r in src.execute(f"DESCRIBE {table}").fetchall()]
                with tempfile.NamedTemporaryFile(suffix=".csv") as tmp:
                    src.execute(f"COPY {table} TO '{tmp.name}' (HEADER false, FORMAT csv)")
                    with cur.copy(f"COPY {name}.{table} ({', '.join(cols)}) FROM STDIN WITH (FORMAT csv)") as copy:
                        copy.write(Path(tmp.name).read_bytes())
        raw.commit()
    finally:
        src.close()
    return pg, name


def drop_postgres_schema(pg: object, name: str) -> None:
    pg.raw_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE").close()  # type: ignore[attr-defined]
