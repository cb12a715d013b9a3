"""Results of a study run as aggregate, suppressed data: results.json and Parquet tables.

Counts from 1 to ``min_cell_count - 1`` leave as ``"<N"``; an estimate that would let a reader
recover a suppressed count is withheld (set to None and named in ``withheld``): risks, risk
differences, ratios and incidence rates of an arm with a suppressed event count, and every
estimate of an outcome whose matched arms are suppressed. Schema: docs/results-schema.md.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from follicle import __version__
from follicle.privacy import is_small, suppress_count
from follicle.run import diagnostics as dx
from follicle.run.adjust import AdjustedCohort
from follicle.run.degenerate import DONE, ESTIMATED, NO_EVENTS, NOT_ESTIMABLE, outcome_status, status_label
from follicle.run.estimate import OutcomeEstimate
from follicle.run.pipeline import ComparisonRun
from follicle.study.coverage import ConceptSetReport, missed_warnings, suppressed_report
from follicle.study.hashing import spec_hash
from follicle.study.spec import StudySpec

COUNT_KEYS = ("n_target", "n_comparator", "events_target", "events_comparator", "n_target_before",
              "n_comparator_before", "count", "persons", "matched_sets")
_EVENT_DEPENDENT = ("risk_{arm}", "ir_per_1000py_{arm}", "ir_ci_low_{arm}", "ir_ci_high_{arm}")
_CONTRASTS = ("rd", "rd_ci_low", "rd_ci_high", "rr", "rr_ci_low", "rr_ci_high", "or", "or_ci_low", "or_ci_high")
_ALL_ESTIMATES = _CONTRASTS + ("hr", "hr_ci_low", "hr_ci_high", "log_hr", "se_log_hr", "p", "logrank_p",
                               "logrank_chisq", "ph_test_p", "ph_test_chisq", "evalue", "evalue_ci",
                               "calibrated_p", "calibrated_hr", "calibrated_ci_low", "calibrated_ci_high", "mdrr",
                               "person_years_target", "person_years_comparator", "mean_followup_days_target",
                               "mean_followup_days_comparator", "median_followup_days_target",
                               "median_followup_days_comparator")


def _clean(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def outcome_record(o: OutcomeEstimate, min_cell: int, note: str | None = None) -> dict[str, Any]:
    """One comparison x outcome row, suppressed; *note* says where the events ran out (no events)."""
    rec = {k: _clean(v) for k, v in o.numbers.items()}
    withheld: list[str] = []
    # a suppressed arm size or event count makes every estimate revealing (a CI's width alone
    # betrays a handful of events), so all of them are withheld
    small = [k for k in ("n_target", "n_comparator", "events_target", "events_comparator") if is_small(rec[k], min_cell)]
    if small:
        withheld += [k for k in _ALL_ESTIMATES + tuple(f.format(arm=a) for f in _EVENT_DEPENDENT
                                                         for a in ("target", "comparator")) if rec.get(k) is not None]
    for arm in ("target", "comparator"):
        if is_small(rec[f"events_{arm}"], min_cell):
            withheld += [f.format(arm=arm) for f in _EVENT_DEPENDENT if rec.get(f.format(arm=arm)) is not None]
            withheld += [k for k in _CONTRASTS if rec.get(k) is not None]
    for k in dict.fromkeys(withheld):
        rec[k] = None
    for k in COUNT_KEYS:
        if k in rec:
            rec[k] = suppress_count(rec[k], min_cell)
    diagnostics = [{k: _clean(v) for k, v in d.to_dict().items()} for d in o.diagnostics]
    for d in diagnostics:
        if d["name"] == dx.MDRR and rec.get("mdrr") is None:
            d["value"] = None  # the MDRR is a function of the event count: withheld with it
    status, reason = outcome_status(o.numbers, withheld)
    reason = note if status == NO_EVENTS and note else reason
    rec = {"outcome": o.outcome, "negative_control": o.negative_control, **rec,
           "status": status, "status_reason": reason, "label": status_label(status, reason, min_cell),
           "diagnostics": diagnostics, "diagnostics_overall": dx.overall(o.diagnostics) if o.diagnostics else None,
           "withheld": sorted(set(withheld)), "warnings": list(o.warnings)}
    return rec


def estimate_record(o: OutcomeEstimate, adjusted: AdjustedCohort, min_cell: int, note: str | None = None) -> dict[str, Any]:
    """One outcome under one adjustment: ``adjustment`` (kind), ``name``, ``estimand`` and every
    field of :func:`outcome_record` (suppressed the same way) but the outcome's name."""
    head: dict[str, Any] = {"adjustment": adjusted.kind, "name": adjusted.name, "estimand": adjusted.estimand}
    if o.not_estimable is not None:
        full = not_estimable_outcome(o.outcome, o.negative_control, o.not_estimable, min_cell)
    else:
        full = outcome_record(o, min_cell, note)
    return head | {k: v for k, v in full.items() if k not in ("outcome", "negative_control")}


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in r.items()} for r in frame.to_dict(orient="records")]


