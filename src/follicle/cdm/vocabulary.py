"""Add or replace the vocabulary tables of an existing CDM from an Athena download, atomically.

A DuckDB target is changed in one transaction: every vocabulary table of the download is emptied
and filled (created first when the CDM lacks it), and a bad file rolls everything back. A
PostgreSQL target gets the files staged in a temporary DuckDB file, then in one transaction
each table is created if missing, truncated and filled by COPY. Vocabulary tables the download
does not hold are left as they were (and named in the result).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from follicle.cdm import schema, source
from follicle.cdm.connect import dialect_of, open_duckdb, redact
from follicle.errors import DatabaseError, InputError
from follicle.vocab.athena import VOCABULARY_TABLES, AthenaFiles, diagnose, find_files, select_sql

Progress = Callable[[str, int], None]


@dataclass
class VocabularyLoadResult:
    """What a vocabulary load did."""

    target: str
    rows: dict[str, int] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def load_vocabulary(src: str | Path, target: str | Path, *, progress: Progress | None = None) -> VocabularyLoadResult:
    """Replace the vocabulary tables of the CDM at *target* with those of the download *src*.

    Parameters
    ----------
    src : str or Path
        Folder (or .zip) of an Athena download (``CONCEPT.csv``, ``CONCEPT_ANCESTOR.csv``, ...).
    target : str or Path
        An existing CDM: a DuckDB file or a ``postgresql://`` URL (``.../db/schema`` for a schema).
    progress : callable, optional
        Called with (table, rows) after each table.

    Returns
    -------
    VocabularyLoadResult
        Rows per table loaded, tables created, tables left as they were, files skipped.

    Raises
    ------
    InputError
        A file that is not a vocabulary table or holds a bad value (named by line and column);
        nothing is changed.
    DatabaseError
        No CDM at *target*.
    """
    if dialect_of(target) == "spark":
        raise DatabaseError(f"{target}: vocab load into Spark is not supported; put the vocabulary files "
                            "(CONCEPT.csv, ...) in the folder given to cdm load, which loads them with the CDM")
    start = time.perf_counter()
    result = VocabularyLoadResult(target=redact(str(target)))
    with source.opened(src) as root:
        found = find_files(root)
        result.skipped_files = found.skipped
        result.kept = [t for t in VOCABULARY_TABLES if t not in found.files]
        if dialect_of(target) == "postgres":
            with tempfile.TemporaryDirectory(prefix="follicle-vocab-") as tmp:
                stage = Path(tmp) / "stage.duckdb"
                con = open_duckdb(str(stage))
                try:
                    _fill(con, found, result, progress, create_all=True)
                finally:
                    con.close()
                _copy_to_postgres(stage, str(target), list(result.rows))
        else:
            path = Path(target)
            if not path.is_file():
                raise DatabaseError(f"no CDM at {path}: create one first (follicle cdm load, or follicle cdm init)")
            con = open_duckdb(str(path))
            try:
                _fill(con, found, result, progress, create_all=False)
            finally:
                con.close()
    result.seconds = round(time.perf_counter() - start, 3)
    return result


def _fill(con: duckdb.DuckDBPyConnection, found: AthenaFiles, result: VocabularyLoadResult,
          progress: Progress | None, *, create_all: bool) -> None:
    """Empty and fill each table of *found* in one transaction (rolled back on any error)."""
    present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                         "WHERE table_schema = current_schema()").fetchall()}
    if not create_all and "person" not in present:
        raise DatabaseError("the database holds no CDM (no person table): load the CDM first (follicle cdm load)")
    statements = dict(zip(schema.tables("5.4"), schema.create_statements("5.4", "duckdb", not_null=False), strict=True))
    con.execute("BEGIN TRANSACTION")
    try:
        for table in VOCABULARY_TABLES:
            if table not in found.files:
                continue
            path, delimiter = found.files[table]
            sql, cols = select_sql(table, path, delimiter)
            if table not in present:
                con.execute(statements[table])
                result.created.append(table)
            else:
                con.execute(f"DELETE FROM {table}")
            try:
                n = con.execute(f"INSERT INTO {table} ({', '.join(schema.quote(c) for c in cols)}) {sql}",
                                [str(path)]).fetchone()[0]
            except duckdb.Error as exc:
                problems = diagnose(table, path, delimiter)
                message = f"cannot load {path.name} into {table}; nothing was changed"
                if not problems:
                    message += f": {str(exc).splitlines()[0]}"
                raise InputError(message, problems=problems) from exc
            result.rows[table] = int(n)
            if progress:
                progress(table, int(n))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("CHECKPOINT")


def _copy_to_postgres(stage: Path, target: str, tables: list[str]) -> None:
    """Replace *tables* at the PostgreSQL *target* by those of the DuckDB file *stage*, in one transaction."""
    import psycopg
    from psycopg import sql

    from follicle.cdm.pg import split_url

    url, schema_name = split_url(target)
    try:
        conn = psycopg.connect(url)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to {redact(target)}: {str(exc).strip()}") from exc
    duck = open_duckdb(str(stage), read_only=True)
    statements = dict(zip(schema.tables("5.4"), schema.create_statements(
        "5.4", "postgres", schema=sql.Identifier(schema_name).as_string(conn), not_null=False), strict=True))
    try:
        with conn.transaction(), conn.cursor() as cur, tempfile.TemporaryDirectory() as tmp:
            cur.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'person'",
                        (schema_name,))
            if cur.fetchone() is None:
                raise DatabaseError(f"{redact(target)} holds no CDM (no person table): load the CDM first")
            for table in tables:
                cur.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
                            (schema_name, table))
                ident = sql.SQL("{}.{}").format(sql.Identifier(schema_name), sql.Identifier(table))
                if cur.fetchone() is None:
                    cur.execute(statements[table].replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1))
                else:
                    cur.execute(sql.SQL("TRUNCATE {}").format(ident))
                cols = [c for c, _, _ in schema.tables("5.4")[table]]
                csv_path = Path(tmp) / f"{table}.csv"
                duck.execute(f"COPY {table} TO '{csv_path}' (FORMAT csv, HEADER false)")
                copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
                    ident, sql.SQL(", ").join(map(sql.Identifier, cols)))
                with cur.copy(copy) as cp, csv_path.open("rb") as fh:
                    while chunk := fh.read(1 << 20):
                        cp.write(chunk)
                csv_path.unlink()
    except psycopg.Error as exc:
        raise DatabaseError(f"vocabulary load into {redact(target)} failed, nothing written: {str(exc).strip()}") from exc
    finally:
        duck.close()
        conn.close()


__all__ = ["VocabularyLoadResult", "load_vocabulary"]
