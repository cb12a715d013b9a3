"""CLI commands: ``follicle salt`` and the ``follicle response`` group (single-arm, predictors,
safety on a clinic's CSV registry; a predictor study on an OMOP CDM)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from follicle.cli._common import err_console, JsonFlag, console, guarded, print_json, to_json
from follicle.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

MinCell = Annotated[
    int, typer.Option("--min-cell-count", min=1, help="Counts from 1 to this minus 1 are shown as '<N'; below 5 needs --allow-small-cells.")
]
AllowSmall = Annotated[bool, typer.Option("--allow-small-cells", help="Allow --min-cell-count below 5 (a warning is printed).")]


def _protect(obj: dict, min_cell_count: int, allow_small_cells: bool) -> dict:
    """Rates of small cells withheld, small counts suppressed; a warning when the threshold is low."""
    from follicle.privacy import check_min_cell_count, suppress_counts, withhold_small_rates

    warning = check_min_cell_count(min_cell_count, allow_small_cells=allow_small_cells, where="--min-cell-count")
    out = suppress_counts(withhold_small_rates(obj, min_cell_count), COUNT_KEYS, min_cell_count)
    if warning:
        err_console.print(f"[bold yellow]warning:[/] {warning}")
        out["privacy_warning"] = warning
    return out
COUNT_KEYS = {"n", "events", "responders", "n_patients", "n_evaluable"}



def _write_atomic(path: Path, text: str) -> None:
    """Write *text* to *path* through a temporary file and a rename (no half-written output)."""
    import os

    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _table(title: str, frame: pd.DataFrame, digits: int = 4) -> Table:
    import pandas as pd

    t = Table(title=title)
    for col in frame.columns:
        t.add_column(str(col))
    for rec in frame.itertuples(index=False):
        t.add_row(*[f"{v:.{digits}g}" if isinstance(v, float) else escape(str(v)) for v in rec])
    return t


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _references(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"--reference must look like name=level; got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def salt_command(
    top: Annotated[float, typer.Option("--top", help="% terminal hair loss, top/vertex (weight 0.40).")],
    back: Annotated[float, typer.Option("--back", help="% loss, back/posterior (weight 0.24).")],
    left: Annotated[float, typer.Option("--left", help="% loss, left side (weight 0.18).")],
    right: Annotated[float, typer.Option("--right", help="% loss, right side (weight 0.18).")],
    eyebrow: Annotated[int | None, typer.Option("--eyebrow", help="Eyebrow ClinRO 0 (none) to 3 (complete loss).")] = None,
    eyelash: Annotated[int | None, typer.Option("--eyelash", help="Eyelash ClinRO 0 (none) to 3 (complete loss).")] = None,
    json_out: JsonFlag = False,
) -> None:
    """SALT total and AA-IGA category from the four regional percentages of scalp hair loss."""
    from follicle.response.salt import score

    for name, value in (("top", top), ("back", back), ("left", left), ("right", right)):
        if not 0 <= value <= 100:
            raise InputError(f"--{name} must be a percentage in [0, 100]; got {value:g}")
    for name, value in (("eyebrow", eyebrow), ("eyelash", eyelash)):
        if value is not None and value not in (0, 1, 2, 3):
            raise InputError(f"--{name} must be a ClinRO score 0-3; got {value}")
    r = score(top, back, left, right)
    clinro = {k: v for k, v in (("eyebrow_clinro", eyebrow), ("eyelash_clinro", eyelash)) if v is not None}
    if json_out:
        print_json({"salt": r.salt, "aa_iga": r.aa_iga, "aa_iga_label": r.aa_iga_label,
                    "regions": {"top": top, "back": back, "left": left, "right": right}, **clinro})
    else:
        extra = "".join(f", {k.replace('_', ' ')} {v}" for k, v in clinro.items())
        console.print(f"SALT {r.salt:.1f}  (AA-IGA {r.aa_iga}: {r.aa_iga_label}{extra})")


def single_arm(
    visits_csv: Annotated[Path, typer.Argument(help="Visits CSV: patient_id, date, salt or 4 regions, on_drug.")],
    response: Annotated[str, typer.Option(help="Response definition: salt20, salt10, salt50, salt75, salt90.")] = "salt50",
    landmark_days: Annotated[float | None, typer.Option(help="Assess at this day after the first on-drug visit (default: end of treatment).")] = None,
    window_days: Annotated[float, typer.Option(help="Half-width of the landmark window in days.")] = 42.0,
    imputation: Annotated[str, typer.Option(help="No visit in the window: nri, locf or none.")] = "nri",
    plot: Annotated[Path | None, typer.Option(help="Write a spaghetti plot of SALT over time here (.png/.svg/.pdf).")] = None,
    conf_level: Annotated[float, typer.Option(help="Confidence level.")] = 0.95,
    min_cell_count: MinCell = 10,
    allow_small_cells: AllowSmall = False,
    json_out: JsonFlag = False,
) -> None:
    """Responder rate with an exact Clopper-Pearson CI and mean (SD) regrowth among responders."""
    from follicle.registry import read_visits
    from follicle.response.endpoints import patient_endpoints
    from follicle.response.single_arm import single_arm_summary

    visits = read_visits(visits_csv)
    ep = patient_endpoints(visits, _endpoint_settings(response, landmark_days, window_days, imputation),
                           source=visits_csv.name)
    summary = single_arm_summary(ep, conf_level=conf_level)
    summary["definition"] = ep.attrs["definition"]
    summary["assessment"] = [{"how": str(k), "n": int(v)} for k, v in ep["assessment"].value_counts().items()]
    relapse = ep["relapse"].dropna()
    summary["relapse_after_stopping"] = {"n": int(len(relapse)), "events": int(relapse.sum())}
    if plot is not None:
        from follicle.report.spaghetti import write_spaghetti

        summary["plot"] = str(write_spaghetti(visits, plot))
    out = _protect(summary, min_cell_count, allow_small_cells)
    if json_out:
        print_json(out)
        return
    rr = out["responder_rate"]
    console.print(f"[bold]{out['definition']}[/]")
    console.print(f"responders {rr['responders']} / {rr['n']}: {rr['rate']:.1%} "
                  f"(exact {conf_level:.0%} CI {rr['ci_low']:.1%} to {rr['ci_high']:.1%})")
    g = out["regrowth_responders"]
    console.print(f"regrowth among responders: mean {g['mean']:.1f}% (SD {g['sd']:.1f}), n {g['n']}")
    console.print("assessment: " + ", ".join(f"{a['how']} {a['n']}" for a in out["assessment"]))


def predictors(
    patients_csv: Annotated[Path, typer.Argument(help="Patients CSV: patient_id, outcome and baseline predictors.")],
    outcome: Annotated[str, typer.Option(help="Outcome column (0/1 for logistic, a number for linear).")],
    predictors_: Annotated[str, typer.Option("--predictors", help="Comma-separated predictor columns.")],
    categorical: Annotated[str, typer.Option(help="Comma-separated predictors to treat as categorical.")] = "",
    reference: Annotated[list[str] | None, typer.Option(help="Reference level, name=level (repeatable).")] = None,
    model: Annotated[str, typer.Option(help="auto (0/1 outcome: logistic), logistic or linear.")] = "auto",
    firth: Annotated[bool, typer.Option("--firth", help="Firth-penalised logistic regression (small samples, separation).")] = False,
    screen: Annotated[bool, typer.Option("--screen", help="Also print the univariable screen.")] = False,
    subgroups: Annotated[str, typer.Option(help="Comma-separated columns for subgroup tables, e.g. aa_type,sex.")] = "",
    conf_level: Annotated[float, typer.Option(help="Confidence level.")] = 0.95,
    seed: Annotated[int, typer.Option(help="Seed of the cross-validation folds.")] = 0,
    visits: Annotated[Path | None, typer.Option(help="Visits CSV: derive endpoints (responder, regrowth_pct, salt20, ...) per patient.")] = None,
    response: Annotated[str, typer.Option(help="With --visits: response definition (salt20, salt50, ...).")] = "salt20",
    landmark_days: Annotated[float | None, typer.Option(help="With --visits: landmark day (default end of treatment).")] = None,
    window_days: Annotated[float, typer.Option(help="With --visits: landmark window half-width in days.")] = 42.0,
    imputation: Annotated[str, typer.Option(help="With --visits: nri, locf or none.")] = "nri",
    min_cell_count: MinCell = 10,
    allow_small_cells: AllowSmall = False,
    json_out: JsonFlag = False,
) -> None:
    """Multivariable logistic (ORs) or linear regression of an endpoint on baseline predictors.

    The outcome is a column of PATIENTS.csv, or with --visits an endpoint derived from each
    patient's visits (e.g. --outcome responder --response salt20 --landmark-days 274).
    """
    from follicle.registry import read_patients, read_visits
    from follicle.response.endpoints import attach_endpoints, patient_endpoints

    names = _split(predictors_)
    if not names:
        raise InputError("--predictors needs at least one column name")
    definition = None
    if visits is None:
        data = read_patients(patients_csv, required=[outcome, *names])
    else:
        data = read_patients(patients_csv, required=names)
        ep = patient_endpoints(read_visits(visits), _endpoint_settings(response, landmark_days, window_days, imputation),
                               source=visits.name)
        definition = ep.attrs["definition"]
        data = attach_endpoints(data, ep, source=patients_csv.name)
        if outcome not in data.columns:
            raise InputError(f"--outcome {outcome!r} is neither a column of {patients_csv.name} nor an endpoint "
                             f"({', '.join(c for c in ep.columns if c != 'patient_id')})")
        if imputation == "none":
            data = data[data[outcome].notna()]
    result = run_predictor_analysis(
        data, outcome, names, categorical=_split(categorical), reference=_references(reference or []),
        model=model, firth=firth, screen=screen, subgroups=_split(subgroups), conf_level=conf_level,
        seed=seed, source=patients_csv.name,
    )
    if definition:
        result["endpoint_definition"] = definition
    _emit_predictors(_protect(result, min_cell_count, allow_small_cells), json_out)


def run_predictor_analysis(
    data: pd.DataFrame, outcome: str, names: list[str], *, categorical: list[str], reference: dict,
    model: str, firth: bool, screen: bool, subgroups: list[str], conf_level: float, seed: int, source: str,
) -> dict:
    """The predictor analysis shared by the CSV and CDM routes (library calls only)."""
    import pandas as pd

    from follicle.response.predictors import fit_linear, fit_logistic, subgroup_table, univariable_screen

    if model not in ("auto", "logistic", "linear"):
        raise InputError(f"--model must be auto, logistic or linear; got {model!r}")
    if model == "auto":
        vals = pd.to_numeric(data[outcome], errors="coerce").dropna().unique()
        model = "logistic" if set(vals) <= {0, 1} else "linear"
    kw = dict(categorical=categorical, reference=reference, conf_level=conf_level, source=source)
    if model == "logistic":
        res = fit_logistic(data, outcome, names, firth=firth, seed=seed, **kw)
    else:
        res = fit_linear(data, outcome, names, **kw)
    out = res.to_dict()
    if screen:
        scr = univariable_screen(data, outcome, names, kind=model, firth=firth and model == "logistic", **kw)
        out["screen"] = scr.to_dict(orient="records")
    if subgroups:
        out["subgroups"] = [
            rec for by in subgroups
            for rec in subgroup_table(data, outcome, by, binary=model == "logistic", conf_level=conf_level)
            .to_dict(orient="records")
        ]
    return out


def _emit_predictors(out: dict, json_out: bool) -> None:
    import pandas as pd

    if json_out:
        print_json(out)
        return
    console.print(f"[bold]{out['kind']} regression of {out['outcome']}[/] ({out['method']}); n {out['n']}"
                  + (f", events {out['events']}" if out["events"] is not None else ""))
    console.print(_table("terms", pd.DataFrame(out["terms"])))
    metrics = {k: v for k, v in out["metrics"].items() if isinstance(v, float)}
    console.print(", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    if out["metrics"].get("reference_levels"):
        console.print(f"reference levels: {out['metrics']['reference_levels']}")
    if "screen" in out:
        console.print(_table("univariable screen", pd.DataFrame(out["screen"])))
    if "subgroups" in out:
        console.print(_table("subgroups", pd.DataFrame(out["subgroups"])))
    for w in out["warnings"]:
        console.print(f"[yellow]warning:[/] {escape(w)}")


def safety(
    events_csv: Annotated[Path, typer.Argument(help="Events CSV: patient_id, event_type[, date] or event_type, events, person_years.")],
    person_years: Annotated[float | None, typer.Option(help="Total patient-years of exposure (patient-level events).")] = None,
    exposure: Annotated[Path | None, typer.Option(help="Exposure CSV: patient_id, start_date, end_date.")] = None,
    count: Annotated[str, typer.Option(help="Count 'events' or 'patients' with >= 1 event.")] = "events",
    per: Annotated[float, typer.Option(help="Rate per this many patient-years.")] = 100.0,
    conf_level: Annotated[float, typer.Option(help="Confidence level.")] = 0.95,
    min_cell_count: MinCell = 10,
    allow_small_cells: AllowSmall = False,
    json_out: JsonFlag = False,
) -> None:
    """Incidence rates per 100 patient-years with exact Poisson CIs, by event type."""
    import pandas as pd

    from follicle.registry import read_events, read_exposure
    from follicle.response.safety import rate_table, safety_rates

    events, aggregate = read_events(events_csv)
    if aggregate:
        if person_years is not None or exposure is not None:
            raise InputError(f"{events_csv.name} already holds person_years; drop --person-years/--exposure")
        counts = dict(zip(events["event_type"], events["events"].astype(int)))
        pys = dict(zip(events["event_type"], events["person_years"]))
        table = rate_table(counts, pys, per=per, conf_level=conf_level)
    else:
        if person_years is not None and person_years <= 0:
            raise InputError(f"--person-years must be > 0; got {person_years:g}")
        exp = read_exposure(exposure) if exposure is not None else None
        if person_years is None and exp is None:
            raise InputError("patient-level events need --person-years or --exposure")
        types = sorted(t for t in events["event_type"].unique() if t)
        table = safety_rates(events, person_years=person_years, exposure=exp, count=count, per=per,
                             conf_level=conf_level, event_types=types)
    out = _protect({"per": per, "conf_level": conf_level, "count": count if not aggregate else "events",
                    "rates": table.to_dict(orient="records")}, min_cell_count, allow_small_cells)
    if json_out:
        print_json(out)
    else:
        console.print(_table(f"incidence rate per {per:g} patient-years (exact Poisson CI)",
                             pd.DataFrame(out["rates"]).drop(columns=["per", "conf_level"])))


def cdm(
    spec_file: Annotated[Path, typer.Argument(help="Response study spec (YAML), e.g. studies/baricitinib_predictors.yaml.")],
    db: Annotated[str, typer.Option("--db", help="CDM: a DuckDB file or postgresql:// URL.")],
    schema: Annotated[str | None, typer.Option(help="Database schema holding the CDM tables.")] = None,
    firth: Annotated[bool | None, typer.Option("--firth/--no-firth", help="Override the spec's Firth setting.")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Also write the (aggregate) results JSON here.")] = None,
    min_cell_count: MinCell = 10,
    allow_small_cells: AllowSmall = False,
    json_out: JsonFlag = False,
) -> None:
    """Run a response predictor study (e.g. Wada-Irimada) on SALT measurements in an OMOP CDM."""
    import pandas as pd

    from follicle.study.salt_cohort import load_spec, run_study

    spec = load_spec(spec_file)
    if firth is not None:
        spec = spec.model_copy(update={"analysis": spec.analysis.model_copy(update={"firth": firth})})
    out = run_study(spec, db, schema=schema)
    out = _protect(out, min_cell_count, allow_small_cells)
    if out_file is not None:
        _write_atomic(out_file, to_json(out) + "\n")
    if json_out:
        print_json(out)
        return
    console.print(f"[bold]{spec.name}[/] ({out['outcome']['response']} at day {out['outcome']['landmark_days']} "
                  f"+/- {out['outcome']['window_days']}, imputation {out['outcome']['imputation']})")
    console.print(_table("attrition", pd.DataFrame(out["attrition"])))
    if "screen" in out:
        console.print(_table("univariable screen", pd.DataFrame(out["screen"])))
    for key in ("logistic", "linear"):
        if key in out:
            _emit_predictors(out[key], False)


def _endpoint_settings(response: str, landmark_days: float | None, window_days: float | None,
                       imputation: str) -> Any:
    """Validated endpoint settings; a bad combination is the user's error, named in the message."""
    from follicle.response.endpoints import EndpointSettings

    settings = EndpointSettings(response=response, landmark_days=landmark_days, window_days=window_days,
                                imputation=imputation)
    try:
        settings.validate()
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return settings


def register(app: typer.Typer) -> None:
    """Add ``salt`` and the ``response`` group to *app*."""
    app.command("salt")(guarded(salt_command))
    group = typer.Typer(help="Response analytics: single-arm, predictors, safety (CSV or CDM).",
                        no_args_is_help=True)
    group.command("single-arm")(guarded(single_arm))
    group.command("predictors")(guarded(predictors))
    group.command("safety")(guarded(safety))
    group.command("cdm")(guarded(cdm))
    app.add_typer(group, name="response")
