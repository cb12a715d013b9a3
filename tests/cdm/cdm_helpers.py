"""Helpers for the cdm tests: small CDM copies to corrupt, and PostgreSQL look-ups."""

from __future__ import annotations

import shutil
from pathlib import Path

#: The Synthea27Nj files copied for corruption tests (small, so each load takes well under 1 s).
SMALL = ("PERSON.csv", "OBSERVATION_PERIOD.csv", "CONDITION_OCCURRENCE.csv", "DRUG_EXPOSURE.csv", "DEATH.csv")


def small_copy(synthea_dir: Path, dest: Path) -> Path:
    """Copy a few Synthea27Nj tables into *dest* (a new folder) and return it."""
    dest.mkdir(parents=True)
    for name in SMALL:
        shutil.copy(synthea_dir / name, dest / name)
    return dest


def replace_line(path: Path, line_no: int, edit) -> str:
    """Apply *edit* (str -> str) to line *line_no* (1-based, header = 1) of *path*; return the new line."""
    lines = path.read_text().splitlines(keepends=True)
    lines[line_no - 1] = edit(lines[line_no - 1])
    path.write_text("".join(lines))
    return lines[line_no - 1]


def pg_tables(pg_url: str, schema: str) -> list[str]:
    """Tables in *schema* of the database behind *pg_url* (psycopg, not Ibis: for assertions)."""
    import psycopg

    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
    return sorted(r[0] for r in rows)
