"""CLI commands of the study engine: ``follicle cohorts``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from follicle.cli._common import JsonFlag, console, err_console, guarded, loading_libraries, print_json

StudyArg = Annotated[Path, typer.Argument(help="Study spec (YAML or JSON).")]
DbOpt = Annotated[str, typer.Option("--db", help="CDM: a DuckDB file, a postgresql:// URL, spark:///ABS/DIR (local Spark) or sc://HOST:PORT (Spark Connect).")]


@guarded
def cohorts(study: StudyArg, db: DbOpt, json: JsonFlag = False,
            routes: Annotated[bool, typer.Option("--routes", help="List every route of every concept set.")] = False,
            allow_small_cells: Annotated[bool, typer.Option("--allow-small-cells", help="Accept a spec min_cell_count below 5.")] = False,
            ) -> None:
    """Build the study's cohorts in the database and print attrition, cohort sizes and how each
    concept set was resolved (with the event rows it could be missing).

    Counts from 1 to min_cell_count - 1 are shown as "<min_cell_count" (default "<10").
    """
    with loading_libraries():
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
    print_concept_sets(result["concept_sets"], routes=routes)


def print_concept_sets(report: dict[str, Any], *, routes: bool = False) -> None:
    """The suppressed concept-set report (:func:`follicle.study.coverage.suppressed_report`) as tables."""
    found: dict[str, dict[str, int]] = {}
    for r in report["routes"]:
        if r["concepts"] and not r["excluded"]:
            per = found.setdefault(r["concept_set"], {})
            per[r["route"]] = per.get(r["route"], 0) + int(r["concepts"])
    table = Table(title="concept sets: how each was resolved (concepts found per route, summed over entries)")
    for col in ("concept set", "resolved by", "persons", "could be missed (rows / persons)"):
        table.add_column(col, justify="left" if col in ("concept set", "resolved by") else "right")
    for r in report["sets"]:
        missed = "-" if not r["missed_rows"] else f"{r['missed_rows']} / {r['missed_persons']}"
        routes_text = ", ".join(f"{k} {v}" for k, v in found.get(r["concept_set"], {}).items())
        table.add_row(r["concept_set"], escape(routes_text or "nothing"),
                      str(r["persons"]), missed)
    console.print(table)
    if routes:
        detail = Table(title="concept sets: every route")
        for col in ("concept set", "entry", "route", "concepts", "rows", "persons"):
            detail.add_column(col, justify="right" if col in ("concepts", "rows", "persons") else "left")
        for r in report["routes"]:
            detail.add_row(r["concept_set"], escape(r["entry"] + (" (excluded)" if r["excluded"] else "")), r["route"],
                           str(r["concepts"]), str(r["rows"]), str(r["persons"]))
        console.print(detail)


def register(app: typer.Typer) -> None:
    """Add this module's commands to *app*."""
    app.command("cohorts")(cohorts)
