"""The files of an OHDSI Athena vocabulary download, and how to read them.

Athena (https://athena.ohdsi.org) delivers the standardized vocabularies as a zip of
tab-separated files with a header line, no quoting (a concept name may hold ``"``), and dates
written ``YYYYMMDD``: ``CONCEPT.csv``, ``CONCEPT_RELATIONSHIP.csv``, ``CONCEPT_ANCESTOR.csv``,
``CONCEPT_SYNONYM.csv``, ``CONCEPT_CLASS.csv``, ``DOMAIN.csv``, ``DRUG_STRENGTH.csv``,
``RELATIONSHIP.csv``, ``VOCABULARY.csv`` (plus ``CONCEPT_CPT4.csv`` and the CPT-4 tool, which are
not CDM tables). This module finds them and writes the DuckDB ``SELECT`` that reads each one
with the column types of the official DDL; :mod:`follicle.cdm.vocabulary` loads them.

References
----------
OHDSI. Athena, standardized vocabularies download (README.txt of a download: tab-delimited,
dates YYYYMMDD). OMOP CDM v5.4 DDL (vocabulary tables).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from follicle.cdm import schema
from follicle.errors import InputError

#: vocabulary tables of the CDM, in load order
VOCABULARY_TABLES = ("concept", "vocabulary", "domain", "concept_class", "relationship", "concept_relationship",
                     "concept_synonym", "concept_ancestor", "drug_strength")
#: the tables without which concept sets cannot be resolved properly (``cdm check`` warns)
CORE_VOCABULARY = ("concept", "concept_relationship", "concept_ancestor")
_DATE8 = re.compile(r"^\d{8}$")


@dataclass
class AthenaFiles:
    """The vocabulary files of a download: table -> (path, delimiter), and the files left aside."""

    root: Path
    files: dict[str, tuple[Path, str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def find_files(root: Path) -> AthenaFiles:
    """The vocabulary tables under *root* (file names matched case-insensitively, ``.csv`` or ``.tsv``)."""
    out = AthenaFiles(root)
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.startswith(".") or "__MACOSX" in path.parts:
            continue
        name = path.stem.lower()
        if path.suffix.lower() not in (".csv", ".tsv", ".txt") or name not in VOCABULARY_TABLES:
            out.skipped.append(str(path.relative_to(root)))
            continue
        if name in out.files:
            raise InputError(f"ambiguous download {root}: table {name} is given twice "
                             f"({out.files[name][0].name} and {path.name})")
        out.files[name] = (path, _delimiter(path))
    if "concept" not in out.files:
        raise InputError(f"{root} is not a vocabulary download: no CONCEPT.csv (expected the files of an Athena "
                         "download: CONCEPT.csv, CONCEPT_RELATIONSHIP.csv, CONCEPT_ANCESTOR.csv, ...)")
    return out


def _delimiter(path: Path) -> str:
    """Tab for an Athena file; a comma when the header holds commas and no tab (a re-saved file)."""
    header = header_of(path, "\t")
    return "," if len(header) == 1 and "," in header[0] else "\t"


def header_of(path: Path, delimiter: str) -> list[str]:
    """The column names of *path* (lower case), naming the file when it cannot be read."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            line = fh.readline().rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name}: not a UTF-8 text file (byte {exc.start}); is it an Athena vocabulary file?") from exc
    except OSError as exc:
        raise InputError(f"{path.name}: cannot read file ({exc.strerror or exc})") from exc
    if not line:
        raise InputError(f"{path.name}: empty file (no header line with column names)")
    return [c.strip().strip('"').lower() for c in line.split(delimiter)]


def select_sql(table: str, path: Path, delimiter: str) -> tuple[str, list[str]]:
    """``(SELECT ..., target columns)`` reading *path* into *table* in DuckDB (the file path is the
    single ``?`` parameter). Every column is read as text and cast to its DDL type; dates accept
    ``YYYYMMDD`` and ``YYYY-MM-DD``. Source columns get neutral names so no file text reaches SQL."""
    header = header_of(path, delimiter)
    ddl = {c: t for c, t, _ in schema.tables("5.4")[table]}
    missing = [c for c, _, required in schema.tables("5.4")[table] if required and c not in header]
    if missing:
        raise InputError(f"{path.name}: no column {', '.join(missing)} (a {table} file has "
                         f"{', '.join(ddl)})")
    struct = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header)))
    cols, exprs = [], []
    for i, name in enumerate(header):
        if name not in ddl:
            continue
        cols.append(name)
        exprs.append(_cast(f"c{i}", schema.duckdb_type(ddl[name])))
    sql = (f"SELECT {', '.join(exprs)} FROM read_csv(?, header = true, auto_detect = false, delim = '{delimiter}', "
           f"quote = '', escape = '', columns = {{{struct}}})")
    return sql, cols


def _cast(col: str, kind: str) -> str:
    if kind == "DATE":
        return (f"CASE WHEN regexp_full_match({col}, '[0-9]{{8}}') THEN CAST(strptime({col}, '%Y%m%d') AS DATE) "
                f"ELSE CAST({col} AS DATE) END")
    return f"CAST({col} AS {kind})" if kind != "VARCHAR" else col


def diagnose(table: str, path: Path, delimiter: str, *, limit: int = 10) -> list[str]:
    """Problems of one vocabulary file (line, column, value), found by reading it again in Python."""
    header = header_of(path, delimiter)
    kinds = {c: schema.duckdb_type(t) for c, t, _ in schema.tables("5.4")[table]}
    problems: list[str] = []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter, quoting=csv.QUOTE_NONE)
        next(reader, None)
        for line, row in enumerate(reader, start=2):
            if len(row) != len(header):
                problems.append(f"{path.name}, line {line}: {len(row)} fields, expected {len(header)}")
            else:
                for name, value in zip(header, row, strict=True):
                    if value and not _parses(value, kinds.get(name, "VARCHAR")):
                        problems.append(f"{path.name}, line {line}, column {name}: {value[:40]!r} is not "
                                        f"{'a date (YYYYMMDD)' if kinds[name] == 'DATE' else kinds[name].lower()}")
            if len(problems) >= limit:
                break
    return problems


def _parses(value: str, kind: str) -> bool:
    try:
        if kind in ("INTEGER", "BIGINT"):
            return abs(int(value)) < (2**31 if kind == "INTEGER" else 2**63)
        if kind == "DOUBLE":
            float(value)
        elif kind == "DATE":
            datetime.strptime(value, "%Y%m%d") if _DATE8.match(value) else datetime.fromisoformat(value)
    except ValueError:
        return False
    return True
