"""Generate Circe cohorts in a CDM and write them out: ``<stem>.csv`` (the cohort rows) and
``<stem>.attrition.csv`` (qualified events, each inclusion rule, the final cohort).

Every definition is read and validated before any query runs, so one bad file stops the run with
all its problems listed and nothing written; each output is written to a temporary file and
renamed into place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from follicle.errors import InputError, SpecError
from follicle.privacy import suppress_count
from follicle.study.atlas.attrition import attrition
from follicle.study.atlas.engine import compile_on
from follicle.study.atlas.model import CohortExpression, load_definition

COLUMNS = ["subject_id", "cohort_start_date", "cohort_end_date"]
MAX_DEFINITION_BYTES = 5_000_000


@dataclass
class Generated:
    """One generated definition: its rows (sorted), counts and warnings."""

    file: Path
    name: str
    rows: pd.DataFrame
    counts: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def attrition_table(self) -> pd.DataFrame:
        """Steps in order with the events and persons left after each."""
        c = self.counts
        rows = [{"step": 0, "description": "qualified events (entry events after additional criteria)",
                 "events": c["qualified"]["events"], "persons": c["qualified"]["persons"]}]
        rows += [{"step": r["rule"], "description": f"inclusion rule: {r['name']}", "events": r["remaining_events"],
                  "persons": r["remaining_persons"]} for r in c["rules"]]
        rows.append({"step": len(c["rules"]) + 1, "description": "cohort (after limits, end dates and era collapse)",
                     "events": c["cohort"]["entries"], "persons": c["cohort"]["persons"]})
        return pd.DataFrame(rows)

    def summary(self, min_cell_count: int = 10) -> dict[str, Any]:
        """File, name, entries, persons and per-rule counts, small counts suppressed."""
        def s(n: int) -> Any:
            return suppress_count(n, min_cell_count)

        c = self.counts
        return {
            "file": str(self.file), "name": self.name, "entries": s(c["cohort"]["entries"]),
            "persons": s(c["cohort"]["persons"]),
            "qualified": {"events": s(c["qualified"]["events"]), "persons": s(c["qualified"]["persons"])},
            "rules": [{k: (s(v) if isinstance(v, int) and k != "rule" else v) for k, v in r.items()} for r in c["rules"]],
            "warnings": list(self.warnings),
        }


def read_definitions(paths: list[Path]) -> list[tuple[Path, CohortExpression]]:
    """Read and validate every file first (all problems of all files in one error)."""
    problems: list[str] = []
    out = []
    stems: dict[str, Path] = {}
    for p in paths:
        p = Path(p)
        if not p.is_file():
            problems.append(f"{p}: file not found")
            continue
        if p.stat().st_size > MAX_DEFINITION_BYTES:
            problems.append(f"{p}: larger than {MAX_DEFINITION_BYTES:,} bytes; not a cohort definition")
            continue
        if p.stem in stems:
            problems.append(f"{p}: same file name as {stems[p.stem]} (outputs are named after the file)")
        stems[p.stem] = p
        try:
            out.append((p, load_definition(p)))
        except SpecError as exc:
            problems += [str(exc)] + [f"  {q}" for q in exc.problems]
    if problems:
        raise SpecError(f"{len(paths)} definition file(s) given; problems:", problems=problems)
    return out


def generate_one(path: Path, expr: CohortExpression, con: Any, *, database: Any = None) -> Generated:
    """Compile and run one definition in the database behind *con*."""
    with compile_on(expr, con, database=database, materialize=True) as compiled:
        rows = con.execute(compiled.cohort)
        counts = attrition(compiled, con)
    rows = rows[COLUMNS].sort_values(COLUMNS, kind="stable").reset_index(drop=True)
    rows["subject_id"] = rows["subject_id"].astype("int64")
    for col in COLUMNS[1:]:
        rows[col] = pd.to_datetime(rows[col]).dt.date
    return Generated(file=path, name=expr.title or path.stem, rows=rows, counts=counts,
                     warnings=compiled.warnings)


def generate(paths: list[Path], con: Any, *, database: Any = None) -> list[Generated]:
    """Generate every definition of *paths* (all validated before the first runs)."""
    return [generate_one(p, e, con, database=database) for p, e in read_definitions(paths)]


def write_outputs(results: list[Generated], out_dir: Path) -> list[Path]:
    """Write ``<stem>.csv`` and ``<stem>.attrition.csv`` per result (temporary file, then rename)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for r in results:
        for name, frame in ((f"{r.file.stem}.csv", r.rows), (f"{r.file.stem}.attrition.csv", r.attrition_table())):
            target = out_dir / name
            tmp = out_dir / f".{name}.tmp-{os.getpid()}"
            try:
                frame.to_csv(tmp, index=False)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            written.append(target)
    return written