def details_record(adj: AdjustedCohort, min_cell: int) -> dict[str, Any]:
    """An adjustment's details, suppressed: the number of matched sets is a count of people, and an
    effective sample size of an arm whose size is suppressed would reveal that size (ESS = n when
    the weights are equal), so it is withheld (None)."""
    out = {k: _clean(v) for k, v in adj.details.items()}
    if "matched_sets" in out:
        out["matched_sets"] = suppress_count(out["matched_sets"], min_cell)
    for arm, n in (("target", adj.n_target), ("comparator", adj.n_comparator)):
        if f"ess_{arm}" in out and is_small(n, min_cell):
            out[f"ess_{arm}"] = None
    return out


def _table1_n(run: ComparisonRun, adj: AdjustedCohort, min_cell: int) -> dict[str, Any]:
    t = run.treatment
    return {k: suppress_count(int(v), min_cell) for k, v in (
        ("target_before", (t == 1).sum()), ("comparator_before", (t == 0).sum()),
        ("target_after", adj.n_target), ("comparator_after", adj.n_comparator))}


def adjustment_record(run: ComparisonRun, name: str, min_cell: int) -> dict[str, Any]:
    """One adjustment of a comparison: who was analysed, balance, calibration and diagnostics."""
    adj = run.adjusted[name]
    return {
        "name": adj.name,
        "adjustment": adj.kind,
        "primary": name == run.primary,
        "estimand": adj.estimand,
        "n_target": suppress_count(adj.n_target, min_cell),
        "n_comparator": suppress_count(adj.n_comparator, min_cell),
        "details": details_record(adj, min_cell),
        "max_abs_smd": _clean(adj.max_abs_smd),
        "diagnostics": [{k: _clean(v) for k, v in d.to_dict().items()} for d in run.diagnostics[name]],
        "empirical_null": run.nulls[name],
        "table1": _rows(adj.table1),
        "table1_n": _table1_n(run, adj, min_cell),
        "balance": _rows(adj.balance),
        "warnings": list(adj.warnings),
    }


def not_estimable_outcome(outcome: str, negative_control: bool, reason: str, min_cell: int) -> dict[str, Any]:
    """The record of an outcome of a comparison (or an adjustment) that could not be estimated."""
    return {"outcome": outcome, "negative_control": negative_control, "status": NOT_ESTIMABLE, "status_reason": reason,
            "label": status_label(NOT_ESTIMABLE, reason, min_cell), "withheld": [], "warnings": []}


