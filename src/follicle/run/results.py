"""Results of a study run as aggregate, suppressed data: results.json and Parquet tables.

Counts from 1 to ``min_cell_count - 1`` leave as ``"<N"``; an estimate that would let a reader
recover a suppressed count is withheld (set to None and named in ``withheld``): every estimate of
an outcome with a small arm, event or non-event count; the risks, contrasts, mean follow-up and
MDRR of an arm whose number at risk is withheld because it differs from the arm the adjustment
analyses by a small count; attrition steps (continued through every adjustment), Table 1 and
balance figures of every adjustment by the rules of :mod:`follicle.privacy` (applied in
:mod:`follicle.run.disclosure`). docs/privacy.md; schema: docs/results-schema.md.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
import pandas as pd

from follicle import __version__
from follicle.privacy import is_small, suppress_count
from follicle.run import diagnostics as dx
from follicle.run.adjust import AdjustedCohort
from follicle.run.disclosure import ArmCounts, protect_attrition, protect_rows
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


_N_DEPENDENT = ("risk_{arm}", "mean_followup_days_{arm}")


def outcome_record(o: OutcomeEstimate, min_cell: int, note: str | None = None,
                   at_risk_shown: dict[str, Any] | None = None) -> dict[str, Any]:
    """One comparison x outcome row, suppressed; *note* says where the events ran out (no events).

    *at_risk_shown* (arm -> published number at risk, from :func:`protect_attrition`) withholds
    an arm's number at risk, and what would give it back, when it is None.
    """
    rec = {k: _clean(v) for k, v in o.numbers.items()}
    withheld: list[str] = []
    # a suppressed arm size, event or non-event count makes every estimate revealing (a CI's
    # width alone betrays a handful of events), so all of them are withheld
    small = [k for k in ("n_target", "n_comparator", "events_target", "events_comparator") if is_small(rec[k], min_cell)]
    small += [f"non-events {a}" for a in ("target", "comparator")
              if is_small(rec[f"n_{a}"] - rec[f"events_{a}"], min_cell)]
    if small:
        withheld += [k for k in _ALL_ESTIMATES + tuple(f.format(arm=a) for f in _EVENT_DEPENDENT
                                                         for a in ("target", "comparator")) if rec.get(k) is not None]
    for arm in ("target", "comparator"):
        if is_small(rec[f"events_{arm}"], min_cell):
            withheld += [f.format(arm=arm) for f in _EVENT_DEPENDENT if rec.get(f.format(arm=arm)) is not None]
            withheld += [k for k in _CONTRASTS if rec.get(k) is not None]
        if is_small(rec[f"n_{arm}"] - rec[f"events_{arm}"], min_cell) and not is_small(rec[f"events_{arm}"], min_cell):
            withheld.append(f"events_{arm}")  # n - events would be the small count of people without it
        if at_risk_shown is not None and at_risk_shown.get(arm, 0) is None and not is_small(rec[f"n_{arm}"], min_cell):
            withheld += [f"n_{arm}"] + [f.format(arm=arm) for f in _N_DEPENDENT if rec.get(f.format(arm=arm)) is not None]
            withheld += [k for k in _CONTRASTS + ("mdrr",) if rec.get(k) is not None]  # the MDRR is a function of n
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


def estimate_record(o: OutcomeEstimate, adjusted: AdjustedCohort, min_cell: int, note: str | None = None,
                    at_risk_shown: dict[str, Any] | None = None) -> dict[str, Any]:
    """One outcome under one adjustment: ``adjustment`` (kind), ``name``, ``estimand`` and every
    field of :func:`outcome_record` (suppressed the same way, *at_risk_shown* as there) but the
    outcome's name."""
    head: dict[str, Any] = {"adjustment": adjusted.kind, "name": adjusted.name, "estimand": adjusted.estimand}
    if o.not_estimable is not None:
        full = not_estimable_outcome(o.outcome, o.negative_control, o.not_estimable, min_cell)
    else:
        full = outcome_record(o, min_cell, note, at_risk_shown)
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


