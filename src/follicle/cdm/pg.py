"""PostgreSQL targets: copy a staged DuckDB CDM into a schema in one transaction (bulk COPY).

A target URL ``postgresql://user:pw@host:port/database`` uses the ``public`` schema;
``postgresql://.../database/schema`` uses (and creates) *schema*, the same convention as
``ibis.connect``. Either every table is created and filled, or nothing changes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from follicle.cdm import schema as cdm_schema
from follicle.cdm.connect import open_duckdb, redact
from follicle.errors import DatabaseError


def split_url(target: str) -> tuple[str, str]:
    """(connection URL without the schema part, schema name) of a postgresql:// *target*."""
    parsed = urlparse(target)
    database, _, schema = parsed.path.lstrip("/").partition("/")
    return urlunparse(parsed._replace(path=f"/{database}")), (schema or "public")


def copy_to_postgres(
    stage: Path,
    target: str,
    version: str,
    *,
    overwrite: bool = False,
    not_null: bool = True,
) -> dict[str, int]:
    """Create the CDM tables at *target* and fill them from the DuckDB file *stage*; rows per table."""
    import psycopg
    from psycopg import sql

    url, schema = split_url(target)
    names = list(cdm_schema.tables(version))
    counts: dict[str, int] = {}
    try:
        conn = psycopg.connect(url)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to {redact(target)}: {str(exc).strip()}") from exc
    duck = open_duckdb(str(stage), read_only=True)
    try:
        with conn.transaction(), conn.cursor() as cur, tempfile.TemporaryDirectory() as tmp:
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_name = ANY(%s)",
                (schema, names),
            )
            existing = [r[0] for r in cur.fetchall()]
            if existing and not overwrite:
                raise DatabaseError(
                    f"{redact(target)} already holds CDM tables ({', '.join(sorted(existing)[:5])}, ...); "
                    "use --overwrite to replace them"
                )
            for name in existing:
                cur.execute(sql.SQL("DROP TABLE {}.{} CASCADE").format(sql.Identifier(schema), sql.Identifier(name)))
            quoted = sql.Identifier(schema).as_string(conn)
            for stmt in cdm_schema.create_statements(version, "postgres", schema=quoted, not_null=not_null):
                cur.execute(stmt)
            for name in names:
                n = duck.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                counts[name] = int(n)
                if not n:
                    continue
                cols = [c for c, _, _ in cdm_schema.tables(version)[name]]
                csv_path = Path(tmp) / f"{name}.csv"
                duck.execute(f"COPY {name} TO '{csv_path}' (FORMAT csv, HEADER false)")
                copy = sql.SQL("COPY {}.{} ({}) FROM STDIN (FORMAT csv)").format(
                    sql.Identifier(schema), sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, cols))
                )
                with cur.copy(copy) as cp, csv_path.open("rb") as fh:
                    while chunk := fh.read(1 << 20):
                        cp.write(chunk)
                csv_path.unlink()
    except psycopg.Error as exc:
        message = f"PostgreSQL load into {redact(target)} failed, nothing written: {str(exc).strip()}"
        raise DatabaseError(message) from exc
    finally:
        duck.close()
        conn.close()
    return counts
