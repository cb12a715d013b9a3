"""Write in-memory tables into a new OMOP CDM, atomically.

Used by the synthetic world and ``cdm init``: every table of the CDM version is created from
the official DDL; the given tables are inserted with their columns cast to the DDL types. A
DuckDB target is built in a temporary file beside the target and renamed into place only when
complete; a PostgreSQL target (``postgresql://user:pw@host/db[/schema]``) is staged in a
temporary DuckDB file and copied in one transaction; a local Spark target (``spark:///DIR``) gets
that file's tables as Parquet folders swapped into place. Either way a failure leaves nothing behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from follicle.tempfiles import remove_stale
from follicle.cdm import schema
from follicle.cdm.connect import connect, dialect_of
from follicle.errors import DatabaseError

Table = pa.Table | pd.DataFrame


def write_cdm(
    tables: Mapping[str, Table],
    target: str | Path,
    *,
    version: str = "5.4",
    overwrite: bool = False,
) -> dict[str, int]:
    """Create a CDM at *target* holding *tables*; return rows written per table.

    Tables not given are created empty. Column names are matched case-insensitively to the DDL;
    unknown table or column names raise :class:`DatabaseError` naming them. An existing target
    (DuckDB file, or CDM tables in the PostgreSQL schema) is replaced only with ``overwrite``.
    """
    known = schema.tables(version)
    problems = [f"unknown CDM {version} table: {name}" for name in tables if name.lower() not in known]
    for name, tbl in tables.items():
        cols = {c for c, _, _ in known.get(name.lower(), [])}
        extra = [c for c in _columns(tbl) if c.lower() not in cols]
        if name.lower() in known and extra:
            problems.append(f"table {name}: unknown columns {', '.join(extra)}")
    if problems:
        raise DatabaseError("cannot write CDM", problems=problems)

    if dialect_of(target) in ("postgres", "spark"):
        with tempfile.TemporaryDirectory(prefix="follicle-stage-") as tmp:
            stage = Path(tmp) / "stage.duckdb"
            counts = _write_duckdb(tables, stage, version)
            copy_stage(stage, str(target), version, overwrite=overwrite)
        return counts
    path = Path(target)
    if not path.parent.is_dir():
        raise DatabaseError(f"cannot create {path}: folder {path.parent} does not exist")
    if path.exists() and not overwrite:
        raise DatabaseError(f"database file already exists: {path} (use overwrite)")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    remove_stale(path.parent, prefix=f".{path.name}.")  # left by a killed writer
    tmp.unlink(missing_ok=True)
    try:
        counts = _write_duckdb(tables, tmp, version)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)
    return counts


def _columns(tbl: Table) -> list[str]:
    return list(tbl.column_names) if isinstance(tbl, pa.Table) else [str(c) for c in tbl.columns]


def _write_duckdb(tables: Mapping[str, Table], path: Path, version: str) -> dict[str, int]:
    con = connect(path)
    raw = con.con  # the duckdb connection: bulk inserts from Arrow without a Python row loop
    try:
        for stmt in schema.create_statements(version, "duckdb"):
            raw.execute(stmt)
        counts: dict[str, int] = {}
        for name, tbl in tables.items():
            name = name.lower()
            arrow = tbl if isinstance(tbl, pa.Table) else pa.Table.from_pandas(tbl, preserve_index=False)
            arrow = arrow.rename_columns([c.lower() for c in arrow.column_names])
            cols = [c for c, _, _ in schema.tables(version)[name] if c in arrow.column_names]
            raw.register("_follicle_src", arrow)
            col_list = ", ".join(map(schema.quote, cols))
            try:
                raw.execute(f"INSERT INTO {name} ({col_list}) SELECT {col_list} FROM _follicle_src")
            except duckdb.Error as exc:
                raise DatabaseError(f"cannot write table {name}: {str(exc).splitlines()[0]}") from exc
            raw.unregister("_follicle_src")
            counts[name] = arrow.num_rows
        raw.execute("CHECKPOINT")
        return counts
    finally:
        con.disconnect()


def copy_stage(stage: Path, target: str, version: str, *, overwrite: bool = False, not_null: bool = True) -> None:
    """Copy the CDM staged in the DuckDB file *stage* to a PostgreSQL or Spark *target*, atomically."""
    if dialect_of(target) == "spark":
        from follicle.cdm.spark import publish_stage

        publish_stage(stage, target, version, overwrite=overwrite)
    else:
        from follicle.cdm.pg import copy_to_postgres

        copy_to_postgres(stage, target, version, overwrite=overwrite, not_null=not_null)


def init_cdm(target: str | Path, *, version: str = "5.4", overwrite: bool = False) -> list[str]:
    """Create the empty tables of CDM *version* at *target* (official DDL); return their names."""
    write_cdm({}, target, version=version, overwrite=overwrite)
    return list(schema.tables(version))
