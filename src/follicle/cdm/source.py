"""Find the OMOP tables in a source: a folder (or .zip) of CSV files, or a folder of Parquet files.

File names are matched case-insensitively to CDM table names (GiBleed ships ``person.csv``,
Synthea27Nj ``PERSON.csv``); a Parquet table may also be a folder of part files.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from follicle.errors import InputError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class SourceFiles:
    """The files of one source: table name -> (path, format), plus files that are not CDM tables."""

    root: Path
    files: dict[str, tuple[Path, str]] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)


def find_tables(root: Path, known: set[str]) -> SourceFiles:
    """Map each CSV/Parquet file under *root* to a CDM table (case-insensitive), recursively."""
    out = SourceFiles(root)
    seen: dict[str, Path] = {}
    problems = []
    for path in sorted(root.rglob("*")):
        if path.name.startswith(".") or "__MACOSX" in path.parts:
            continue
        fmt = FORMATS.get(path.suffix.lower())
        if fmt is None or (path.is_dir() and fmt != "parquet"):
            continue
        if path.parent != root and path.parent.suffix.lower() in FORMATS:
            continue  # part file inside a Parquet folder
        name = path.stem.lower()
        if name not in known:
            out.unknown.append(str(path.relative_to(root)))
            continue
        if name in seen:
            problems.append(f"table {name} is given twice: {seen[name].name} and {path.name}")
            continue
        seen[name] = path
        out.files[name] = (path, fmt)
    if problems:
        raise InputError(f"ambiguous source {root}", problems=problems)
    return out


@contextmanager
def opened(source: str | Path) -> Iterator[Path]:
    """Yield a folder holding the source's files (a .zip is extracted into a temporary folder)."""
    path = Path(source)
    if not path.exists():
        raise InputError(f"source not found: {path}")
    if path.is_dir():
        yield path
        return
    if path.suffix.lower() != ".zip":
        raise InputError(f"source must be a folder of CSV/Parquet files or a .zip of them; got file {path}")
    try:
        with tempfile.TemporaryDirectory(prefix="follicle-src-") as tmp:
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    target = (Path(tmp) / info.filename).resolve()
                    if not target.is_relative_to(Path(tmp).resolve()):
                        raise InputError(f"{path}: member {info.filename!r} points outside the archive")
                zf.extractall(tmp)
            yield Path(tmp)
    except zipfile.BadZipFile as exc:
        raise InputError(f"{path}: not a readable zip file ({exc})") from exc
