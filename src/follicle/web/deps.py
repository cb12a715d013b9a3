"""Shared helpers of the routers: the CDM connection, per-CDM caching and safe names."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from fastapi import HTTPException, Request

from follicle.cdm.connect import connect, dialect_of

T = TypeVar("T")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RUN_ID_RE = re.compile(r"^[0-9]{8}-[0-9]{6}-[a-z0-9_]{1,40}(-[0-9]+)?$")
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


@contextmanager
def cdm(request: Request) -> Iterator[Any]:
    """A read-only connection to the app's CDM, closed afterwards (one per request)."""
    db = request.app.state.settings.db
    con = connect(db, read_only=dialect_of(db) == "duckdb")
    try:
        yield con
    finally:
        con.disconnect()


def cdm_stamp(request: Request) -> str:
    """Changes when the CDM file changes (DuckDB: size and mtime); a constant for a server URL."""
    db = request.app.state.settings.db
    if dialect_of(db) == "duckdb":
        st = Path(db).stat()
        return f"{st.st_size}-{st.st_mtime_ns}"
    return "server"


def cached(request: Request, key: str, compute: Callable[[], T]) -> T:
    """*compute()* once per CDM state and *key*; concurrent callers of the same key wait for the first."""
    store: dict[str, Any] = request.app.state.cache
    full = f"{key}|{cdm_stamp(request)}"
    if full in store:
        return store[full]
    with _locks_guard:
        lock = _locks.setdefault(full, threading.Lock())
    with lock:
        if full not in store:
            store[full] = compute()
    return store[full]


def safe_name(value: str, what: str = "name") -> str:
    """*value* if it is a spec name (lower case, digits, underscores), else 404 (never a path)."""
    if not NAME_RE.match(value or ""):
        raise HTTPException(404)
    return value


def inside(root: Path, *parts: str) -> Path:
    """``root/parts`` if it stays inside *root* after resolving links, else 404."""
    path = root.joinpath(*parts).resolve()
    if not path.is_relative_to(root.resolve()):
        raise HTTPException(404)
    return path


_REMEMBERED_MAX = 32


def remember(request: Request, kind: str, value: Any) -> str:
    """Keep *value* (an analysis result) for later requests (zoomed plots); returns its key."""
    import secrets

    store: dict[str, Any] = request.app.state.cache.setdefault(f"remembered:{kind}", {})
    key = secrets.token_urlsafe(12)
    store[key] = value
    while len(store) > _REMEMBERED_MAX:
        store.pop(next(iter(store)))
    return key


def recall(request: Request, kind: str, key: str) -> Any:
    """A value kept by :func:`remember`, or 404."""
    value = request.app.state.cache.get(f"remembered:{kind}", {}).get(key)
    if value is None:
        raise HTTPException(404)
    return value


def studies_dir() -> Path:
    """The bundled study specs (``studies/`` of the source tree, as ``follicle run`` finds them)."""
    return Path(__file__).resolve().parents[3] / "studies"
