"""CLI commands of the study engine: ``follicle cohorts``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from follicle.cli._common import JsonFlag, console, err_console, guarded, print_json

StudyArg = Annotated[Path, typer.Argument(help="Study spec (YAML or JSON).")]
DbOpt = Annotated[str, typer.Option("--db", help="CDM: a DuckDB file or a postgresql:// URL.")]


@guarded
def cohorts(study: StudyArg, db: DbOpt, json: JsonFlag = False,
            allow_small_cells: Annotated[bool, typer.Option("--allow-small-cells", help="Accept a spec min_cell_count below 5.")] = False) -> None:
    """Build the study's cohorts in the database and print attrition and cohort sizes.

    Counts from 1 to min_cell_count - 1 are shown as "<min_cell_count" (default "<10").
    """
    from follicle.cdm.connect import connect
    from follicle.privacy import check_min_cell_count
    from follicle.study.counts import cohort_counts, suppressed
    from follicle.study.spec import load_spec

    spec = load_spec(study)
    check_min_cell_count(spec.min_cell_count, allow_small_cells=allow_small_cells, where=f"{study}: min_cell_count")
    con = connect(db, read_only=True)
    with err_console.status("building cohorts in the database"):
        result = suppressed(cohort_counts(spec, con), spec.min_cell_count)
    if json:
        print_json({"study": spec.name, **result})
        return
    for warning in result["warnings"]:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    table = Table(title=f"{spec.name}: cohort attrition")
    for col in ("cohort", "step", "description", "persons"):
        table.add_column(col, justify="right" if col == "persons" else "left")
    for r in result["attrition"]:
        table.add_row(r["cohort"], r["step"], r["description"], str(r["persons"]))
    console.print(table)
    comp = Table(title="comparisons")
    for col in ("comparison", "step", "description", "persons"):
        comp.add_column(col, justify="right" if col == "persons" else "left")
    for r in result["comparisons"]:
        comp.add_row(r["comparison"], r["step"], r["description"], str(r["persons"]))
    console.print(comp)


def register(app: typer.Typer) -> None:
    """Add this module's commands to *app*."""
    app.command("cohorts")(cohorts)
