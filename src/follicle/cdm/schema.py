"""The OMOP CDM schema from the official DDL (OHDSI/CommonDataModel, see ddl/PROVENANCE.md).

Also holds the v5.3 <-> v5.4 column renames, derived by diffing the two official DDLs in
``ddl/`` (the list agrees with OHDSI's "Changes in CDM v5.4" page):

==================  =============================  ============================
table               v5.3 column                    v5.4 column
==================  =============================  ============================
visit_occurrence    admitting_source_concept_id    admitted_from_concept_id
visit_occurrence    admitting_source_value         admitted_from_source_value
visit_occurrence    discharge_to_concept_id        discharged_to_concept_id
visit_occurrence    discharge_to_source_value      discharged_to_source_value
visit_detail        admitting_source_concept_id    admitted_from_concept_id
visit_detail        admitting_source_value         admitted_from_source_value
visit_detail        discharge_to_concept_id        discharged_to_concept_id
visit_detail        discharge_to_source_value      discharged_to_source_value
visit_detail        visit_detail_parent_id         parent_visit_detail_id
cost                reveue_code_source_value       revenue_code_source_value
==================  =============================  ============================

The last row is a misspelling in CDM v5.3.0 exports (GiBleed has it), not a DDL change.
Columns only in v5.4 (e.g. ``procedure_occurrence.procedure_end_date``,
``cdm_source.cdm_version_concept_id``, ``metadata.metadata_id``) load as NULL from v5.3 data;
v5.4-only tables are ``cohort``, ``episode`` and ``episode_event``; the v5.3-only table
``attribute_definition`` has no v5.4 counterpart and is skipped when loading into v5.4.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

CDM_VERSIONS = ("5.4", "5.3")
_DDL_DIALECT = {"duckdb": "duckdb", "postgres": "postgresql"}
_CREATE = re.compile(r"CREATE TABLE @cdmDatabaseSchema\.(\w+)\s*\((.*?)\);", re.S)
_PK = re.compile(r"ALTER TABLE @cdmDatabaseSchema\.(\w+) ADD CONSTRAINT \w+ PRIMARY KEY \((\w+)\);")

#: (table, v5.3 column) -> v5.4 column; table ``*`` applies to every table.
RENAMES_53_TO_54: dict[tuple[str, str], str] = {
    **{
        (t, old): new
        for t in ("visit_occurrence", "visit_detail")
        for old, new in (
            ("admitting_source_concept_id", "admitted_from_concept_id"),
            ("admitting_source_value", "admitted_from_source_value"),
            ("discharge_to_concept_id", "discharged_to_concept_id"),
            ("discharge_to_source_value", "discharged_to_source_value"),
        )
    },
    ("visit_detail", "visit_detail_parent_id"): "parent_visit_detail_id",
    ("cost", "reveue_code_source_value"): "revenue_code_source_value",
}


def _check_version(version: str) -> None:
    if version not in CDM_VERSIONS:
        raise ValueError(f"cdm_version must be one of {CDM_VERSIONS}; got {version!r}")


def ddl_text(version: str = "5.4", dialect: str = "duckdb", part: str = "ddl") -> str:
    """The raw official DDL file for *version*, *dialect* and *part* (``ddl`` or ``primary_keys``)."""
    _check_version(version)
    name = f"OMOPCDM_{_DDL_DIALECT[dialect]}_{version}_{part}.sql"
    return files("follicle.cdm").joinpath("ddl", name).read_text()


def create_statements(
    version: str = "5.4",
    dialect: str = "duckdb",
    schema: str | None = None,
    *,
    not_null: bool = True,
) -> list[str]:
    """One ``CREATE TABLE`` statement per CDM table, with the schema placeholder filled in.

    ``not_null=False`` drops the DDL's NOT NULL constraints: the loader takes data as it exists
    in the field and leaves required-field completeness to ``cdm check`` (as OHDSI's
    DataQualityDashboard does with its ``isRequired`` checks).
    """
    prefix = f"{schema}." if schema else ""
    out = []
    for name, body in _CREATE.findall(ddl_text(version, dialect)):
        if not not_null:
            body = body.replace("NOT NULL", "NULL")
        out.append(f"CREATE TABLE {prefix}{name} ({body})")
    return out


@cache
def tables(version: str = "5.4") -> dict[str, list[tuple[str, str, bool]]]:
    """Table name -> list of (column, DDL type, required) in DDL order (DuckDB flavour).

    Column names are unquoted (the DDL quotes ``note_nlp."offset"``); quote them in SQL.
    """
    out: dict[str, list[tuple[str, str, bool]]] = {}
    for name, body in _CREATE.findall(ddl_text(version, "duckdb")):
        cols = []
        for line in body.split(",\n"):
            parts = line.strip().split()
            if len(parts) < 2:
                continue
            cols.append((parts[0].strip('"'), parts[1], "NOT NULL" in line))
        out[name] = cols
    return out


@cache
def primary_keys(version: str = "5.4") -> dict[str, str]:
    """Table name -> primary-key column, from the official primary_keys DDL."""
    return dict(_PK.findall(ddl_text(version, "duckdb", "primary_keys")))


def duckdb_type(ddl_type: str) -> str:
    """The DuckDB type used to read a column declared *ddl_type* in the DDL.

    ``NUMERIC`` without precision is DECIMAL(18,3) in DuckDB; it is read as DOUBLE and cast
    by the table on insert.
    """
    t = ddl_type.lower()
    if t.startswith("varchar") or t == "text":
        return "VARCHAR"
    return {"integer": "INTEGER", "bigint": "BIGINT", "date": "DATE", "timestamp": "TIMESTAMP",
            "numeric": "DOUBLE", "float": "DOUBLE"}.get(t, t.upper())


def column_map(table: str, version: str = "5.4") -> dict[str, str]:
    """Lower-case source column name -> column of *table* in CDM *version*.

    Holds the table's own columns and the names it had in the other version (see the module
    docstring), so v5.3 files load into v5.4 and the other way round.
    """
    _check_version(version)
    own = {c: c for c, _, _ in tables(version).get(table, [])}
    out = dict(own)
    for (t, old), new in RENAMES_53_TO_54.items():
        if t != table:
            continue
        if new in own:
            out.setdefault(old, new)
        elif old in own:
            out.setdefault(new, old)
    return out


def quote(name: str) -> str:
    """*name* as a double-quoted SQL identifier (DuckDB and PostgreSQL)."""
    return '"' + name.replace('"', '""') + '"'
