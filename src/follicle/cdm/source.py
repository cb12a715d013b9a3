"""Find the OMOP tables in a source: a folder (or .zip) of CSV files, or a folder of Parquet files.

File names are matched case-insensitively to CDM table names (GiBleed ships ``person.csv``,
Synthea27Nj ``PERSON.csv``); a Parquet table may also be a folder of part files.

A file or folder that is a symbolic link pointing outside the source folder is refused (a
``person.csv -> /etc/passwd`` would load a system file). A .zip is unpacked with limits: at most
:data:`MAX_ZIP_MEMBERS` members, each member and the whole at most the limits below (counted on
the bytes actually written, not on what the archive claims), and a member that expands more
than :data:`MAX_ZIP_RATIO` times its compressed size is refused (a zip bomb).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from follicle.errors import InputError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
MAX_ZIP_MEMBERS = 10_000
#: Total bytes unpacked from one .zip (env FOLLICLE_MAX_UNZIP_BYTES overrides; default 64 GiB).
MAX_UNZIP_BYTES = int(os.environ.get("FOLLICLE_MAX_UNZIP_BYTES", 64 * 2**30))
#: Most a member may expand (uncompressed / compressed); OMOP CSV compresses about 5-20 times.
MAX_ZIP_RATIO = 200
_CHUNK = 1 << 20


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
    real_root = root.resolve()
    for path in sorted(root.rglob("*")):
        if path.name.startswith(".") or "__MACOSX" in path.parts:
            continue
        if not path.resolve().is_relative_to(real_root):
            raise InputError(f"{path}: a symbolic link to {path.resolve()}, outside the source folder {root}; "
                             "copy the file into the folder instead")
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
                _extract(path, zf, Path(tmp))
            yield Path(tmp)
    except zipfile.BadZipFile as exc:
        raise InputError(f"{path}: not a readable zip file ({exc})") from exc


def _extract(path: Path, zf: zipfile.ZipFile, dest: Path, *, max_total: int | None = None) -> None:
    """Unpack *zf* into *dest* within the limits of the module docstring."""
    max_total = MAX_UNZIP_BYTES if max_total is None else max_total
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_MEMBERS:
        raise InputError(f"{path}: {len(infos):,} members; at most {MAX_ZIP_MEMBERS:,} are unpacked")
    root = dest.resolve()
    claimed = sum(i.file_size for i in infos)
    if claimed > max_total:
        raise InputError(f"{path}: unpacks to {claimed:,} bytes; the limit is {max_total:,} "
                         "(set FOLLICLE_MAX_UNZIP_BYTES to raise it)")
    free = shutil.disk_usage(dest).free
    if claimed > free:
        raise InputError(f"{path}: unpacks to {claimed:,} bytes but {dest} has {free:,} bytes free")
    total = 0
    for info in infos:
        target = (dest / info.filename).resolve()
        if not target.is_relative_to(root):
            raise InputError(f"{path}: member {info.filename!r} points outside the archive")
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        limit = max(info.compress_size, 1) * MAX_ZIP_RATIO
        written = 0
        with zf.open(info) as src, target.open("wb") as out:
            while chunk := src.read(_CHUNK):
                written += len(chunk)
                total += len(chunk)
                if written > limit and written > 10 * _CHUNK:
                    raise InputError(f"{path}: member {info.filename!r} expands more than {MAX_ZIP_RATIO} times "
                                     "its compressed size (a zip bomb?); unpack it yourself if it is genuine")
                if total > max_total:
                    raise InputError(f"{path}: unpacks to more than {max_total:,} bytes "
                                     "(set FOLLICLE_MAX_UNZIP_BYTES to raise it)")
                out.write(chunk)
