"""Where ``follicle synth`` streams its tables: a DuckDB CDM, a PostgreSQL CDM or a folder of Parquet.

A sink receives the clinical tables chunk after chunk (:meth:`Sink.write`) and the vocabulary once at
the end, each chunk appended so that only one chunk is ever in memory. The output is built under a
temporary name beside the target (``.<name>.tmp-<pid>``) and renamed into place by :meth:`Sink.commit`;
an error or a kill leaves the target as it was (a killed writer's temporary is removed by the next run).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from follicle.cdm import schema
from follicle.cdm.connect import dialect_of, open_duckdb
from follicle.errors import DatabaseError, InputError
from follicle.tempfiles import remove_stale

VERSION = "5.4"
MEMORY_LIMIT = "1GB"  # DuckDB's buffer pool while writing (appends from Arrow need little)


def _temporary(target: Path, overwrite: bool, what: str) -> Path:
    if not target.parent.is_dir():
        raise InputError(f"{what} {target}: folder {target.parent} does not exist")
    if target.exists() and not overwrite:
        raise InputError(f"{what} {target}: already exists (use --overwrite to replace it)")
    remove_stale(target.parent, prefix=f".{target.name}.")  # left by a killed writer
    return target.with_name(f".{target.name}.tmp-{os.getpid()}")


class Sink(ABC):
    """Appends chunks of CDM tables; :meth:`commit` puts the result in place, :meth:`abort` drops it."""

    rows: dict[str, int]

    @abstractmethod
    def write(self, tables: Mapping[str, pa.Table]) -> None:
        """Append one chunk of tables."""

    @abstractmethod
    def commit(self) -> None:
        """Put the whole output in place."""

    @abstractmethod
    def abort(self) -> None:
        """Drop everything written so far."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class DuckDbSink(Sink):
    """A new DuckDB CDM (official DDL), filled by appending Arrow tables."""

    def __init__(self, target: Path, *, overwrite: bool = False, final: bool = True) -> None:
        self.target = target
        self.tmp = _temporary(target, overwrite, "--db") if final else target
        self.tmp.unlink(missing_ok=True)
        self.rows = {}
        self.con = None
        try:
            self.con = open_duckdb(str(self.tmp))
            # DuckDB keeps written blocks cached up to 80 % of RAM by default: cap it so memory stays that of a chunk
            self.con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
            for stmt in schema.create_statements(VERSION, "duckdb"):
                self.con.execute(stmt)
        except BaseException:  # Ctrl-C or an error before the `with` block owns the sink: nothing left behind
            self.abort()
            raise
        self._columns = schema.tables(VERSION)

    def write(self, tables: Mapping[str, pa.Table]) -> None:
        for name, tbl in tables.items():
            cols = ", ".join(schema.quote(c) for c, _, _ in self._columns[name] if c in tbl.column_names)
            self.con.register("_follicle_chunk", tbl)
            try:
                self.con.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM _follicle_chunk")
            except duckdb.Error as exc:
                raise DatabaseError(f"cannot write table {name}: {str(exc).splitlines()[0]}") from exc
            finally:
                self.con.unregister("_follicle_chunk")
            self.rows[name] = self.rows.get(name, 0) + tbl.num_rows

    def close(self) -> None:
        self.con.execute("CHECKPOINT")
        self.con.close()

    def commit(self) -> None:
        self.close()
        if self.tmp != self.target:
            os.replace(self.tmp, self.target)

    def abort(self) -> None:
        try:
            if self.con is not None:
                self.con.close()
        finally:
            self.tmp.unlink(missing_ok=True)
            Path(f"{self.tmp}.wal").unlink(missing_ok=True)


class PostgresSink(DuckDbSink):
    """A PostgreSQL CDM: staged in a temporary DuckDB file, copied in one transaction at the end."""

    def __init__(self, url: str, *, overwrite: bool = False) -> None:
        self.url, self.overwrite = url, overwrite
        self.stage_dir = tempfile.TemporaryDirectory(prefix="follicle-stage-")
        super().__init__(Path(self.stage_dir.name) / "stage.duckdb", final=False)

    def commit(self) -> None:
        from follicle.cdm.pg import copy_to_postgres

        try:
            self.close()
            copy_to_postgres(self.tmp, self.url, VERSION, overwrite=self.overwrite)
        finally:
            self.stage_dir.cleanup()

    def abort(self) -> None:
        self.con.close()
        self.stage_dir.cleanup()


class ParquetSink(Sink):
    """A folder with one folder of part files per table (``person.parquet/part-00000.parquet``, ...),
    as ``follicle cdm load`` and Spark read it."""

    def __init__(self, target: Path, *, overwrite: bool = False) -> None:
        self.target = target
        self.tmp = _temporary(target, overwrite, "--parquet")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir()
        self.rows = {}
        self.parts: dict[str, int] = {}

    def write(self, tables: Mapping[str, pa.Table]) -> None:
        for name, tbl in tables.items():
            folder = self.tmp / f"{name}.parquet"
            folder.mkdir(exist_ok=True)
            part = self.parts.get(name, 0)
            pq.write_table(tbl, folder / f"part-{part:05d}.parquet")
            self.parts[name] = part + 1
            self.rows[name] = self.rows.get(name, 0) + tbl.num_rows

    def commit(self) -> None:
        old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
        if self.target.exists():
            os.replace(self.target, old)
        os.replace(self.tmp, self.target)
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink(missing_ok=True)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def open_sink(db: str | Path | None, parquet: Path | None, *, overwrite: bool = False) -> Sink:
    """The sink for ``--parquet`` when given, else for ``--db`` (a DuckDB file or a PostgreSQL URL)."""
    if parquet is not None:
        return ParquetSink(Path(parquet), overwrite=overwrite)
    if db is None:
        raise InputError("give --db or --parquet")
    dialect = dialect_of(db)
    if dialect == "postgres":
        return PostgresSink(str(db), overwrite=overwrite)
    if dialect != "duckdb":
        raise InputError(f"--db {db}: synth writes a DuckDB file or a postgresql:// URL; for a {dialect} "
                         "target write --parquet and load the folder with `follicle cdm load`")
    return DuckDbSink(Path(db), overwrite=overwrite)
