"""CLI commands for OHDSI ATLAS (Circe) cohort definitions: ``follicle atlas generate|export``."""

from __future__ import annotations

import json as jsonlib
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from follicle.cli._common import JsonFlag, console, err_console, guarded, print_json

app = typer.Typer(help="OHDSI ATLAS (Circe) cohort definitions: generate them in a CDM, export Follicle cohorts.",
                  no_args_is_help=True)
DbOpt = Annotated[str, typer.Option("--db", help="CDM: a DuckDB file or a postgresql:// URL.")]
SchemaOpt = Annotated[str | None, typer.Option("--schema", help="Schema of the CDM tables (default: the connection's).")]
MinCellOpt = Annotated[int, typer.Option("--min-cell-count", min=1,
                                         help="Printed counts from 1 to this minus 1 are shown as '<n'.")]


@app.command("generate")
@guarded
def generate(
    definitions: Annotated[list[Path], typer.Argument(help="Circe JSON files (as ATLAS exports them).")],
    db: DbOpt,
    out: Annotated[Path, typer.Option("--out", help="Folder for <stem>.csv and <stem>.attrition.csv.")],
    schema: SchemaOpt = None,
    min_cell_count: MinCellOpt = 10,
    json: JsonFlag = False,
) -> None:
    """Generate each definition's cohort in the database as Circe would; write DIR/<stem>.csv
    (subject_id, cohort_start_date, cohort_end_date) and DIR/<stem>.attrition.csv.

    Unsupported elements are refused by their JSON path; nothing is written unless every
    definition is valid.
    """
    from follicle.cdm.connect import connect
    from follicle.study.atlas.generate import generate as run
    from follicle.study.atlas.generate import read_definitions, write_outputs

    read_definitions(definitions)  # every file checked before connecting
    con = connect(db, read_only=True)
    with err_console.status("generating cohorts in the database"):
        results = run(definitions, con, database=schema)
    write_outputs(results, out)
    summaries = [r.summary(min_cell_count) for r in results]
    if json:
        print_json({"out": str(out), "min_cell_count": min_cell_count, "definitions": summaries})
        return
    for s in summaries:
        for w in s["warnings"]:
            err_console.print(f"[yellow]warning:[/] {s['file']}: {w}", highlight=False)
        table = Table(title=f"{s['name']} ({s['file']}): {s['entries']} entries, {s['persons']} persons")
        for col in ("step", "events", "persons"):
            table.add_column(col, justify="left" if col == "step" else "right")
        table.add_row("qualified events", str(s["qualified"]["events"]), str(s["qualified"]["persons"]))
        for r in s["rules"]:
            table.add_row(f"rule {r['rule']}: {r['name']}", str(r["remaining_events"]), str(r["remaining_persons"]))
        console.print(table)
    console.print(f"written to {out}")


@app.command("export")
@guarded
def export(
    study: Annotated[Path, typer.Argument(help="Study spec (YAML or JSON).")],
    cohort: Annotated[str, typer.Option("--cohort", help="Name of the cohort in the spec.")],
    db: DbOpt,
    out: Annotated[Path, typer.Option("--out", help="Circe JSON file to write.")],
    schema: SchemaOpt = None,
    json: JsonFlag = False,
) -> None:
    """Write a cohort of a study spec as a Circe definition ATLAS can import (concept sets
    resolved against the CDM); what Circe cannot say is refused by its field."""
    from follicle.cdm.connect import connect
    from follicle.errors import SpecError
    from follicle.study.atlas.export import cohort_to_circe
    from follicle.study.atlas.model import parse_definition
    from follicle.study.spec import load_spec

    spec = load_spec(study)
    if cohort not in spec.cohorts:
        raise SpecError(f"{study}: no cohort {cohort!r}; cohorts are {', '.join(sorted(spec.cohorts))}")
    definition = cohort_to_circe(spec, cohort, connect(db, read_only=True), database=schema)
    parse_definition(definition, source=f"exported cohort {cohort!r}")  # what is written reads back
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(jsonlib.dumps(definition, indent=2) + "\n")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    if json:
        print_json({"cohort": cohort, "out": str(out), "concept_sets": len(definition.get("ConceptSets", [])),
                    "inclusion_rules": len(definition.get("InclusionRules", []))})
    else:
        console.print(f"cohort {cohort} written to {out}")


def register(root: typer.Typer) -> None:
    """Add this module's commands to *root*."""
    root.add_typer(app, name="atlas")
