"""Load a folder (or .zip) of OMOP tables as CSV or Parquet into a new CDM, atomically.

Every table is read by DuckDB's native reader with the column types of the official DDL
(fast), into a staging DuckDB file. A DuckDB target is that file, renamed into place when
complete; a PostgreSQL target receives it by COPY in one transaction; a local Spark target
(``spark:///DIR``) receives it as Parquet folders swapped into place by rename. A file DuckDB refuses is
read again by :mod:`follicle.cdm.validate` to name the line and column at fault. Primary keys
are not enforced and NOT NULL is relaxed, so data load as they are and ``cdm check`` reports
their quirks (GiBleed has duplicate keys).
"""

from __future__ import annotations

import csv
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from follicle.tempfiles import remove_stale
from follicle.cdm import schema, source
from follicle.cdm.connect import dialect_of, open_duckdb, redact
from follicle.cdm.validate import diagnose_csv, duckdb_message
from follicle.cdm.write import copy_stage
from follicle.errors import DatabaseError, InputError

#: Tables a source must hold to be an OMOP CDM at all.
REQUIRED_TABLES = ("person", "observation_period")

Progress = Callable[[str, int], None]


@dataclass
class LoadResult:
    """What a load did: rows per table, and what it skipped or renamed on the way."""

    target: str
    cdm_version: str
    rows: dict[str, int] = field(default_factory=dict)
    skipped_files: list[str] = field(default_factory=list)
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    renamed_columns: dict[str, dict[str, str]] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def load_cdm(
    src: str | Path,
    target: str | Path,
    *,
    version: str = "5.4",
    overwrite: bool = False,
    progress: Progress | None = None,
) -> LoadResult:
    """Load the OMOP tables of *src* into a new CDM *version* at *target*; return what was loaded.

    Parameters
    ----------
    src : str or Path
        A folder (or .zip) of OMOP tables as CSV or Parquet files, named after their tables
        (``person.csv`` or ``PERSON.csv``).
    target : str or Path
        A new DuckDB file, or a ``postgresql://`` URL.
    version : {"5.4", "5.3"}
        CDM version of the tables created (columns of the other version are renamed).
    overwrite : bool
        Replace an existing CDM at *target*.
    progress : callable, optional
        Called with (table, rows) after each table.

    Returns
    -------
    LoadResult
        Rows per table, files skipped, columns renamed or ignored, seconds.

    Raises
    ------
    InputError
        A bad file, naming the file, line and column of the first bad values; no database file
        or table is left behind.
    """
    schema.tables(version)  # validates the version
    start = time.perf_counter()
    result = LoadResult(target=redact(str(target)), cdm_version=version)
    remote = dialect_of(target) in ("postgres", "spark")  # staged in a temporary DuckDB file, then copied
    if not remote:
        path = Path(target)
        if not path.parent.is_dir():
            raise DatabaseError(f"cannot create {path}: folder {path.parent} does not exist")
        if path.exists() and not overwrite:
            raise DatabaseError(f"database file already exists: {path} (use --overwrite to replace it)")
    with source.opened(src) as root:
        known = set(schema.tables("5.4")) | set(schema.tables("5.3"))
        found = source.find_tables(root, known)
        missing = [t for t in REQUIRED_TABLES if t not in found.files]
        if missing:
            raise InputError(
                f"{src} is not an OMOP CDM: no file for table(s) {', '.join(missing)} "
                f"(expected e.g. {missing[0]}.csv or {missing[0].upper()}.csv)"
            )
        target_tables = schema.tables(version)
        result.skipped_files = found.unknown + [
            f"{p.name} (table {t} is not in CDM {version})"
            for t, (p, _) in found.files.items()
            if t not in target_tables
        ]
        files = {t: v for t, v in found.files.items() if t in target_tables}
        if remote:
            with tempfile.TemporaryDirectory(prefix="follicle-stage-") as tmp:
                stage = Path(tmp) / "stage.duckdb"
                _stage(files, stage, version, result, progress)
                copy_stage(stage, str(target), version, overwrite=overwrite, not_null=False)
        else:
            tmp_path = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            remove_stale(path.parent, prefix=f".{path.name}.")  # left by a killed load
            try:
                _stage(files, tmp_path, version, result, progress)
                os.replace(tmp_path, path)
            finally:
                tmp_path.unlink(missing_ok=True)
                Path(f"{tmp_path}.wal").unlink(missing_ok=True)
    result.seconds = round(time.perf_counter() - start, 3)
    return result


