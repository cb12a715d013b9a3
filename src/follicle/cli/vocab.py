"""``follicle vocab``: the standardized vocabularies of a CDM (``vocab load`` from an Athena download)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from follicle.cli._common import JsonFlag, console, err_console, guarded, print_json

Db = Annotated[str, typer.Option("--db", envvar="FOLLICLE_DB", help="The CDM: a DuckDB file or a postgresql:// URL.")]


def load(
    source: Annotated[Path, typer.Argument(help="Folder (or .zip) of an Athena download: CONCEPT.csv, "
                                                "CONCEPT_RELATIONSHIP.csv, CONCEPT_ANCESTOR.csv, ... (tab-separated).")],
    db: Db = "cdm.duckdb",
    json: JsonFlag = False,
) -> None:
    """Add or replace the vocabulary tables of an existing CDM from an Athena download, atomically."""
    from follicle.cdm.vocabulary import load_vocabulary

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console,
                  transient=True, disable=json) as bar:
        task = bar.add_task("loading vocabulary", total=None)
        result = load_vocabulary(source, db, progress=lambda t, n: bar.update(task, description=f"loaded {t} ({n:,} rows)"))
    if json:
        print_json(result.to_dict())
        return
    table = Table(title=escape(f"{result.target}: vocabulary loaded in {result.seconds:.1f} s"))
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in result.rows.items():
        table.add_row(name + (" (created)" if name in result.created else ""), f"{n:,}")
    console.print(table)
    if result.kept:
        console.print(f"[yellow]not in the download, left as they were: {escape(', '.join(result.kept))}[/]")
    if result.skipped_files:
        console.print(f"[yellow]skipped files that are not vocabulary tables: {escape(', '.join(result.skipped_files))}[/]")


def register(app: typer.Typer) -> None:
    """Add the ``vocab`` command group to *app*."""
    group = typer.Typer(help="Standardized vocabularies: load an Athena download into a CDM.", no_args_is_help=True)
    group.command("load")(guarded(load))
    app.add_typer(group, name="vocab")
