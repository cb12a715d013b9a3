"""``follicle run`` (a study spec on a CDM) and ``follicle demo`` (synthetic world + bundled study)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from follicle.cli._common import JsonFlag, console, err_console, guarded, loading_libraries, print_json

STUDIES = Path(__file__).resolve().parents[3] / "studies"
DEMO_STUDY = "jaki_neuropsych.yaml"


def _progress(disable: bool) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                    disable=disable, transient=True)


def _summary_rows(results: dict[str, Any], truth: dict[tuple[str, str], float] | None) -> list[dict[str, Any]]:
    """One row per comparison x outcome x adjustment (the primary adjustment first)."""
    rows = []
    for comp in results["comparisons"]:
        for o in comp["outcomes"]:
            estimates = o.get("estimates") or [dict(o, name=comp.get("primary_adjustment", ""), adjustment="")]
            for e in sorted(estimates, key=lambda e: e["name"] != comp.get("primary_adjustment")):
                row = {"comparison": comp["id"], "outcome": o["outcome"], "negative_control": o["negative_control"],
                       "adjustment": e["name"], "kind": e["adjustment"],
                       "n_target": e.get("n_target"), "n_comparator": e.get("n_comparator"),
                       "events_target": e.get("events_target"), "events_comparator": e.get("events_comparator"),
                       "hr": e.get("hr"), "hr_ci_low": e.get("hr_ci_low"), "hr_ci_high": e.get("hr_ci_high"),
                       "p": e.get("p"), "status": e.get("status"), "label": e.get("label"),
                       "diagnostics": e.get("diagnostics_overall")}
                if truth is not None:
                    true = truth.get((comp["id"], o["outcome"]))
                    row["true_hr"] = true
                    row["covered"] = (None if true is None or row["hr"] is None
                                      else bool(row["hr_ci_low"] <= true <= row["hr_ci_high"]))
                rows.append(row)
    return rows


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _finish(results: dict[str, Any]) -> None:
    """Warnings and what was not estimated on stderr; exit 3 when something was not estimated
    (the outputs are written either way)."""
    for w in results.get("warnings", []):
        err_console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)
    if not results.get("complete", True):
        err_console.print("[yellow]not everything was estimated[/] (exit code 3):", highlight=False)
        for line in results["not_estimated"]:
            err_console.print(f"  - {escape(line)}", highlight=False)
        raise typer.Exit(3)


def _print_table(rows: list[dict[str, Any]], title: str) -> None:
    """One Rich table per comparison: outcome, adjustment, sizes, events, HR and (demo) the true HR.
    With several adjustments, negative controls are shown under the primary one only (all are in
    results.json and ``--json``)."""
    with_truth = bool(rows) and "true_hr" in rows[0]
    several = len({r["adjustment"] for r in rows}) > 1
    primary = {r["comparison"]: r["adjustment"] for r in reversed(rows)}  # the first row of each is primary
    rows = [r for r in rows if not (several and r["negative_control"] and r["adjustment"] != primary[r["comparison"]])]
    console.print(f"[bold]{title}[/]")
    for comparison in dict.fromkeys(r["comparison"] for r in rows):
        table = Table(title=comparison.replace("_", " "), title_justify="left")
        cols = ("outcome",) + (("adjustment",) if several else ()) + ("n T/C", "events T/C", "HR (95% CI)")
        for col in cols + (("true HR", "in CI") if with_truth else ()):
            table.add_column(col, justify="left" if col in ("outcome", "adjustment") else "right",
                             no_wrap=col not in ("outcome", "adjustment"))
        for r in (r for r in rows if r["comparison"] == comparison):
            hr = (r["label"] or "-") if r["hr"] is None else f"{r['hr']:.2f} ({r['hr_ci_low']:.2f} to {r['hr_ci_high']:.2f})"
            cells = [r["outcome"] + (" (NC)" if r["negative_control"] else "")]
            cells += [r["adjustment"]] if several else []
            cells += [f"{_cell(r['n_target'])}/{_cell(r['n_comparator'])}",
                      f"{_cell(r['events_target'])}/{_cell(r['events_comparator'])}", escape(hr)]
            if with_truth:
                cells += ["-" if r["true_hr"] is None else f"{r['true_hr']:.2f}",
                          {True: "yes", False: "[red]no[/]", None: "-"}[r["covered"]]]
            table.add_row(*cells)
        console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``run`` and ``demo`` to *app*."""

    @app.command("run")
    @guarded
    def run(
        study: Annotated[Path, typer.Argument(help="Study spec (YAML or JSON).", exists=True, dir_okay=False)],
        db: Annotated[str, typer.Option("--db", help="CDM: DuckDB file, postgresql:// URL, spark:///ABS/DIR or sc://HOST:PORT.")] = "cdm.duckdb",
        out: Annotated[Path, typer.Option("--out", help="Shareable output folder (results.json, tables/, report.html); replaced as a whole.")] = Path("results"),
        work: Annotated[Path | None, typer.Option("--work", help="Work folder for the step cache (row-level; default <out>.work; never share it).")] = None,
        force: Annotated[bool, typer.Option("--force", help="Recompute every step, ignoring cached artefacts.")] = False,
        allow_small_cells: Annotated[bool, typer.Option(
            "--allow-small-cells", help="Accept a spec min_cell_count below 5 (a warning goes into the output and report).")] = False,
        json_out: JsonFlag = False,
    ) -> None:
        """Run a comparative study: cohorts, PS adjustments, outcomes, calibration, results and report.

        Exit code 0 when every outcome of every comparison was estimated (a suppressed estimate
        counts), 3 when some could not be (empty cohort, no events, ...: each is named, and the
        outputs hold what could be computed), 2 on bad input.
        """
        with loading_libraries():
            from follicle.run.study import run_study
            from follicle.study.spec import load_spec

        spec = load_spec(study)
        with _progress(json_out) as bar:
            task = bar.add_task("starting", total=None)
            done = run_study(spec, db, out, work_dir=work, force=force, allow_small_cells=allow_small_cells,
                             progress=lambda m: bar.update(task, description=m))
        if done.results.get("privacy_warning"):
            err_console.print(f"[bold yellow]warning:[/] {done.results['privacy_warning']}")
        rows = _summary_rows(done.results, None)
        if json_out:
            print_json({"out": str(out), "results": str(out / "results.json"), "report": str(out / "report.html"),
                        **({"privacy_warning": done.results["privacy_warning"]} if done.results.get("privacy_warning") else {}),
                        "work": str(done.store.root.parent),
                        "computed": dict(done.store.computed), "reused": dict(done.store.reused),
                        "complete": done.results["complete"], "not_estimated": done.results["not_estimated"],
                        "warnings": done.results["warnings"], "estimates": rows})
            if not done.results["complete"]:
                raise typer.Exit(3)
            return
        _print_table(rows, f"{spec.name}: hazard ratios per adjustment")
        console.print(f"results: {out / 'results.json'}  report: {out / 'report.html'}  "
                      f"(steps computed {sum(done.store.computed.values())}, reused {sum(done.store.reused.values())})")
        _finish(done.results)

    @app.command("demo")
    @guarded
    def demo(
        persons: Annotated[int, typer.Option("--persons", min=1000, help="Size of the synthetic world.")] = 200_000,
        seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the synthetic world.")] = 1,
        out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("follicle-demo"),
        json_out: JsonFlag = False,
    ) -> None:
        """Build a synthetic AA world, run the bundled JAKi neuropsychiatric study, compare with the truth."""
        with loading_libraries():
            from follicle.run.demo import run_demo

        with _progress(json_out) as bar:
            task = bar.add_task("synthetic world", total=None)
            done, truth = run_demo(persons, seed, out, STUDIES / DEMO_STUDY,
                                   progress=lambda m: bar.update(task, description=m))
        rows = _summary_rows(done.results, truth)
        covered = [r["covered"] for r in rows if r["covered"] is not None]
        if json_out:
            print_json({"out": str(out), "report": str(out / "report.html"), "estimates": rows,
                        "coverage": sum(covered) / len(covered) if covered else None})
            return
        _print_table(rows, f"Demo: {persons:,}-person synthetic world, estimated vs true hazard ratios")
        if covered:
            console.print(f"true HR inside the 95% CI for {sum(covered)} of {len(covered)} comparison x outcome pairs")
        console.print(f"report: {out / 'report.html'}")
