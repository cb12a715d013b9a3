"""``follicle synth``: build the synthetic alopecia-areata world as an OMOP CDM (+ ground truth)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
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
        db: Annotated[Path, typer.Option("--db", help="Target DuckDB file for the CDM.")] = Path("synth.duckdb"),
        truth: Annotated[Path | None, typer.Option("--truth", help="Write the ground-truth JSON here.")] = None,
        config: Annotated[Path | None, typer.Option("--config", help="World config (YAML/JSON).")] = None,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --db file.")] = False,
        json_out: JsonFlag = False,
    ) -> None:
        """Simulate a synthetic AA world and write it as an OMOP CDM v5.4 (DuckDB)."""
        from follicle.synth.build import STEPS, build_world, load_config

        cfg = load_config(config)
        steps = [s for s in STEPS if truth is not None or s != "truth"]
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=console, disable=json_out, transient=True) as bar:
            task = bar.add_task("synth: population", total=len(steps))

            def tick(step: str) -> None:
                bar.advance(task)
                done = steps.index(step) if step in steps else 0
                bar.update(task, description=f"synth: {steps[min(done + 1, len(steps) - 1)]}")

            world, counts, _truth = build_world(persons, seed, db, truth_path=truth, config=cfg, overwrite=overwrite,
                                                progress=tick)
        from follicle.synth.truth import summary_counts

        summary = {"db": str(db), "truth": str(truth) if truth else None, "persons": persons, "seed": seed,
                   "rows": counts, "summary": summary_counts(world)}
        if json_out:
            print_json(summary)
            return
        table = Table(title=f"Synthetic AA world: {persons:,} persons, seed {seed} -> {db}")
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
