"""Reading the small text files users write (specs, configs): size limit, UTF-8, safe YAML.

Every failure is one :class:`~follicle.errors.InputError` naming the file and, where it can, the
line: a file over the size limit (checked before it is read), bytes that are not UTF-8 (with the
line and byte offset), YAML that does not parse, or YAML with more aliases than a spec needs
(an alias bomb expands to gigabytes when the data is walked).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from follicle.errors import InputError

#: Largest spec or config file read (bytes). Bundled specs are a few kB.
MAX_SPEC_BYTES = 1_000_000
#: Most YAML aliases (``*name``) accepted in one file.
MAX_YAML_ALIASES = 100

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def check_size(path: str | Path, *, max_bytes: int, what: str = "file") -> Path:
    """*path* as a Path, or :class:`InputError` when it is missing or larger than *max_bytes*."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {what} not found")
    size = path.stat().st_size
    if size > max_bytes:
        raise InputError(f"{path}: {what} is {size:,} bytes; the limit is {max_bytes:,} bytes")
    return path


def read_text(path: str | Path, *, max_bytes: int = MAX_SPEC_BYTES, what: str = "file") -> str:
    """The text of *path* (UTF-8, a BOM dropped), or :class:`InputError` naming the problem."""
    path = check_size(path, max_bytes=max_bytes, what=what)
    with path.open("rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew while we looked
        raise InputError(f"{path}: {what} is larger than {max_bytes:,} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start} on line {line} is {data[exc.start:exc.start + 1]!r}); "
                         "save the file as UTF-8") from None
    return text.removeprefix("\ufeff")


def parse_yaml(text: str, *, source: str) -> Any:
    """*text* parsed as safe YAML; :class:`InputError` with the position on failure."""
    try:
        aliases = sum(isinstance(ev, yaml.AliasEvent) for ev in yaml.parse(text, Loader=_Base))
        if aliases > MAX_YAML_ALIASES:
            raise InputError(f"{source}: {aliases} YAML aliases; at most {MAX_YAML_ALIASES} are accepted")
        return yaml.load(text, Loader=_Base)  # noqa: S506 - (C)SafeLoader
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: not valid YAML ({exc})") from None
    except RecursionError:
        raise InputError(f"{source}: not valid YAML (nested too deeply)") from None


def load_data(path: str | Path, *, max_bytes: int = MAX_SPEC_BYTES, what: str = "spec") -> Any:
    """A YAML or JSON file (by suffix) read with :func:`read_text` and parsed safely."""
    path = Path(path)
    text = read_text(path, max_bytes=max_bytes, what=what)
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON ({exc})") from None
        except RecursionError:
            raise InputError(f"{path}: not valid JSON (nested too deeply)") from None
    return parse_yaml(text, source=str(path))
