"""A content-addressed store of intermediate results, so re-runs compute only what changed.

Every artefact is filed under its step name and the hash of everything that produced it (the
spec parts, the upstream artefact keys, the CDM fingerprint and the package version), as OHDSI
CohortMethod's ``runCmAnalyses`` does. Writes go to a temporary file and are renamed into place,
so an interrupted run leaves only complete artefacts and resumes from them.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from follicle import __version__

T = TypeVar("T")

#: Bump when what a step stores changes shape or meaning, so old artefacts are not reused.
CACHE_FORMAT = 2


def content_hash(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable *parts* (pydantic models are dumped first)."""
    def plain(obj: Any) -> Any:
        if hasattr(obj, "model_dump"):
            return obj.model_dump(mode="json")
        return obj

    text = json.dumps([plain(p) for p in parts], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ArtifactStore:
    """Pickled artefacts under ``root/<step>/<key>.pkl``; counts what it computed and reused."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.computed: Counter[str] = Counter()
        self.reused: Counter[str] = Counter()

    def path(self, step: str, key: str) -> Path:
        return self.root / step / f"{key}.pkl"

    def get_or_compute(self, step: str, key: str, compute: Callable[[], T], *, force: bool = False) -> T:
        """The stored artefact for (*step*, *key*), or ``compute()`` stored atomically."""
        path = self.path(step, key)
        if path.exists() and not force:
            try:
                with path.open("rb") as fh:
                    value = pickle.load(fh)
                self.reused[step] += 1
                return value
            except (pickle.UnpicklingError, EOFError, AttributeError, ImportError):
                path.unlink(missing_ok=True)  # a stale or damaged artefact: recompute it
        value = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        with tmp.open("wb") as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        self.computed[step] += 1
        return value

    def key(self, *parts: Any) -> str:
        """A key for an artefact: the hash of *parts*, the package version and the cache format."""
        return content_hash(__version__, CACHE_FORMAT, *parts)
