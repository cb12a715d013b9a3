"""A stable fingerprint of a CDM's contents, recorded with results to detect a changed CDM.

The hash covers, for every CDM table present, its row count and its latest date (the maximum
over its date columns), plus the rows of ``cdm_source``. It does not depend on the engine
(the same data on DuckDB and PostgreSQL give the same fingerprint) nor on the order of rows.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import ibis
from ibis.backends import BaseBackend

from follicle.cdm import schema
from follicle.cdm.connect import connect, list_tables


def contents(con: BaseBackend) -> dict:
    """The summary the fingerprint hashes: per table rows and max date, and cdm_source."""
    present = set(list_tables(con))
    known = set(schema.tables("5.4")) | set(schema.tables("5.3"))
    out: dict = {"tables": {}}
    dates = _date_columns(con)
    parts = []
    for name in sorted(present & known):
        # unbound tables: no per-table schema look-up (Ibis reads one per ``con.table`` call)
        t = ibis.table({c: "date" for c in dates.get(name, [])} or {"_": "int64"}, name=name)
        maxes = [t[c].cast("date").max() for c in dates.get(name, [])]
        max_date = (ibis.greatest(*maxes) if len(maxes) > 1 else maxes[0]) if maxes else ibis.null().cast("date")
        parts.append(t.aggregate(name=ibis.literal(name), rows=t.count().cast("int64"), max_date=max_date))
    if parts:  # one query (UNION ALL) for every table
        for row in con.execute(ibis.union(*parts)).itertuples():
            max_date = row.max_date
            out["tables"][row.name] = {
                "rows": int(row.rows),
                "max_date": None if max_date is None or max_date != max_date else str(max_date)[:10],
            }
    if "cdm_source" in present:
        src = con.table("cdm_source")
        cols = [c for c in ("cdm_source_name", "cdm_source_abbreviation", "cdm_release_date", "cdm_version",
                            "vocabulary_version") if c in src.schema().names]
        rows = src.select(*[src[c].cast("string").name(c) for c in cols]).execute()
        out["cdm_source"] = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows.to_dict("records"))
    return out


def _date_columns(con: BaseBackend) -> dict[str, list[str]]:
    """Table -> its date and timestamp columns, from information_schema (one query)."""
    cols = con.table("columns", database="information_schema")
    kind = cols.data_type.upper()
    rows = (
        cols.filter(
            cols.table_schema == con.current_database,
            cols.table_catalog == con.current_catalog,
            (kind == "DATE") | kind.startswith("TIMESTAMP"),
        )
        .select("table_name", "column_name")
        .order_by(["table_name", "column_name"])
        .execute()
    )
    out: dict[str, list[str]] = {}
    for table, column in zip(rows.table_name, rows.column_name, strict=True):
        out.setdefault(table, []).append(column)
    return out


def fingerprint(con_or_target: BaseBackend | str | Path) -> str:
    """SHA-256 (hex) of :func:`contents` of a connection or target (DuckDB path or PostgreSQL URL)."""
    if isinstance(con_or_target, (str, Path)):
        con = connect(con_or_target, read_only=True)
        try:
            data = contents(con)
        finally:
            con.disconnect()
    else:
        data = contents(con_or_target)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
