"""Find the file, line and column of a bad value once the fast bulk read has failed.

DuckDB's CSV reader loads the tables; when it refuses a file this slower pass reads that file
again to name every problem it can (up to ``limit``): wrong number of fields (a truncated or
mis-quoted file), text that is not UTF-8, and values that do not parse as the DDL type.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

_INT = re.compile(r"^\s*[+-]?\d+(\.0*)?\s*$")
_INT_RANGE = {"INTEGER": 2**31, "BIGINT": 2**63}


def _is_int(v: str, kind: str) -> bool:
    return bool(_INT.match(v)) and abs(int(float(v))) < _INT_RANGE[kind]


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _is_date(v: str) -> bool:
    try:
        datetime.fromisoformat(v.strip())
    except ValueError:
        return False
    return True


def _is_timestamp(v: str) -> bool:
    try:
        datetime.fromisoformat(v.strip())
    except ValueError:
        return False
    return True


_PARSERS: dict[str, tuple[str, Callable[[str], bool]]] = {
    "INTEGER": ("an integer", lambda v: _is_int(v, "INTEGER")),
    "BIGINT": ("an integer", lambda v: _is_int(v, "BIGINT")),
    "DOUBLE": ("a number", _is_float),
    "DATE": ("a date (YYYY-MM-DD)", _is_date),  # a date-time is accepted and truncated
    "TIMESTAMP": ("a timestamp (YYYY-MM-DD HH:MM:SS)", _is_timestamp),
}


def diagnose_csv(path: Path, types: list[str], *, limit: int = 10) -> list[str]:
    """Problems of CSV *path* whose columns (in file order) have DuckDB *types*; [] if none found."""
    problems: list[str] = []
    name = path.name
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None) or []
            for row_no, row in enumerate(reader, start=1):
                line = reader.line_num
                if len(row) != len(types):
                    problems.append(
                        f"{name}, row {row_no} (line {line}): {len(row)} fields, expected {len(types)} "
                        "(truncated or badly quoted row)"
                    )
                else:
                    for col, (value, kind) in enumerate(zip(row, types, strict=True)):
                        parser = _PARSERS.get(kind)
                        if value != "" and parser and not parser[1](value):
                            where = f"{name}, row {row_no} (line {line}), column {header[col]}"
                            problems.append(f"{where}: {value[:40]!r} is not {parser[0]}")
                if len(problems) >= limit:
                    break
    except UnicodeDecodeError as exc:
        problems.append(f"{name}: not a UTF-8 text file (byte {exc.start}: {exc.reason}); is it really a CSV?")
    except csv.Error as exc:
        problems.append(f"{name}: unreadable CSV ({exc})")
    except OSError as exc:
        problems.append(f"{name}: cannot read file ({exc.strerror or exc})")
    return problems


def duckdb_message(path: Path, exc: Exception) -> str:
    """The useful first lines of a DuckDB read error, prefixed by the file name."""
    text = str(exc)
    keep = []
    for line in text.splitlines():
        if not line.strip() or line.startswith(("Column ", "Possible solutions", "This type")):
            break
        keep.append(line.strip())
    return f"{path.name}: " + " ".join(keep)[:400]