def _stage(
    files: dict[str, tuple[Path, str]], path: Path, version: str, result: LoadResult, progress: Progress | None
) -> None:
    """Build the whole CDM in the DuckDB file *path* (removed by the caller on failure)."""
    path.unlink(missing_ok=True)
    con = open_duckdb(str(path))
    try:
        for stmt in schema.create_statements(version, "duckdb", not_null=False):
            con.execute(stmt)
        for table in schema.tables(version):
            if table not in files:
                continue
            file, fmt = files[table]
            loader = _load_csv if fmt == "csv" else _load_parquet
            n = loader(con, table, file, version, result)
            result.rows[table] = n
            if progress:
                progress(table, n)
        _check_periods(con, files)
        con.execute("CHECKPOINT")
    except duckdb.Error as exc:  # anything not diagnosed above is still reported as a load error
        raise DatabaseError(f"load failed: {str(exc).splitlines()[0]}") from exc
    finally:
        con.close()


def _mapping(table: str, names: list[str], file: Path, version: str, result: LoadResult) -> list[str | None]:
    """Target column for each source column (None: not a column of *table*, ignored)."""
    cmap = schema.column_map(table, version)
    out: list[str | None] = []
    seen: dict[str, str] = {}
    for raw in names:
        key = raw.strip().lower()
        col = cmap.get(key)
        if col is None:
            result.ignored_columns.setdefault(table, []).append(raw)
            out.append(None)
        elif col in seen:
            raise InputError(f"{file.name}: columns {seen[col]!r} and {raw!r} both give {table}.{col}")
        else:
            seen[col] = raw
            if col != key:
                result.renamed_columns.setdefault(table, {})[key] = col
            out.append(col)
    return out


def _no_columns(file: Path, table: str, header: list[str]) -> InputError:
    """A file whose header names no column of its table would load as 0 rows: refuse it."""
    shown = ", ".join(repr(h) for h in header[:8]) + (", ..." if len(header) > 8 else "")
    return InputError(f"{file.name}: no column of its header matches a column of CDM table {table} "
                      f"(header: {shown}); is the delimiter a comma and the first line the header?")


def _read_header(file: Path) -> list[str]:
    try:
        with file.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), None)
    except UnicodeDecodeError as exc:
        raise InputError(f"{file.name}: not a UTF-8 text file (byte {exc.start}); is it really a CSV?") from exc
    except (OSError, csv.Error) as exc:
        raise InputError(f"{file.name}: cannot read file ({getattr(exc, 'strerror', None) or exc})") from exc
    if not header:
        raise InputError(f"{file.name}: empty file (no header line with column names)")
    return header