def details_record_protected(adj: AdjustedCohort, min_cell: int, shown: dict[str, Any]) -> dict[str, Any]:
    """:func:`details_record`, and what would give back an analysed count that is not shown (small
    or withheld) withheld too: the effective sample size of that arm, and the number of matched
    sets (one target person each: the matched target count)."""
    out = details_record(adj, min_cell)
    for arm in ("target", "comparator"):
        if f"ess_{arm}" in out and not isinstance(shown.get(arm), int):
            out[f"ess_{arm}"] = None
    if "matched_sets" in out and not all(isinstance(shown.get(a), int) for a in ("target", "comparator")):
        out["matched_sets"] = None
    return out


def adjustment_record(run: ComparisonRun, name: str, min_cell: int, arms: dict[str, ArmCounts]) -> dict[str, Any]:
    """One adjustment of a comparison: who was analysed, balance, calibration and diagnostics, with
    the published arm sizes of *arms* (:func:`protect_attrition`) and Table 1 and balance rows
    protected on the adjustment's own cells (:func:`protect_rows`)."""
    adj = run.adjusted[name]
    t = run.treatment
    n = {"before": {"target": int((t == 1).sum()), "comparator": int((t == 0).sum())},
         "after": {"target": adj.n_target, "comparator": adj.n_comparator}}
    shown = {a: arms[a].adjusted[name] for a in ("target", "comparator")}
    table1, balance = protected_tables(adj, n, min_cell)
    return {
        "name": adj.name,
        "adjustment": adj.kind,
        "primary": name == run.primary,
        "estimand": adj.estimand,
        "n_target": shown["target"],
        "n_comparator": shown["comparator"],
        "details": details_record_protected(adj, min_cell, shown),
        "max_abs_smd": _clean(adj.max_abs_smd),
        "diagnostics": [{k: _clean(v) for k, v in d.to_dict().items()} for d in run.diagnostics[name]],
        "empirical_null": run.nulls[name],
        "table1": table1,
        "table1_n": {"target_before": arms["target"].before, "comparator_before": arms["comparator"].before,
                     "target_after": shown["target"], "comparator_after": shown["comparator"]},
        "balance": balance,
        "warnings": list(adj.warnings),
    }


