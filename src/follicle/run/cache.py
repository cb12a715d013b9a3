"""A content-addressed store of intermediate results, so re-runs compute only what changed.

Every artefact is filed under its step name and the hash of everything that produced it (the
spec parts, the upstream artefact keys, the content hashes of the CDM tables read and the package
version), as OHDSI CohortMethod's ``runCmAnalyses`` does.

An artefact is a folder ``<root>/<step>/<key>/`` holding ``meta.json`` (plain JSON: the object's
structure, its scalars, and the SHA-256 of every data file) and one Arrow IPC stream (LZ4
compressed) per table or array: a third of Parquet's write time and a fifth of its read time for
these small tables, and like Parquet plain data, validated when read. Nothing is unpickled, so a file planted in the store cannot run code; a file whose digest
does not match, or a folder that does not decode, is deleted and recomputed. Folders are written
under a temporary name and renamed into place, so an interrupted run leaves only complete
artefacts. The store holds row-level data: it lives in the work folder, never in the folder of
shareable outputs (docs/privacy.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa

from follicle import __version__

T = TypeVar("T")

#: Bump when what a step stores changes shape or meaning, so old artefacts are not reused.
CACHE_FORMAT = 5
#: How a table is stored: an Arrow IPC stream, LZ4-compressed.
IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")


def content_hash(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable *parts* (pydantic models are dumped first)."""
    def plain(obj: Any) -> Any:
        if hasattr(obj, "model_dump"):
            return obj.model_dump(mode="json")
        return obj

    text = json.dumps([plain(p) for p in parts], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class CorruptArtifact(Exception):
    """A stored artefact that does not decode or whose digests do not match."""


def _classes() -> dict[str, type]:
    """The only classes an artefact may be decoded into (no import by name from the store)."""
    from follicle.run.adjust import AdjustedCohort
    from follicle.run.estimate import OutcomeEstimate
    from follicle.run.pipeline import PropensityStep
    from follicle.study.coverage import ConceptSetReport
    from follicle.study.population import Population

    return {c.__name__: c for c in (Population, PropensityStep, AdjustedCohort, OutcomeEstimate, ConceptSetReport)}


def _plain(value: Any) -> Any:
    """numpy scalars and arrays inside nested cells, for json.dumps."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


#: What pandas infers for an object column of scalars only (no dict, list, tuple or array cell).
_SCALAR_KINDS = frozenset({"string", "empty", "bytes", "boolean", "integer", "floating", "mixed-integer-float",
                           "decimal", "complex", "date", "datetime", "datetime64", "time", "timedelta",
                           "timedelta64", "period", "interval"})


def _is_nested(value: Any) -> bool:
    return isinstance(value, (dict, list, tuple, np.ndarray))


def _may_nest(column: pd.Series) -> bool:
    """Whether an object column may hold nested cells: pandas' type inference, in C, rules out the
    columns of strings or numbers at once; the others are tested cell by cell."""
    return column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) not in _SCALAR_KINDS


def _plain_numeric(frame: pd.DataFrame) -> bool:
    """A frame that Arrow's ``to_pandas`` gives back unchanged without pandas metadata: a default
    index, unique string column names, numeric or boolean numpy columns."""
    index = frame.index
    return (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1 and index.name is None
            and len(frame.columns) > 0 and frame.columns.name is None and frame.columns.is_unique
            and all(isinstance(c, str) for c in frame.columns)
            and all(isinstance(d, np.dtype) and d.kind in "biuf" for d in frame.dtypes))


class _Encoder:
    """Split an object into JSON structure and Arrow IPC blobs."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.shapes: dict[str, list[int]] = {}

    def _blob(self, frame: pd.DataFrame) -> str:
        name = f"b{len(self.blobs)}.arrow"
        if _plain_numeric(frame):  # no pandas metadata needed to read it back as it was: 30x faster
            table = pa.table({c: frame[c].to_numpy() for c in frame.columns})
        else:
            table = pa.Table.from_pandas(frame, preserve_index=None)  # a range index as metadata, others as columns
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema, options=IPC_OPTIONS) as writer:
            writer.write_table(table)
        self.blobs[name] = sink.getvalue().to_pybytes()
        self.shapes[name] = [table.num_rows, table.num_columns]
        return name

    def enc(self, obj: Any) -> Any:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            if type(obj).__name__ not in _classes():
                raise TypeError(f"cannot store {type(obj).__name__} in the cache")
            return {"__dc__": type(obj).__name__,
                    "fields": {f.name: self.enc(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
        if isinstance(obj, pd.DataFrame):
            # cells holding dicts or lists (nested structures Arrow would turn into structs) are kept as JSON text
            nested = [str(c) for c in obj.columns if _may_nest(obj[c]) and obj[c].map(_is_nested).any()]
            frame = obj
            if nested or any(not isinstance(c, str) for c in obj.columns):
                frame = obj.copy()
                frame.columns = [str(c) for c in frame.columns]
                for c in nested:
                    frame[c] = frame[c].map(lambda v: None if v is None else json.dumps(v, default=_plain))
            return {"__df__": self._blob(frame), "json_cols": nested}
        if isinstance(obj, np.ndarray):
            if obj.ndim != 1:
                raise TypeError("only 1-D arrays can be stored in the cache")
            return {"__nd__": self._blob(pd.DataFrame({"v": obj})), "dtype": str(obj.dtype)}
        if isinstance(obj, dict):
            return {"__map__": [[self.enc(k), self.enc(v)] for k, v in obj.items()]}
        if isinstance(obj, (list, tuple)):
            return {"__list__": [self.enc(v) for v in obj], "tuple": isinstance(obj, tuple)}
        if isinstance(obj, (np.bool_, bool)):
            return bool(obj)
        if isinstance(obj, np.integer):
            return int(obj)
        if isinstance(obj, (np.floating, float)):
            value = float(obj)
            return value if math.isfinite(value) else {"__float__": str(value)}
        if obj is None or isinstance(obj, (int, str)):
            return obj
        raise TypeError(f"cannot store a {type(obj).__name__} in the cache")


def _decode(obj: Any, read: Callable[[str], pd.DataFrame]) -> Any:
    if isinstance(obj, dict):
        if "__dc__" in obj:
            cls = _classes().get(obj["__dc__"])
            if cls is None:
                raise CorruptArtifact(f"unknown class {obj['__dc__']!r}")
            return cls(**{k: _decode(v, read) for k, v in obj["fields"].items()})
        if "__df__" in obj:
            frame = read(obj["__df__"])
            for c in obj.get("json_cols", []):
                frame[c] = frame[c].map(lambda v: None if v is None else json.loads(v))
            return frame
        if "__nd__" in obj:
            return read(obj["__nd__"])["v"].to_numpy().astype(obj["dtype"], copy=False)
        if "__map__" in obj:
            return {_decode(k, read): _decode(v, read) for k, v in obj["__map__"]}
        if "__list__" in obj:
            items = [_decode(v, read) for v in obj["__list__"]]
            return tuple(items) if obj.get("tuple") else items
        if "__float__" in obj:
            return float(obj["__float__"])
        raise CorruptArtifact("unexpected object in meta.json")
    return obj


def encode(obj: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(meta, blobs) of *obj*: meta is plain JSON, blobs are Arrow IPC streams by name."""
    enc = _Encoder()
    root = enc.enc(obj)
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in enc.blobs.items()}
    return ({"format": CACHE_FORMAT, "version": __version__, "root": root, "files": digests, "shapes": enc.shapes},
            enc.blobs)


def decode(folder: Path) -> Any:
    """The object stored in *folder*, or :class:`CorruptArtifact`."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        files, shapes = meta["files"], meta["shapes"]
        if meta.get("format") != CACHE_FORMAT or not isinstance(files, dict):
            raise CorruptArtifact("another cache format")

        def read(name: str) -> pd.DataFrame:
            if name not in files or "/" in name or name.startswith("."):
                raise CorruptArtifact(f"{name!r} is not listed in meta.json")
            data = (folder / name).read_bytes()
            if hashlib.sha256(data).hexdigest() != files[name]:
                raise CorruptArtifact(f"{name}: digest does not match")
            table = pa.ipc.open_stream(data).read_all()
            table.validate(full=True)
            if [table.num_rows, table.num_columns] != shapes[name]:  # a stream cut short at a message end
                raise CorruptArtifact(f"{name}: {table.num_rows} x {table.num_columns}, stored {shapes[name]}")
            return table.to_pandas()

        return _decode(meta["root"], read)
    except CorruptArtifact:
        raise
    except Exception as exc:  # any damage (truncated JSON or Parquet, missing file, wrong fields)
        raise CorruptArtifact(f"{type(exc).__name__}: {exc}") from None


class ArtifactStore:
    """Artefacts under ``root/<step>/<key>/``; counts what it computed, reused and found damaged."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.computed: Counter[str] = Counter()
        self.reused: Counter[str] = Counter()
        self.damaged: Counter[str] = Counter()

    def path(self, step: str, key: str) -> Path:
        return self.root / step / key

    def has(self, step: str, key: str) -> bool:
        return (self.path(step, key) / "meta.json").is_file()

    def get_or_compute(self, step: str, key: str, compute: Callable[[], T], *, force: bool = False) -> T:
        """The stored artefact for (*step*, *key*), or ``compute()`` stored atomically."""
        path = self.path(step, key)
        if path.exists() and not force:
            try:
                value = decode(path)
                self.reused[step] += 1
                return value
            except CorruptArtifact:
                self.damaged[step] += 1
                shutil.rmtree(path, ignore_errors=True)  # a damaged artefact: recompute it
        value = compute()
        self.put(step, key, value, replace=force)
        self.computed[step] += 1
        return value

    def put(self, step: str, key: str, value: Any, *, replace: bool = True) -> None:
        """Store *value* (a folder written under a temporary name, then renamed into place).

        A complete artefact already stored under the key (by a concurrent run: same key, same
        inputs) is kept unless *replace*.
        """
        meta, blobs = encode(value)
        path = self.path(step, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=path.parent))
        try:
            for name, data in blobs.items():
                (tmp / name).write_bytes(data)
            (tmp / "meta.json").write_text(json.dumps(meta, sort_keys=True))
            if path.exists():
                if not replace and (path / "meta.json").is_file():
                    return
                shutil.rmtree(path, ignore_errors=True)
            os.rename(tmp, path)
        except OSError:
            if not path.exists():
                raise
            # another run stored the same artefact first: same key, same content
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def key(self, *parts: Any) -> str:
        """A key for an artefact: the hash of *parts*, the package version and the cache format."""
        return content_hash(__version__, CACHE_FORMAT, *parts)

    def clean_stale(self) -> int:
        """Remove temporaries left by runs that are no longer alive; return how many."""
        from follicle.run.publish import remove_stale

        return remove_stale(self.root, depth=2)
