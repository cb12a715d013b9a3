"""``follicle cdm``: create, load, check and summarise an OMOP CDM (DuckDB file, PostgreSQL URL or Spark)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from follicle.cli._common import JsonFlag, console, err_console, guarded, print_json
from follicle.errors import CheckFailed

Db = Annotated[
    str,
    typer.Option("--db", envvar="FOLLICLE_DB", help="Target CDM: a DuckDB file path, a postgresql:// URL "
                 "(postgresql://user:pw@host/db, or .../db/schema for a schema), spark:///ABS/DIR (local Spark, "
                 "Parquet tables under DIR) or sc://HOST:PORT (Spark Connect)."),
]
Version = Annotated[str, typer.Option("--cdm-version", help="OMOP CDM version: 5.4 or 5.3.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an existing CDM at the target.")]


def _validate_version(version: str) -> str:
    from follicle.cdm.schema import CDM_VERSIONS
    from follicle.errors import InputError

    if version not in CDM_VERSIONS:
        raise InputError(f"--cdm-version must be one of {', '.join(CDM_VERSIONS)}; got {version!r}")
    return version


def _open(db: str):
    from follicle.cdm.connect import connect, dialect_of

    return connect(db, read_only=dialect_of(db) == "duckdb")


def init(db: Db = "cdm.duckdb", cdm_version: Version = "5.4", overwrite: Overwrite = False,
         json: JsonFlag = False) -> None:
    """Create the empty OMOP CDM tables from the official DDL."""
    from follicle.cdm.connect import redact
    from follicle.cdm.write import init_cdm

    names = init_cdm(db, version=_validate_version(cdm_version), overwrite=overwrite)
    if json:
        print_json({"target": redact(db), "cdm_version": cdm_version, "tables": names})
    else:
        console.print(f"created {len(names)} CDM {cdm_version} tables in {escape(redact(db))}")


def load(
    source: Annotated[Path, typer.Argument(help="Folder (or .zip) of OMOP tables as CSV or Parquet files.")],
    db: Db = "cdm.duckdb",
    cdm_version: Version = "5.4",
    overwrite: Overwrite = False,
    json: JsonFlag = False,
) -> None:
    """Load a folder of OMOP tables into a new CDM, atomically; print rows per table."""
    from follicle.cdm.load import load_cdm

    version = _validate_version(cdm_version)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True, disable=json) as bar:
        task = bar.add_task("loading", total=None)

        def step(table: str, rows: int) -> None:
            bar.update(task, description=f"loaded {table} ({rows:,} rows)")

        result = load_cdm(source, db, version=version, overwrite=overwrite, progress=step)
    if json:
        print_json(result.to_dict())
        return
    table = Table(title=escape(f"{result.target}: CDM {version}, loaded in {result.seconds:.1f} s"))
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in result.rows.items():
        table.add_row(name, f"{n:,}")
    console.print(table)
    for name, renames in result.renamed_columns.items():
        console.print(escape(f"{name}: renamed " + ", ".join(f"{a} -> {b}" for a, b in renames.items())))
    for name, cols in result.ignored_columns.items():
        console.print(f"[yellow]{name}: ignored columns not in CDM {version}: {escape(', '.join(cols))}[/]")
    if result.skipped_files:
        skipped = escape(", ".join(result.skipped_files))
        console.print(f"[yellow]skipped files that are not CDM {version} tables: {skipped}[/]")


_STYLE = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red", "NOT EVALUATED": "dim"}


def check(
    db: Db = "cdm.duckdb",
    show_all: Annotated[bool, typer.Option("--all", help="List passing checks too.")] = False,
    json: JsonFlag = False,
) -> None:
    """Data-quality checks (DataQualityDashboard style); exit 1 when a fatal check fails."""
    from follicle.cdm.check import failed_fatal, run_checks
    from follicle.cdm.connect import redact

    con = _open(db)
    try:
        with Progress(SpinnerColumn(), TextColumn("running data-quality checks"), TimeElapsedColumn(),
                      console=err_console, transient=True, disable=json) as bar:
            bar.add_task("checks", total=None)
            results = run_checks(con)
    finally:
        con.disconnect()
    fatal = failed_fatal(results)
    message = f"{len(fatal)} fatal data-quality check(s) failed: {', '.join(r.id for r in fatal)}"
    if json:  # one JSON object: the checks, and the error when a fatal check failed
        print_json({"target": redact(db), "checks": [r.model_dump() for r in results],
                    "fatal_failures": [r.id for r in fatal]} | ({"error": message} if fatal else {}))
        if fatal:
            raise typer.Exit(CheckFailed.exit_code)
    else:
        counts = {s: sum(r.status == s for r in results) for s in _STYLE}
        table = Table(title=escape(f"{redact(db)}: ") + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
        wide = console.width >= 140
        table.add_column("status", no_wrap=True)
        table.add_column("check", overflow="fold")
        for col in ("violating", "rows", "%", "max %"):
            table.add_column(col, justify="right", no_wrap=True)
        if wide:
            table.add_column("what is counted")
        for r in results:
            if r.status == "PASS" and not show_all:
                continue
            cells = [f"[{_STYLE[r.status]}]{r.status}[/]", r.id,
                     "" if r.violating is None else f"{r.violating:,}", "" if r.total is None else f"{r.total:,}",
                     "" if r.share is None else f"{r.share:.3f}", f"{r.threshold:g}"]
            table.add_row(*cells, *([escape(r.note or r.description)] if wide else []))
        console.print(table)
    if fatal:
        raise CheckFailed(message)


def summary(
    db: Db = "cdm.duckdb",
    top: Annotated[int, typer.Option("--top", min=1, help="How many concepts per domain.")] = 10,
    min_cell_count: Annotated[int, typer.Option("--min-cell-count", min=1,
                                                help="Counts from 1 to this minus 1 are shown as '<N'; below 5 needs --allow-small-cells.")] = 10,
    allow_small_cells: Annotated[bool, typer.Option("--allow-small-cells", help="Allow --min-cell-count below 5.")] = False,
    json: JsonFlag = False,
) -> None:
    """Persons, person-years, observation span, sex, birth years and top concepts (aggregate only)."""
    from follicle.cdm.summary import summarise
    from follicle.privacy import check_min_cell_count

    warning = check_min_cell_count(min_cell_count, allow_small_cells=allow_small_cells, where="--min-cell-count")
    if warning:
        err_console.print(f"[bold yellow]warning:[/] {warning}")

    con = _open(db)
    try:
        result = summarise(con, top_n=top, min_cell_count=min_cell_count)
    finally:
        con.disconnect()
    if json:
        print_json(result.model_dump(mode="json"))
        return
    console.print(f"persons: {result.persons}   person-years: {result.person_years:,.1f}   "
                  f"observation: {result.observation_start} to {result.observation_end}")
    console.print(escape("sex: " + ", ".join(f"{k} {v}" for k, v in result.sex.items())))
    console.print("year of birth: " + ", ".join(f"{k}: {v}" for k, v in result.year_of_birth.items()))
    for section, rows in result.top.items():
        table = Table(title=f"top {section}")
        for col, just in (("concept_id", "right"), ("concept", "left"), ("records", "right"), ("persons", "right")):
            table.add_column(col, justify=just)
        for r in rows:
            table.add_row(str(r.concept_id), escape(r.concept_name), str(r.records), str(r.persons))
        console.print(table)


def fingerprint(db: Db = "cdm.duckdb", json: JsonFlag = False) -> None:
    """Print a stable hash of the CDM contents (row counts and latest dates per table, cdm_source)."""
    from follicle.cdm.connect import redact
    from follicle.cdm.fingerprint import fingerprint as fp

    value = fp(db)
    if json:
        print_json({"target": redact(db), "fingerprint": value})
    else:
        console.print(value)


def register(app: typer.Typer) -> None:
    """Add the ``cdm`` command group to *app*."""
    group = typer.Typer(help="OMOP CDM: init, load, check, summary, fingerprint.", no_args_is_help=True)
    for func in (init, load, check, summary, fingerprint):
        group.command(func.__name__)(guarded(func))
    app.add_typer(group, name="cdm")
