"""Connections to an OMOP CDM: a DuckDB file (default), a PostgreSQL URL or Spark, through Ibis."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import ibis
from ibis.backends import BaseBackend

from follicle.errors import DatabaseError

POSTGRES_SCHEMES = ("postgresql", "postgres")
SPARK_SCHEMES = ("spark", "sc")


def dialect_of(target: str | Path) -> str:
    """The SQL dialect of a target: ``"postgres"`` for a postgresql:// URL, ``"spark"`` for
    ``spark:///DIR`` or ``sc://HOST:PORT``, else ``"duckdb"``."""
    scheme = urlparse(str(target)).scheme
    if scheme in SPARK_SCHEMES:
        return "spark"
    return "postgres" if scheme in POSTGRES_SCHEMES else "duckdb"


#: DuckDB draws a progress bar on stdout for queries over 2 s, even into a pipe: it would corrupt --json
QUIET = "SET enable_progress_bar = false"


def open_duckdb(path: str | Path, *, read_only: bool = False) -> Any:
    """A plain DuckDB connection to *path* (bulk loading and staging), without the progress bar."""
    import duckdb

    con = duckdb.connect(str(path), read_only=read_only)
    con.execute(QUIET)
    return con


def connect(target: str | Path, *, read_only: bool = False) -> BaseBackend:
    """Open an Ibis connection to *target* (a DuckDB file path, a ``postgresql://`` URL or Spark).

    Parameters
    ----------
    target : str or Path
        A DuckDB file, ``postgresql://user:pw@host:port/db`` (``.../db/schema`` for a schema),
        ``spark:///ABS/DIR`` (local Spark over the Parquet warehouse in DIR) or ``sc://HOST:PORT``
        (Spark Connect); see :mod:`follicle.cdm.spark`.
    read_only : bool
        Open a DuckDB file read-only (it must then exist; the error names the path).

    Returns
    -------
    ibis.backends.BaseBackend
        The connection; its tables are the CDM's (``con.table("person")``).

    Raises
    ------
    DatabaseError
        The file is missing or the server cannot be reached (the message hides any password).

    Examples
    --------
    >>> con = connect(":memory:")
    >>> con.name
    'duckdb'
    """
    target = str(target)
    try:
        if dialect_of(target) == "postgres":
            return ibis.connect(target)
        if dialect_of(target) == "spark":
            from follicle.cdm.spark import connect_spark

            return connect_spark(target)
        path = Path(target)
        if read_only and not path.exists():
            raise DatabaseError(f"database file not found: {path}")
        con = ibis.duckdb.connect(str(path), read_only=read_only)
        con.raw_sql(QUIET)
        return con
    except DatabaseError:
        raise
    except Exception as exc:  # driver errors differ by backend; report them uniformly
        raise DatabaseError(f"cannot connect to {redact(target)}: {exc}") from exc


def redact(target: str) -> str:
    """The target with any password (or a Spark Connect URL's ``;token=``) replaced by ``***``
    (for messages and results).

    >>> redact("sc://host:443/;token=dapi123;x-databricks-cluster-id=0101")
    'sc://host:443/;token=***;x-databricks-cluster-id=0101'
    """
    parsed = urlparse(target)
    if parsed.scheme == "sc":
        return ";".join("token=***" if p.startswith("token=") else p for p in target.split(";"))
    if parsed.password:
        return target.replace(f":{parsed.password}@", ":***@")
    return target


def list_tables(con: BaseBackend) -> list[str]:
    """Names of the tables in the connection's current schema.

    ``BaseBackend.list_tables`` of ibis-framework 12.0.0 calls ``fetch_arrow_table`` on a DuckDB
    2.0 connection, which no longer has it; read DuckDB's catalog directly there.
    """
    try:
        return list(con.list_tables())
    except AttributeError:
        if con.name != "duckdb":
            raise
        rows = con.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_catalog = current_database()"
        ).fetchall()
        return sorted(r[0] for r in rows)
