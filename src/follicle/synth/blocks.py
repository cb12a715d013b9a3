"""Worlds made of blocks: join blocks into one world, split a world into its blocks, keep a part.

A world of more than ``WorldConfig.block_persons`` persons is drawn block by block, each block from
its own random streams (seeded by the world's seed and the block's index, see
:func:`follicle.synth.world.simulate_block`), so the data do not depend on how many blocks are held in
memory at once. Person-level arrays are indexed by row; row-level records (``person`` column) refer
to rows of their own block, and are shifted when blocks are joined.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from follicle.synth.world import World

_PERSON_LEVEL = ("_p", "_d", "_t", "_cov", "_first", "_resp")
_ROW_LEVEL = ("_rx", "_records", "_salt_rows", "_lab_rows")


def _join(parts: list[dict], shifts: list[int] | None = None) -> dict:
    out: dict[str, Any] = {}
    for key, first in parts[0].items():
        if not isinstance(first, np.ndarray):  # e.g. the drug table: the same object in every block
            out[key] = first
        elif key == "person" and shifts is not None:
            out[key] = np.concatenate([pt[key] + s for pt, s in zip(parts, shifts)])
        else:
            out[key] = np.concatenate([pt[key] for pt in parts])
    return out


def concat_worlds(blocks: list[World]) -> World:
    """One world holding consecutive *blocks* (in block order)."""
    starts = np.cumsum([0] + [b.n for b in blocks]).tolist()
    fields = {f: _join([getattr(b, f) for b in blocks]) for f in _PERSON_LEVEL}
    fields |= {f: _join([getattr(b, f) for b in blocks], starts[:-1]) for f in _ROW_LEVEL}
    bounds = tuple((b.block, starts[i], starts[i + 1]) for i, b in enumerate(blocks))
    return replace(blocks[0], **fields, bounds=bounds)


def _persons(w: World, rows: np.ndarray) -> dict[str, dict]:
    """The person-level arrays of *rows*."""
    return {f: {k: (v[rows] if isinstance(v, np.ndarray) else v) for k, v in getattr(w, f).items()}
            for f in _PERSON_LEVEL}


def _rows(part: dict, keep: np.ndarray, new_index: np.ndarray) -> dict:
    """Row-level records of the persons marked in *keep*, renumbered by *new_index*."""
    sel = keep[part["person"]]
    out = {k: v[sel] for k, v in part.items()}
    out["person"] = new_index[out["person"]]
    return out


def subset(w: World, rows: np.ndarray, *, block: int | None = None, offset: int | None = None) -> World:
    """The world of the persons in *rows* (ascending) only, with their records."""
    keep = np.zeros(w.n, bool)
    keep[rows] = True
    new_index = np.cumsum(keep) - 1
    fields = _persons(w, rows) | {f: _rows(getattr(w, f), keep, new_index) for f in _ROW_LEVEL}
    contiguous = block is not None
    return replace(w, **fields, bounds=(), block=w.block if block is None else block,
                   offset=offset if contiguous else 0, ids=None if contiguous else w.person_ids(rows))


def split_world(w: World) -> Iterator[World]:
    """The blocks of *w*, one world each (just *w* when it is one block)."""
    if not w.bounds:
        yield w
        return
    for block, lo, hi in w.bounds:
        yield subset(w, np.arange(lo, hi), block=block, offset=w.offset + lo)


def truth_part(w: World) -> World:
    """The persons the truth can need, person-level arrays only: first-course initiators of a compared class
    with >= 2 prescriptions and no neuropsychiatric history before index (a few % of persons)."""
    from follicle.synth.config import CLASSES
    from follicle.synth.truth import target_population

    classes = sorted({CLASSES.index(c) for pair in w.config.truth.comparisons for c in pair})
    rows = target_population(w, *classes)
    # no records (not needed); empty copies, not views, which would keep the block's arrays alive
    fields = _persons(w, rows) | {f: {k: np.empty(0, v.dtype) for k, v in getattr(w, f).items()} for f in _ROW_LEVEL}
    return replace(w, **fields, bounds=(), offset=0, ids=w.person_ids(rows))


def add_counts(a: dict, b: dict) -> dict:
    """Sum two nested count dictionaries (the summaries of two parts of a world)."""
    return {k: add_counts(v, b[k]) if isinstance(v, dict) else v + b[k] for k, v in a.items()}
