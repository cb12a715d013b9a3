"""Build a synthetic CDM on disk: stream the world chunk by chunk into a CDM or Parquet, write the truth JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from follicle.errors import InputError
from follicle.synth.blocks import add_counts, concat_worlds, truth_part
from follicle.synth.config import WorldConfig
from follicle.synth.sinks import Sink, open_sink
from follicle.synth.to_cdm import CdmIds, build_tables, fixed_tables
from follicle.synth.truth import summary_counts
from follicle.synth.world import World, block_sizes, check_size, simulate_block
from follicle.tempfiles import remove_stale
from follicle.textinput import load_data

#: Persons generated and written at a time by default (one block of the default world).
CHUNK_PERSONS = 250_000


def load_config(path: str | Path | None) -> WorldConfig:
    """Read a world config from YAML or JSON (None -> the default world)."""
    if path is None:
        return WorldConfig()
    path = Path(path)
    data = load_data(path, what="world config")
    if not isinstance(data, dict):
        raise InputError(f"{path}: a world config must be a mapping")
    return WorldConfig.model_validate(data)


def write_json_atomic(obj: Any, path: str | Path) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    remove_stale(path.parent, prefix=f".{path.name}.")  # left by a killed writer
    try:
        tmp.write_text(json.dumps(obj, indent=2, default=str))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def stream_world(cfg: WorldConfig, persons: int, seed: int, sink: Sink, *, chunk_persons: int = CHUNK_PERSONS,
                 progress: Callable[[str], None] | None = None) -> World:
    """Simulate the world chunk by chunk into *sink*; return the part of it the truth needs.

    A chunk is a whole number of blocks (``cfg.block_persons``), at least one; each block is drawn from
    its own random streams and its event ids continue the previous block's, so the tables do not depend
    on *chunk_persons*. Only one chunk's arrays are in memory at a time, and of the blocks written only the
    person-level arrays of the truth's target population (:func:`follicle.synth.blocks.truth_part`).
    """
    check_size(persons, seed)
    tick = progress or (lambda _s: None)
    sizes = block_sizes(cfg, persons)
    per_chunk = max(1, -(-int(chunk_persons) // cfg.block_persons))
    ids = CdmIds()
    parts: list[World] = []
    summary: dict | None = None
    done = 0
    for first in range(0, len(sizes), per_chunk):
        tables: list[dict[str, pa.Table]] = []
        for b in range(first, min(first + per_chunk, len(sizes))):
            block = simulate_block(cfg, sizes[b], seed, b)
            tables.append(build_tables(block, ids))
            counts = summary_counts(block)
            summary = counts if summary is None else add_counts(summary, counts)
            parts.append(truth_part(block))
            done += block.n
            del block
        sink.write({name: pa.concat_tables([t[name] for t in tables]) for name in tables[0]})
        del tables
        tick(f"persons {done:,}/{persons:,}")
    sink.write(fixed_tables(persons, seed))
    world = concat_worlds(parts) if len(parts) > 1 else parts[0]
    return replace(world, summary=summary)


def build_world(persons: int, seed: int, db: str | Path | None = None, *, truth_path: str | Path | None = None,
                config: WorldConfig | None = None, overwrite: bool = False, parquet: str | Path | None = None,
                chunk_persons: int = CHUNK_PERSONS,
                progress: Callable[[str], None] | None = None) -> tuple[World, dict[str, int], dict | None]:
    """Simulate a synthetic AA world, stream it to a CDM at *db* (or Parquet folder *parquet*), write its truth.

    Parameters
    ----------
    persons : int
        Number of persons.
    seed : int
        Random seed (the same seed gives the same tables, whatever *chunk_persons* and the output).
    db : str or Path, optional
        The DuckDB file (or ``postgresql://`` URL) to write; ignored when *parquet* is given.
    truth_path : str or Path, optional
        Where to write the ground truth (true hazard ratios per comparison and outcome).
    config : WorldConfig, optional
        The world's parameters (default: :class:`follicle.synth.config.WorldConfig`).
    overwrite : bool
        Replace an existing output.
    parquet : str or Path, optional
        Write a folder of Parquet tables (one sub-folder of part files per table) instead of *db*.
    chunk_persons : int
        Persons generated and written at a time (rounded up to whole blocks); bounds peak memory.
    progress : callable, optional
        Called with a short description after each chunk and after the truth.

    Returns
    -------
    tuple
        The part of the world the truth is computed on (its ``truth()`` and summary counts are the whole
        world's; the in-memory world is :func:`follicle.synth.simulate`), rows written per table, and the
        truth (or None).
    """
    tick = progress or (lambda _s: None)
    cfg = config or WorldConfig()
    check_size(persons, seed)
    if chunk_persons < 1:
        raise InputError(f"chunk_persons must be a positive integer; got {chunk_persons!r}")
    with open_sink(db, Path(parquet) if parquet is not None else None, overwrite=overwrite) as sink:
        world = stream_world(cfg, persons, seed, sink, chunk_persons=chunk_persons, progress=tick)
        # computed before the CDM is committed: a failure here leaves no output at all
        truth = world.truth() if truth_path is not None else None
    if truth_path is not None:
        write_json_atomic(truth, truth_path)
        tick("truth")
    return world, sink.rows, truth
