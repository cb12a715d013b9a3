"""The OMOP CDM schema from the official DDL (OHDSI/CommonDataModel, see ddl/PROVENANCE.md)."""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

CDM_VERSIONS = ("5.4", "5.3")
_DDL_DIALECT = {"duckdb": "duckdb", "postgres": "postgresql"}
_CREATE = re.compile(r"CREATE TABLE @cdmDatabaseSchema\.(\w+)\s*\((.*?)\);", re.S)


def ddl_text(version: str = "5.4", dialect: str = "duckdb", part: str = "ddl") -> str:
    """The raw official DDL file for *version*, *dialect* and *part* (``ddl`` or ``primary_keys``)."""
    if version not in CDM_VERSIONS:
        raise ValueError(f"cdm_version must be one of {CDM_VERSIONS}; got {version!r}")
    name = f"OMOPCDM_{_DDL_DIALECT[dialect]}_{version}_{part}.sql"
    return files("follicle.cdm").joinpath("ddl", name).read_text()


def create_statements(version: str = "5.4", dialect: str = "duckdb", schema: str | None = None) -> list[str]:
    """One ``CREATE TABLE`` statement per CDM table, with the schema placeholder filled in."""
    prefix = f"{schema}." if schema else ""
    return [
        f"CREATE TABLE {prefix}{name} ({body})"
        for name, body in _CREATE.findall(ddl_text(version, dialect))
    ]


@cache
def tables(version: str = "5.4") -> dict[str, list[tuple[str, str, bool]]]:
    """Table name -> list of (column, DDL type, required) in DDL order (DuckDB flavour)."""
    out: dict[str, list[tuple[str, str, bool]]] = {}
    for name, body in _CREATE.findall(ddl_text(version, "duckdb")):
        cols = []
        for line in body.split(",\n"):
            parts = line.strip().split()
            if len(parts) < 2:
                continue
            cols.append((parts[0], parts[1], "NOT NULL" in line))
        out[name] = cols
    return out
