"""Content fingerprints of a CDM, computed inside the database (no rows reach Python).

Every CDM table present gets a content hash: each row is written as a canonical text (columns in
name order, each cast to text, NULL as ``\\N``, floats as integers of 1e-6 units so engines agree),
hashed with MD5 in the database, and the first 16 hex digits of the row hashes are summed as two
32-bit integers. The sums, with the row count, make the table's hash: it changes when any value of
any row changes, does not depend on the order of rows, and the same data on DuckDB and PostgreSQL
give the same hash. One ``UNION ALL`` query computes every table asked for. On DuckDB the cache key uses the engine's
own row hash instead (``portable=False``: ten times faster, engine-specific).

:func:`fingerprint` hashes the table hashes (plus ``cdm_source``) into one string recorded with
results; :func:`table_hashes` gives the per-table hashes that the study pipeline puts in the cache
key of each step (see :mod:`follicle.run.cache`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import ibis
import ibis.expr.datatypes as dt
from ibis.backends import BaseBackend

from follicle.cdm import schema
from follicle.cdm.connect import connect, list_tables

_HEX = "0123456789abcdef"
#: Scale of floating-point columns before they are hashed (values differing below 1e-6 hash alike).
FLOAT_SCALE = 1_000_000


@ibis.udf.scalar.builtin(name="md5")
def _md5(value: str) -> str:  # pragma: no cover - compiled to the engine's MD5, never called in Python
    """The engine's MD5 (hex text); DuckDB and PostgreSQL both have it."""


def _as_text(col: ibis.Value, dtype: dt.DataType) -> ibis.Value:
    if dtype.is_floating() or dtype.is_decimal():
        col = (col.cast("float64") * FLOAT_SCALE).round().cast("int64")
    elif dtype.is_timestamp():
        col = col.cast(dt.Timestamp()).strftime("%Y-%m-%d %H:%M:%S")
    elif dtype.is_date():
        col = col.strftime("%Y-%m-%d")
    elif dtype.is_boolean():
        col = col.ifelse(ibis.literal("t"), ibis.literal("f"))
    return col.cast("string").fill_null("\\N")


def _digit_sums(h: ibis.StringValue) -> dict[str, ibis.IntegerValue]:
    """Sum over rows of each of the first 16 hex digits of *h* (portable SQL, no overflow);
    sum_i 16**(7 - i % 8) * d_i gives the sums of the two 32-bit halves of the row hashes."""
    return {f"d{i}": ibis.literal(_HEX).find(h.substr(i, 1)).sum().cast("int64") for i in range(16)}


def _int(value: object) -> int:
    """An aggregate as int; the sum over an empty table (NULL, NaN in pandas) is 0."""
    return 0 if value is None or value != value else int(value)  # type: ignore[call-overload]


def _halves(row: object) -> tuple[int, int]:
    d = [_int(getattr(row, f"d{i}")) for i in range(16)]
    return (sum(d[i] * 16 ** (7 - i) for i in range(8)), sum(d[8 + i] * 16 ** (7 - i) for i in range(8)))


def _table_expr(con: BaseBackend, name: str, columns: Iterable[str] | None, portable: bool) -> ibis.Table:
    t = con.table(name)
    names = sorted(t.columns if columns is None else [c for c in columns if c in t.columns])
    if not portable and names:
        # the engine's own 64-bit row hash (DuckDB: ~10 M rows/s against ~1 M for MD5 of the text)
        hashed = t.select(h=ibis.struct({c: t[c] for c in names}).hash())
        return hashed.aggregate(
            name=ibis.literal(name), rows=hashed.count().cast("int64"),
            h1=(hashed.h % 4294967296).sum().cast("int64"), h2=(hashed.h // 4294967296).sum().cast("int64"),
            columns=ibis.literal("native:" + ",".join(names)),
            **{f"d{i}": ibis.literal(0, "int64") for i in range(16)},
        )
    if names:
        row = ibis.literal("|").join([_as_text(t[c], t[c].type()) for c in names])
    else:
        row = ibis.literal("")
    hashed = t.select(h=_md5(row))  # one MD5 per row, read by the digit sums below
    h = hashed.h
    return hashed.aggregate(
        name=ibis.literal(name), rows=hashed.count().cast("int64"),
        h1=ibis.literal(0, "int64"), h2=ibis.literal(0, "int64"),
        columns=ibis.literal(",".join(names)), **_digit_sums(h),
    )


def native_hash(con: BaseBackend) -> bool:
    """True when the engine's own row hash can be used (DuckDB); else MD5 of the row text."""
    return getattr(con, "name", "") == "duckdb"


def table_hashes(
    con: BaseBackend, tables: dict[str, Iterable[str] | None] | Iterable[str] | None = None, *, portable: bool = True,
) -> dict[str, str]:
    """Per-table content hash (hex) of *tables* present in the CDM (default: every CDM table).

    *tables* may map a table to the columns to cover (None = all columns). A table asked for but
    absent gets the hash ``"absent"``, so that creating it later changes the key too. With
    ``portable=False`` an engine with a native row hash (DuckDB) uses it: about ten times faster,
    but the hashes then differ between engines (the cache key does not need them to agree).
    """
    portable = portable or not native_hash(con)
    present = set(list_tables(con))
    known = set(schema.tables("5.4")) | set(schema.tables("5.3"))
    if tables is None:
        wanted: dict[str, Iterable[str] | None] = {n: None for n in sorted(present & known)}
    elif isinstance(tables, dict):
        wanted = dict(tables)
    else:
        wanted = {n: None for n in tables}
    parts = [_table_expr(con, n, cols, portable) for n, cols in sorted(wanted.items()) if n in present]
    out = {n: "absent" for n in wanted if n not in present}
    if parts:
        for row in con.execute(ibis.union(*parts)).itertuples():
            h1, h2 = (_int(row.h1), _int(row.h2)) if row.columns.startswith("native:") else _halves(row)
            text = json.dumps([row.name, _int(row.rows), h1, h2, row.columns])
            out[row.name] = hashlib.sha256(text.encode()).hexdigest()[:32]
    return dict(sorted(out.items()))


def contents(con: BaseBackend) -> dict:
    """What the fingerprint hashes: every CDM table's content hash, and the rows of cdm_source."""
    out: dict = {"tables": table_hashes(con)}
    if "cdm_source" in set(list_tables(con)):
        src = con.table("cdm_source")
        cols = [c for c in ("cdm_source_name", "cdm_source_abbreviation", "cdm_release_date", "cdm_version",
                            "vocabulary_version") if c in src.schema().names]
        rows = src.select(*[src[c].cast("string").name(c) for c in cols]).execute()
        out["cdm_source"] = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows.to_dict("records"))
    return out


def combine(hashes: dict[str, str]) -> str:
    """One SHA-256 (hex) over named hashes (order-independent)."""
    return hashlib.sha256(json.dumps(dict(sorted(hashes.items()))).encode()).hexdigest()


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