def _load_csv(con: duckdb.DuckDBPyConnection, table: str, file: Path, version: str, result: LoadResult) -> int:
    header = _read_header(file)
    targets = _mapping(table, header, file, version, result)
    ddl = {c: t for c, t, _ in schema.tables(version)[table]}
    types = [schema.duckdb_type(ddl[c]) if c else "VARCHAR" for c in targets]
    # dates are read as timestamps (the table casts them to DATE): exports write "2010-01-01" or
    # "2010-01-01 00:00:00" for the same column, and both are fine
    read_types = ["TIMESTAMP" if t == "DATE" else t for t in types]
    # Source columns get neutral names c0, c1, ... so no text from the file reaches the SQL.
    struct = ", ".join(f"'c{i}': '{t}'" for i, t in enumerate(read_types))
    pairs = [(c, f"c{i}") for i, c in enumerate(targets) if c]
    if not pairs:
        raise _no_columns(file, table, header)
    sql = (
        f"INSERT INTO {table} ({', '.join(schema.quote(c) for c, _ in pairs)}) SELECT {', '.join(s for _, s in pairs)} "
        f"FROM read_csv(?, header = true, auto_detect = false, delim = ',', quote = '\"', escape = '\"', "
        f"allow_quoted_nulls = false, columns = {{{struct}}})"
    )
    try:
        return int(con.execute(sql, [str(file)]).fetchone()[0])
    except duckdb.Error as exc:
        problems = diagnose_csv(file, types)
        if problems:
            raise InputError(f"cannot load {file.name} into {table}", problems=problems) from exc
        raise InputError(f"cannot load {file.name} into {table}: {duckdb_message(file, exc)}") from exc


def _load_parquet(con: duckdb.DuckDBPyConnection, table: str, file: Path, version: str, result: LoadResult) -> int:
    glob = str(file / "*.parquet") if file.is_dir() else str(file)
    try:
        names = [d[0] for d in con.execute("SELECT * FROM read_parquet(?) LIMIT 0", [glob]).description]
    except duckdb.Error as exc:
        raise InputError(f"{file.name}: not a readable Parquet file ({str(exc).splitlines()[0]})") from exc
    targets = _mapping(table, names, file, version, result)
    ddl = {c: t for c, t, _ in schema.tables(version)[table]}
    pairs = [(c, schema.quote(n), schema.duckdb_type(ddl[c])) for n, c in zip(names, targets, strict=True) if c]
    if not pairs:
        raise _no_columns(file, table, names)
    sql = (
        f"INSERT INTO {table} ({', '.join(schema.quote(c) for c, _, _ in pairs)}) "
        f"SELECT {', '.join(f'CAST({q} AS {t})' for _, q, t in pairs)} FROM read_parquet(?)"
    )
    try:
        return int(con.execute(sql, [glob]).fetchone()[0])
    except duckdb.Error as exc:
        problems = []
        for col, q, t in pairs:
            rows = con.execute(
                f"SELECT file_row_number, CAST({q} AS VARCHAR) FROM read_parquet(?, file_row_number = true) "
                f"WHERE {q} IS NOT NULL AND TRY_CAST({q} AS {t}) IS NULL ORDER BY 1 LIMIT 3",
                [glob],
            ).fetchall()
            problems += [f"{file.name}, row {r + 1}, column {col}: {v[:40]!r} is not {t}" for r, v in rows]
        if problems:
            raise InputError(f"cannot load {file.name} into {table}", problems=problems) from exc
        raise InputError(f"cannot load {file.name} into {table}: {duckdb_message(file, exc)}") from exc


def _check_periods(con: duckdb.DuckDBPyConnection, files: dict[str, tuple[Path, str]]) -> None:
    """Refuse observation periods that end before they start: every time at risk would be wrong."""
    rows = con.execute(
        "SELECT rowid, observation_period_start_date, observation_period_end_date FROM observation_period "
        "WHERE observation_period_end_date < observation_period_start_date ORDER BY rowid LIMIT 10"
    ).fetchall()
    if not rows:
        return
    file, fmt = files["observation_period"]
    where = (lambda r: f"row {r + 1} (line {r + 2})") if fmt == "csv" else (lambda r: f"row {r + 1}")
    raise InputError(
        f"cannot load {file.name}: observation periods end before they start",
        problems=[
            f"{file.name}, {where(r)}, column observation_period_end_date: {end} is before "
            f"observation_period_start_date {start}"
            for r, start, end in rows
        ],
    )


__all__ = ["LoadResult", "load_cdm", "REQUIRED_TABLES"]
