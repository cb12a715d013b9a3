"""CLI commands: ``follicle cds check`` (a FHIR Bundle -> decision) and ``follicle cds serve``."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from follicle.cli._common import JsonFlag, console, guarded, print_json
from follicle.errors import InputError

cds_app = typer.Typer(help="Treatment decision support for JAK inhibitors in alopecia areata.", no_args_is_help=True)


def _parse_date(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{name}: expected a date as YYYY-MM-DD, got {value!r}") from None


def _apply_facts(facts, assignments: list[str]):  # type: ignore[no-untyped-def]
    """Facts the record does not hold, given as ``name=value`` (value read as JSON when it parses).

    The record comes first: a ``--fact`` for a fact the record already gives is an error.
    """
    from follicle.cds.facts import PatientFacts

    if not assignments:
        return facts
    update: dict = {}
    clash: list[str] = []
    for a in assignments:
        name, sep, raw = a.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--fact: expected name=value, got {a!r}")
        if name.strip() not in PatientFacts.model_fields or name.strip() in {"as_of", "history"}:
            raise InputError(f"--fact: {name.strip()!r} is not a patient fact", problems=[
                "facts: " + ", ".join(k for k in PatientFacts.model_fields if k not in {"as_of", "history"})])
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if getattr(facts, name.strip()) is not None:
            clash.append(f"{name.strip()}: the record gives {getattr(facts, name.strip())!r}")
        update[name.strip()] = value
    if clash:
        raise InputError("--fact only fills what the record lacks; these facts are in the record", problems=clash)
    data = facts.model_dump()
    data.update(update)
    return PatientFacts.model_validate(data)


def run_check(bundle_path: Path, drug: str, start: date | None, as_of: date | None, strict: bool, horizon_months: int,
              fact: list[str] | None = None, region: str = "EU", mode: str = "start",
              max_result_age_days: int | None = None) -> dict:
    """Load the bundle, evaluate *drug*, and return a JSON-ready result (also used by tests)."""
    from follicle.cds.engine import evaluate
    from follicle.cds.fhir import MAX_RESULT_AGE_DAYS, parse_bundle
    from follicle.cds.kb import DISCLAIMER

    try:
        bundle = json.loads(Path(bundle_path).read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{bundle_path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{bundle_path}: cannot read the bundle ({exc})") from None
    as_of = as_of or date.today()
    start = start or as_of
    record = parse_bundle(bundle, as_of=as_of, unknown_loinc="error" if strict else "warn",
                          max_result_age_days=MAX_RESULT_AGE_DAYS if max_result_age_days is None else max_result_age_days)
    facts = _apply_facts(record.facts, fact or [])
    decision = evaluate(facts, drug, region=region.upper(), mode=mode, start=start, horizon_months=horizon_months)  # type: ignore[arg-type]
    return {
        "disclaimer": DISCLAIMER,
        "bundle": str(bundle_path),
        "region": region.upper(),
        "decision": decision.model_dump(mode="json"),
        "facts": facts.model_dump(mode="json", exclude={"history"}),
        "facts_given": list(fact or []),
        "assumed_facts": list(fact or []) + decision.assumed,
        "record_notes": record.notes,
        "warnings": record.warnings,
    }


def _render(result: dict) -> None:
    d = result["decision"]
    colour = {"do-not-start": "red", "cannot-decide": "magenta", "start-with-cautions": "yellow", "start": "green"}[d["decision"]]
    console.print(f"[bold]{d['drug']}[/] for patient {result['facts'].get('patient_id') or '?'} on {d['as_of']}: "
                  f"[bold {colour}]{d['decision']}[/]  (label applied: {d['label']}, region {d['region']})")
    if d["needs"]:
        console.print("[bold magenta]Cannot decide: need[/] " + "; ".join(d["needs"]))
    if d["reasons"]:
        t = Table(title="Reasons", show_lines=False)
        for col in ("severity", "rule", "observed", "message", "label, section", "source", "status"):
            t.add_column(col, overflow="fold")
        for r in d["reasons"]:
            t.add_row(r["severity"], r["rule_id"], r["observed"] or "", r["message"], f"{r['label']} {r['section'] or ''}",
                      f"{r['source']['label']}\n{r['source']['url']}", f"{r['flag']} (checked {r['checked']})")
        console.print(t)
    if d["dose"]:
        dose = d["dose"]
        console.print(f"[bold]Dose:[/] {dose['text']}  [dim]({dose['base']['source']['url']})[/]")
        for a in dose["adjustments"]:
            console.print(f"  step-down {a['rule_id']}: {a['message']} [{a['flag']}] {a['source']['url']}")
    if d["missing_screening"]:
        console.print("[bold]Screening still missing:[/]")
        for m in d["missing_screening"]:
            console.print(f"  - {m['message']} [{m['flag']}] {m['source']['url']}")
    if d["not_assessed"]:
        console.print("[bold]Not in the record (confirm):[/] " + ", ".join(n["fact"] for n in d["not_assessed"]))
    if d["schedule"]:
        t = Table(title=f"Monitoring from {d['schedule']['start']}")
        for col in ("due from", "due by", "task", "status", "source"):
            t.add_column(col, overflow="fold")
        for task in d["schedule"]["tasks"]:
            t.add_row(task["due_from"] or "", task["due_by"], task["label"], task["status"], f"{task['source']['url']} [{task['status_tag']}]")
        console.print(t)
    for x in d["region_differences"]:
        console.print(f"[cyan]EU/US labels differ:[/] {x}")
    if result["assumed_facts"]:
        console.print("[bold]Assumed (not from the record):[/] " + "; ".join(result["assumed_facts"]))
    for n in result["record_notes"]:
        console.print(f"[dim]From the record: {n}[/]")
    if d["not_encoded"]:
        console.print("[dim]Label points not encoded (source not available): " + "; ".join(d["not_encoded"]) + "[/]")
    for a in d["advice"]:
        console.print(f"[dim]Note: {a['message']} ({a['source']['url']})[/]")
    for w in result["warnings"]:
        console.print(f"[yellow]warning:[/] {w}")
    if d["partially_verified_rules"]:
        console.print("[yellow]Partially verified rules used:[/] " + ", ".join(d["partially_verified_rules"]))
    console.print(f"[bold]{result['disclaimer']}[/]")


@cds_app.command("check")
@guarded
def check(
    bundle: Annotated[Path, typer.Argument(help="A FHIR R4 Bundle (JSON) holding one patient's record.")],
    drug: Annotated[str, typer.Option("--drug", help="Ingredient: baricitinib, ritlecitinib (EU and US labels), deuruxolitinib (US label only); others are refused.")],
    start: Annotated[str | None, typer.Option("--start", help="Planned start date (YYYY-MM-DD); default: the evaluation date.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Evaluation date (YYYY-MM-DD); default: today.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Treat an Observation with an unknown LOINC as an error.")] = False,
    horizon_months: Annotated[int, typer.Option("--horizon-months", min=1, max=120, help="Length of the schedule.")] = 12,
    fact: Annotated[list[str] | None, typer.Option("--fact", help="A fact the record lacks, as name=value (repeatable), e.g. hepatic_class=A, active_infection=false; listed as assumed.")] = None,
    region: Annotated[str, typer.Option("--region", envvar="FOLLICLE_CDS_REGION", help="Which label applies: EU (SmPC) or US (prescribing information).")] = "EU",
    on_treatment: Annotated[bool, typer.Option("--on-treatment", help="The patient already takes the drug (interrupt/discontinue rules) instead of starting it.")] = False,
    max_result_age_days: Annotated[int | None, typer.Option("--max-result-age-days", min=0, max=3650, help="Results older than this many days are not taken as current (default 90: a practice setting, not a label statement).")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Check a FHIR Bundle for a JAK inhibitor: decision, dose, missing screening, monitoring schedule."""
    if region.upper() not in ("EU", "US"):
        raise InputError(f"--region: expected EU or US, got {region!r}")
    result = run_check(bundle, drug, _parse_date(start, "--start"), _parse_date(as_of, "--as-of"), strict, horizon_months, fact, region,
                       "on_treatment" if on_treatment else "start", max_result_age_days)
    if json_out:
        print_json(result)
    else:
        _render(result)


@cds_app.command("serve")
@guarded
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8080,
) -> None:
    """Serve the CDS Hooks 2.0 endpoints (settings from FOLLICLE_CDS_* environment variables)."""
    import uvicorn

    from follicle.service.main import create_app
    from follicle.service.settings import load_settings

    settings = load_settings()
    if not settings.auth_enabled:
        console.print("[yellow]JWT verification is OFF (FOLLICLE_CDS_AUTH_ENABLED=false): local demo only.[/]")
    console.print("This service supports, and does not replace, the clinician's judgement.")
    uvicorn.run(create_app(), host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    """Add the ``cds`` group to *app*."""
    app.add_typer(cds_app, name="cds")
