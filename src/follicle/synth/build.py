"""Build a synthetic CDM on disk: simulate, write the CDM atomically, write the truth JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from follicle.cdm.write import write_cdm
from follicle.errors import InputError
from follicle.synth.config import WorldConfig
from follicle.synth.world import World, simulate

STEPS = ("population", "disease", "treatment", "outcomes", "salt and labs", "cdm tables", "write", "truth")


def load_config(path: str | Path | None) -> WorldConfig:
    """Read a world config from YAML or JSON (None -> the default world)."""
    if path is None:
        return WorldConfig()
    path = Path(path)
    text = path.read_text()
    data = yaml.safe_load(text) if path.suffix.lower() in (".yaml", ".yml") else json.loads(text)
    if not isinstance(data, dict):
        raise InputError(f"{path}: a world config must be a mapping")
    return WorldConfig.model_validate(data)


def write_json_atomic(obj: Any, path: str | Path) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(obj, indent=2, default=str))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def build_world(persons: int, seed: int, db: str | Path, *, truth_path: str | Path | None = None,
                config: WorldConfig | None = None, overwrite: bool = False,
                progress: Callable[[str], None] | None = None) -> tuple[World, dict[str, int], dict | None]:
    """Simulate a synthetic AA world, write it as a DuckDB CDM at *db* and (optionally) its truth JSON.

    Parameters
    ----------
    persons : int
        Number of persons.
    seed : int
        Random seed (the same seed gives the same tables).
    db : str or Path
        The DuckDB file to write.
    truth_path : str or Path, optional
        Where to write the ground truth (true hazard ratios per comparison and outcome).
    config : WorldConfig, optional
        The world's parameters (default: :class:`follicle.synth.config.WorldConfig`).
    overwrite : bool
        Replace an existing *db*.
    progress : callable, optional
        Called with the name of each step.

    Returns
    -------
    tuple
        The world, rows written per table, and the truth (or None).
    """
    tick = progress or (lambda _s: None)
    if Path(db).exists() and not overwrite:
        raise InputError(f"--db {db}: file exists (use --overwrite to replace it)")
    world = simulate(config, persons, seed, progress=tick)
    tables = world.to_cdm()
    tick("cdm tables")
    counts = write_cdm(tables, db, overwrite=overwrite)
    tick("write")
    truth = None
    if truth_path is not None:
        truth = world.truth()
        write_json_atomic(truth, truth_path)
        tick("truth")
    return world, counts, truth
