"""``follicle synth``: build the synthetic alopecia-areata world as an OMOP CDM (+ ground truth)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from follicle.cli._common import JsonFlag, console, guarded, print_json


def register(app: typer.Typer) -> None:
    """Add the ``synth`` command to *app*."""

    @app.command("synth")
    @guarded
    def synth(
        persons: Annotated[int, typer.Option("--persons", min=1, help="Number of persons.")] = 20_000,
        seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed (same seed, same tables).")] = 0,
        db: Annotated[str, typer.Option("--db", help="Target DuckDB file (or postgresql:// URL) for the CDM.")] = "synth.duckdb",
        parquet: Annotated[Path | None, typer.Option(
            "--parquet", help="Write a folder of Parquet tables instead of --db (for a warehouse; `cdm load` reads it).")] = None,
        chunk_persons: Annotated[int, typer.Option(
            "--chunk-persons", min=1, help="Persons generated and written at a time (bounds memory; same data "
                                           "whatever the value).")] = 250_000,
        truth: Annotated[Path | None, typer.Option("--truth", help="Write the ground-truth JSON here.")] = None,
        config: Annotated[Path | None, typer.Option("--config", help="World config (YAML/JSON).")] = None,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")] = False,
        json_out: JsonFlag = False,
    ) -> None:
        """Simulate a synthetic AA world and stream it, chunk by chunk, into an OMOP CDM v5.4 (DuckDB,
        PostgreSQL) or a folder of Parquet tables."""
        from follicle.synth.build import build_world, load_config
        from follicle.synth.world import block_sizes

        cfg = load_config(config)
        chunks = -(-len(block_sizes(cfg, persons)) // max(1, -(-chunk_persons // cfg.block_persons)))
        out = str(parquet) if parquet is not None else db
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=console, disable=json_out, transient=True) as bar:
            task = bar.add_task("synth: persons", total=chunks + (truth is not None))

            def tick(step: str) -> None:
                bar.update(task, advance=1, description=f"synth: {step}")

            world, counts, _truth = build_world(persons, seed, db, truth_path=truth, config=cfg, overwrite=overwrite,
                                                parquet=parquet, chunk_persons=chunk_persons, progress=tick)
        from follicle.synth.truth import summary_counts

        summary = {"db": None if parquet is not None else db, "parquet": str(parquet) if parquet else None,
                   "truth": str(truth) if truth else None, "persons": persons, "seed": seed,
                   "rows": counts, "summary": summary_counts(world)}
        if json_out:
            print_json(summary)
            return
        table = Table(title=escape(f"Synthetic AA world: {persons:,} persons, seed {seed} -> {out}"))
        table.add_column("table")
        table.add_column("rows", justify="right")
        for name, n in counts.items():
            if name not in ("concept", "concept_relationship", "concept_ancestor", "vocabulary", "domain",
                            "concept_class", "relationship", "cdm_source"):
                table.add_row(name, f"{n:,}")
        console.print(table)
        s = summary["summary"]
        console.print(f"AA: {s['aa']:,}; treated: {s['treated']:,} (first class: "
                      + ", ".join(f"{k} {v:,}" for k, v in s["first_class"].items()) + ")")
        if truth:
            console.print(f"ground truth written to {truth}")