def protected_tables(adj: AdjustedCohort, n: dict[str, dict[str, int]], min_cell: int,
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Table 1 and balance rows of an adjustment with the figures of small cells withheld."""
    if len(adj.table1) and len(adj.table1_cells) == len(adj.table1):
        table1, _ = protect_rows(adj.table1, adj.table1_cells, n, min_cell, value_columns={
            "target_before": ("target", "before"), "comparator_before": ("comparator", "before"),
            "target_after": ("target", "after"), "comparator_after": ("comparator", "after")},
            smd_columns={"smd_before": "before", "smd_after": "after"})
    else:
        table1 = _rows(adj.table1)
    if len(adj.balance) and len(adj.balance_cells) == len(adj.balance):
        balance, _ = protect_rows(adj.balance, adj.balance_cells, n, min_cell, value_columns={},
                                  smd_columns={"smd_before": "before", "smd_after": "after"})
    else:
        balance = _rows(adj.balance)
    return [{k: _clean(v) for k, v in r.items()} for r in table1], [{k: _clean(v) for k, v in r.items()} for r in balance]


def not_estimable_outcome(outcome: str, negative_control: bool, reason: str, min_cell: int) -> dict[str, Any]:
    """The record of an outcome of a comparison (or an adjustment) that could not be estimated."""
    return {"outcome": outcome, "negative_control": negative_control, "status": NOT_ESTIMABLE, "status_reason": reason,
            "label": status_label(NOT_ESTIMABLE, reason, min_cell), "withheld": [], "warnings": []}


def comparison_record(run: ComparisonRun, spec: StudySpec) -> dict[str, Any]:
    min_cell = spec.min_cell_count
    ps = run.propensity
    cohorts = {"target": run.target, "comparator": run.comparator}
    head = {"id": run.name, "title": f"{run.target} vs {run.comparator}", "target": run.target,
            "comparator": run.comparator, "status": run.status, "status_reason": run.reason,
            "primary_adjustment": run.primary}
    if not run.adjusted:  # not estimable: what was computed (attrition) and why it stopped
        attrition, _ = protect_attrition(run.attrition, run.name, cohorts, {"target": None, "comparator": None},
                                         {}, {}, min_cell)
        comp = spec.comparisons[run.name]
        outcomes = [not_estimable_outcome(o, o in comp.negative_controls, run.short_reason or "see the comparison", min_cell)
                    for o in dict.fromkeys(comp.outcomes + comp.negative_controls)]
        return {**head, "attrition": attrition, "diagnostics": [], "empirical_null": None, "table1": [],
                "table1_n": {}, "balance": [], "adjustments": [], "outcomes": outcomes, "warnings": run.warnings}
    t = run.treatment
    n_before = {"target": int((t == 1).sum()), "comparator": int((t == 0).sum())}
    n_adjusted = {a: {"target": adj.n_target, "comparator": adj.n_comparator} for a, adj in run.adjusted.items()}
    at_risk = {a: {o.outcome: {arm: int(o.numbers[f"n_{arm}"]) for arm in arms_of()}
                   for o in run.estimates[a] if o.numbers} for a in run.adjusted}
    linked = {a for a, adj in run.adjusted.items() if adj.kind == "matching"}  # 1:k sets tie the arms
    attrition, arms = protect_attrition(run.attrition, run.name, cohorts, n_before, n_adjusted, at_risk, min_cell,
                                        linked=linked)
    adjustments = [adjustment_record(run, a, min_cell, arms) for a in run.adjusted]
    primary_rec = next(r for r in adjustments if r["name"] == run.primary)
    primary = run.adjusted[run.primary]
    outcomes = []
    for i, o in enumerate(run.outcomes):
        note = run.outcome_notes.get(o.outcome)

        def shown(a: str, outcome: str = o.outcome) -> dict[str, Any]:
            return {arm: arms[arm].at_risk[a].get(outcome) for arm in arms_of()}

        rec = estimate_record(o, primary, min_cell, note, shown(run.primary))
        rec = {"outcome": o.outcome, "negative_control": o.negative_control,
               **{k: v for k, v in rec.items() if k not in ("adjustment", "name", "estimand")}}
        rec["estimates"] = [estimate_record(run.estimates[a][i], run.adjusted[a], min_cell,
                                            note if a == run.primary else None, shown(a)) for a in run.adjusted]
        outcomes.append(rec)
    return {
        **head,
        "n_target_before": arms["target"].before,
        "n_comparator_before": arms["comparator"].before,
        "n_target": primary_rec["n_target"],
        "n_comparator": primary_rec["n_comparator"],
        "propensity": {"auc": _clean(ps.auc) if ps else None, "equipoise": _clean(ps.equipoise) if ps else None,
                       "n_covariates": ps.n_covariates if ps else 0,
                       "caliper_width": _clean(primary.details.get("caliper_width"))},
        "diagnostics": primary_rec["diagnostics"],
        "empirical_null": run.null,
        "attrition": attrition,
        "table1": primary_rec["table1"],
        "table1_n": primary_rec["table1_n"],
        "balance": primary_rec["balance"],
        "adjustments": adjustments,
        "outcomes": outcomes,
        "warnings": run.warnings,
    }


def arms_of() -> tuple[str, str]:
    return ("target", "comparator")


def assemble(spec: StudySpec, runs: list[ComparisonRun], fingerprint: str, *,
             concept_sets: ConceptSetReport | None = None, privacy_warning: str | None = None) -> dict[str, Any]:
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
    extra = {"privacy_warning": privacy_warning} if privacy_warning else {}
    out = {
        "schema": "follicle.results/1",
        "title": f"Follicle study report: {spec.name}",
        "description": spec.description,
        "follicle_version": __version__,
        "spec_hash": spec_hash(spec),
        "cdm_fingerprint": fingerprint,
        "min_cell_count": spec.min_cell_count,
        **extra,
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
        ``adjusted_diagnostics``, ``adjusted_table1`` and ``adjusted_balance`` hold every
        adjustment, with its name; see docs/results-schema.md.
    """
    rows: dict[str, list[dict[str, Any]]] = {
        "estimates": [], "attrition": [], "table1": [], "diagnostics": [], "balance": [],
        "adjusted_estimates": [], "adjusted_diagnostics": [], "adjusted_table1": [], "adjusted_balance": []}
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
            for key in ("diagnostics", "table1", "balance"):
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


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def json_bytes(results: dict[str, Any]) -> bytes:
    return (json.dumps(results, indent=2, allow_nan=False, default=str) + "\n").encode()


__all__ = ["COUNT_KEYS", "assemble", "json_bytes", "parquet_bytes", "tables"]