def comparison_record(run: ComparisonRun, spec: StudySpec) -> dict[str, Any]:
    min_cell = spec.min_cell_count
    ps = run.propensity
    attrition = [
        {"cohort": r.cohort, "step": r.step, "description": r.description, "count": suppress_count(int(r.persons), min_cell)}
        for r in run.attrition.itertuples()
    ]
    head = {"id": run.name, "title": f"{run.target} vs {run.comparator}", "target": run.target,
            "comparator": run.comparator, "status": run.status, "status_reason": run.reason,
            "primary_adjustment": run.primary}
    if not run.adjusted:  # not estimable: what was computed (attrition) and why it stopped
        comp = spec.comparisons[run.name]
        outcomes = [not_estimable_outcome(o, o in comp.negative_controls, run.short_reason or "see the comparison", min_cell)
                    for o in dict.fromkeys(comp.outcomes + comp.negative_controls)]
        return {**head, "attrition": attrition, "diagnostics": [], "empirical_null": None, "table1": [],
                "table1_n": {}, "balance": [], "adjustments": [], "outcomes": outcomes, "warnings": run.warnings}
    primary = run.adjusted[run.primary]
    outcomes = []
    for i, o in enumerate(run.outcomes):
        note = run.outcome_notes.get(o.outcome)
        rec = estimate_record(o, primary, min_cell, note)
        rec = {"outcome": o.outcome, "negative_control": o.negative_control,
               **{k: v for k, v in rec.items() if k not in ("adjustment", "name", "estimand")}}
        rec["estimates"] = [estimate_record(run.estimates[a][i], run.adjusted[a], min_cell,
                                            note if a == run.primary else None) for a in run.adjusted]
        outcomes.append(rec)
    t = run.treatment
    return {
        **head,
        "n_target_before": suppress_count(int((t == 1).sum()), min_cell),
        "n_comparator_before": suppress_count(int((t == 0).sum()), min_cell),
        "n_target": suppress_count(primary.n_target, min_cell),
        "n_comparator": suppress_count(primary.n_comparator, min_cell),
        "propensity": {"auc": _clean(ps.auc) if ps else None, "equipoise": _clean(ps.equipoise) if ps else None,
                       "n_covariates": ps.n_covariates if ps else 0,
                       "caliper_width": _clean(primary.details.get("caliper_width"))},
        "diagnostics": [{k: _clean(v) for k, v in d.to_dict().items()} for d in run.diagnostics[run.primary]],
        "empirical_null": run.null,
        "attrition": attrition,
        "table1": _rows(primary.table1),
        "table1_n": _table1_n(run, primary, min_cell),
        "balance": _rows(primary.balance),
        "adjustments": [adjustment_record(run, a, min_cell) for a in run.adjusted],
        "outcomes": outcomes,
        "warnings": run.warnings,
    }


def assemble(spec: StudySpec, runs: list[ComparisonRun], fingerprint: str, *,
             concept_sets: ConceptSetReport | None = None) -> dict[str, Any]:
    """The whole results document (aggregate only).

    ``complete`` says whether every outcome of every comparison was estimated (a suppressed
    estimate counts as estimated); ``not_estimated`` lists the others with their labels.
    """
    comparisons = [comparison_record(r, spec) for r in runs]
    missing = [c["status_reason"] for c in comparisons if c["status"] != ESTIMATED]  # each names its comparison
    missing += [f"{c['id']}, {o['outcome']}: {o['label']}" + (f" ({o['status_reason']})" if o["status"] == NO_EVENTS
                                                              and o["status_reason"] else "")
                for c in comparisons if c["status"] == ESTIMATED for o in c["outcomes"] if o["status"] not in DONE]
    # the other adjustments' estimates (the primary one's are the outcome rows above)
    missing += [f"{c['id']}, {o['outcome']}, {e['name']}: {e['label']}"
                for c in comparisons if c["status"] == ESTIMATED for o in c["outcomes"]
                for e in o.get("estimates", []) if e["name"] != c.get("primary_adjustment") and e["status"] not in DONE]
    warnings = [] if concept_sets is None else concept_sets.notes + missed_warnings(concept_sets, spec.min_cell_count)
    out = {
        "schema": "follicle.results/1",
        "title": f"Follicle study report: {spec.name}",
        "description": spec.description,
        "follicle_version": __version__,
        "spec_hash": spec_hash(spec),
        "cdm_fingerprint": fingerprint,
        "min_cell_count": spec.min_cell_count,
        "spec": spec.model_dump(mode="json"),
        "complete": not missing,
        "not_estimated": missing,
        "warnings": warnings,
        "comparisons": comparisons,
    }
    if concept_sets is not None:
        out["concept_sets"] = suppressed_report(concept_sets, spec.min_cell_count)
    return out


