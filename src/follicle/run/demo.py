"""The demo: a synthetic AA world, the bundled study on it, and the truth to compare against."""

from __future__ import annotations

import json
from pathlib import Path

from follicle.run.pipeline import Progress
from follicle.run.study import StudyRun, run_study
from follicle.study.spec import load_spec
from follicle.synth.build import build_world


def run_demo(persons: int, seed: int, out: Path, study: Path, *,
             progress: Progress | None = None) -> tuple[StudyRun, dict[tuple[str, str], float]]:
    """Build (or reuse) the world for (*persons*, *seed*) in *out*, run *study*, return results and truth."""
    say = progress or (lambda _m: None)
    out.mkdir(parents=True, exist_ok=True)
    db, truth_path = out / f"world-{persons}-{seed}.duckdb", out / f"truth-{persons}-{seed}.json"
    if not (db.exists() and truth_path.exists()):
        say(f"synthetic world: {persons:,} persons")
        build_world(persons, seed, db, truth_path=truth_path, overwrite=True, progress=lambda s: say(f"synthetic world: {s}"))
    truth_doc = json.loads(truth_path.read_text())
    truth = {(e["comparison"], e["outcome"]): e["true_hr"] for e in truth_doc["effects"]}
    done = run_study(load_spec(study), db, out, progress=say, truth=truth)
    return done, truth
