"""Zip files of a network study (packages and site bundles): written whole or not at all, read
with limits.

Writing: members in a fixed order with a fixed date, to a temporary file next to the target, then
renamed (a killed run leaves no half-written zip; the same content gives the same bytes). Reading:
a file from another site is untrusted input, so its size, its number of members, each member's
uncompressed size and name (no folders, no ``..``, only the names the format expects) are checked
before anything is decompressed, and every member's SHA-256 must match the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from follicle.errors import InputError
from follicle.textinput import check_size

MAX_ZIP_BYTES = 64 * 1024 * 1024
MAX_MEMBERS = 16
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MANIFEST = "manifest.json"
_DATE = (2020, 1, 1, 0, 0, 0)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=False, allow_nan=False) + "\n").encode()


def write_zip(path: Path, files: dict[str, bytes], manifest: dict[str, Any]) -> None:
    """Write *files* plus ``manifest.json`` (*manifest* with the SHA-256 and size of every file)
    to *path* atomically."""
    path = Path(path)
    if path.suffix.lower() != ".zip":
        raise InputError(f"--out {path}: must name a .zip file")
    if not path.parent.is_dir():
        raise InputError(f"--out {path}: folder {path.parent} does not exist")
    manifest = dict(manifest, files={n: {"sha256": sha256(b), "bytes": len(b)} for n, b in files.items()})
    members = {MANIFEST: json_bytes(manifest), **files}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in members.items():
                info = zipfile.ZipInfo(name, date_time=_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_zip(path: Path, *, kind: str, expected: set[str]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(manifest, files) of the zip at *path* (a *kind*: "package" or "site bundle"), checked as the
    module docstring says; every problem is an :class:`InputError` naming the file (and member)."""
    path = check_size(path, max_bytes=MAX_ZIP_BYTES, what=kind)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path}: not a zip file ({exc})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise InputError(f"{path}: {len(infos)} members; a {kind} has at most {MAX_MEMBERS}")
        names = [i.filename for i in infos]
        for info in infos:
            name = info.filename
            if "/" in name or "\\" in name or name.startswith(".") or ".." in name or name not in expected | {MANIFEST}:
                raise InputError(f"{path}: unexpected member {name!r} (a {kind} holds only "
                                 f"{', '.join(sorted(expected | {MANIFEST}))})")
            if info.file_size > MAX_MEMBER_BYTES:
                raise InputError(f"{path}: member {name} would unpack to {info.file_size:,} bytes; "
                                 f"the limit is {MAX_MEMBER_BYTES:,}")
        if len(set(names)) != len(names):
            raise InputError(f"{path}: a member name appears twice")
        if MANIFEST not in names:
            raise InputError(f"{path}: no {MANIFEST}: not a Follicle {kind}")
        try:
            files = {n: _read_member(zf, n) for n in names}
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise InputError(f"{path}: damaged zip ({exc})") from None
    manifest = parse_json(files.pop(MANIFEST), f"{path}: {MANIFEST}")
    listed = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(listed, dict):
        raise InputError(f"{path}: {MANIFEST} has no 'files' table")
    for name in sorted(expected):
        if name not in files:
            raise InputError(f"{path}: member {name} is missing")
        entry = listed.get(name)
        if not isinstance(entry, dict) or entry.get("sha256") != sha256(files[name]):
            raise InputError(f"{path}: member {name} does not match its SHA-256 in {MANIFEST} (altered or damaged)")
    return manifest, files


def _read_member(zf: zipfile.ZipFile, name: str) -> bytes:
    """The member's bytes, never more than :data:`MAX_MEMBER_BYTES` (a header can lie about its size)."""
    with zf.open(name) as fh:
        data = fh.read(MAX_MEMBER_BYTES + 1)
    if len(data) > MAX_MEMBER_BYTES:
        raise ValueError(f"member {name} unpacks to more than {MAX_MEMBER_BYTES:,} bytes")
    return data


def parse_json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{where}: not valid JSON ({exc})") from None