def tables(results: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Flat tables of a results document, already suppressed (what ``tables/*.parquet`` hold).

    Parameters
    ----------
    results : dict
        The results document (``StudyRun.results``, or ``results.json`` read back).

    Returns
    -------
    dict of str to pandas.DataFrame
        ``estimates`` (one row per comparison and outcome), ``attrition``, ``table1``,
        ``diagnostics`` and ``balance``, each with a ``comparison`` column, for the primary
        adjustment (as before adjustments were introduced); ``adjusted_estimates``,
        ``adjusted_diagnostics`` and ``adjusted_balance`` hold every adjustment, with its name;
        see docs/results-schema.md.
    """
    rows: dict[str, list[dict[str, Any]]] = {
        "estimates": [], "attrition": [], "table1": [], "diagnostics": [], "balance": [],
        "adjusted_estimates": [], "adjusted_diagnostics": [], "adjusted_balance": []}
    for comp in results["comparisons"]:
        for o in comp["outcomes"]:
            rows["estimates"].append({"comparison": comp["id"], **{k: v for k, v in o.items()
                                                                     if k not in ("withheld", "warnings", "estimates", "diagnostics")},
                                      "withheld": ",".join(o["withheld"])})
            for e in o.get("estimates", []):
                rows["adjusted_estimates"].append({"comparison": comp["id"], "outcome": o["outcome"],
                                                   "negative_control": o["negative_control"],
                                                   **{k: v for k, v in e.items() if k not in ("withheld", "warnings", "diagnostics")},
                                                   **{f"diagnostic_{_short(d['name'])}": d["status"] for d in e.get("diagnostics", [])},
                                                   "withheld": ",".join(e["withheld"])})
        for key in ("attrition", "table1", "diagnostics", "balance"):
            rows[key] += [{"comparison": comp["id"], **r} for r in comp[key]]
        for adj in comp.get("adjustments", []):
            for key in ("diagnostics", "balance"):
                rows[f"adjusted_{key}"] += [{"comparison": comp["id"], "adjustment": adj["name"], **r} for r in adj[key]]
    out = {}
    for name, recs in rows.items():
        frame = pd.DataFrame(recs)
        # mixed int / "<10" columns are stored as text so the Parquet schema is stable
        for col in frame.columns:
            if frame[col].map(lambda v: isinstance(v, str)).any() and col not in ("comparison",):
                frame[col] = frame[col].map(lambda v: None if v is None else str(v))
        out[name] = frame
    return out


def _short(name: str) -> str:
    return {dx.BALANCE: "balance", dx.EQUIPOISE: "equipoise", dx.MDRR: "mdrr", dx.EASE: "ease"}.get(name, name)


def write_outputs(out_dir: Path, files: dict[str, bytes]) -> None:
    """Write every output into a temporary folder, then move each into *out_dir* (all or nothing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-results-", dir=out_dir))
    try:
        for name, data in files.items():
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        for name in files:
            target = out_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / name, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def json_bytes(results: dict[str, Any]) -> bytes:
    return (json.dumps(results, indent=2, allow_nan=False, default=str) + "\n").encode()


__all__ = ["COUNT_KEYS", "assemble", "json_bytes", "parquet_bytes", "tables", "write_outputs"]
