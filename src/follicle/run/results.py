"""Results of a study run as aggregate, suppressed data: results.json and Parquet tables.

Counts from 1 to ``min_cell_count - 1`` leave as ``"<N"``; an estimate that would let a reader
recover a suppressed count is withheld (set to None and named in ``withheld``): every estimate of
an outcome with a small arm, event or non-event count; the risks, contrasts and mean follow-up of
an arm whose number at risk is withheld because it differs from the matched arm by a small count;
attrition steps, Table 1 and balance figures by the rules of :mod:`follicle.privacy` (applied in
:mod:`follicle.run.disclosure`). docs/privacy.md; schema: docs/results-schema.md.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from follicle import __version__
from follicle.privacy import is_small, suppress_count
from follicle.run.disclosure import protect_attrition, protect_rows
from follicle.run.degenerate import DONE, ESTIMATED, NO_EVENTS, NOT_ESTIMABLE, outcome_status, status_label
from follicle.run.estimate import OutcomeEstimate
from follicle.run.pipeline import ComparisonRun
from follicle.study.coverage import ConceptSetReport, missed_warnings, suppressed_report
from follicle.study.hashing import spec_hash
from follicle.study.spec import StudySpec

COUNT_KEYS = ("n_target", "n_comparator", "events_target", "events_comparator", "n_target_before",
              "n_comparator_before", "count", "persons")
_EVENT_DEPENDENT = ("risk_{arm}", "ir_per_1000py_{arm}", "ir_ci_low_{arm}", "ir_ci_high_{arm}")
_CONTRASTS = ("rd", "rd_ci_low", "rd_ci_high", "rr", "rr_ci_low", "rr_ci_high", "or", "or_ci_low", "or_ci_high")
_ALL_ESTIMATES = _CONTRASTS + ("hr", "hr_ci_low", "hr_ci_high", "log_hr", "se_log_hr", "p", "logrank_p",
                               "logrank_chisq", "ph_test_p", "ph_test_chisq", "evalue", "evalue_ci",
                               "calibrated_p", "calibrated_hr", "calibrated_ci_low", "calibrated_ci_high",
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
            withheld += [k for k in _CONTRASTS if rec.get(k) is not None]
    for k in dict.fromkeys(withheld):
        rec[k] = None
    for k in COUNT_KEYS:
        if k in rec:
            rec[k] = suppress_count(rec[k], min_cell)
    status, reason = outcome_status(o.numbers, withheld)
    reason = note if status == NO_EVENTS and note else reason
    rec = {"outcome": o.outcome, "negative_control": o.negative_control, **rec,
           "status": status, "status_reason": reason, "label": status_label(status, reason, min_cell),
           "withheld": sorted(set(withheld)), "warnings": list(o.warnings)}
    return rec


def not_estimable_outcome(outcome: str, negative_control: bool, reason: str, min_cell: int) -> dict[str, Any]:
    """The record of an outcome of a comparison that could not be estimated."""
    return {"outcome": outcome, "negative_control": negative_control, "status": NOT_ESTIMABLE, "status_reason": reason,
            "label": status_label(NOT_ESTIMABLE, reason, min_cell), "withheld": [], "warnings": []}


def comparison_record(run: ComparisonRun, spec: StudySpec) -> dict[str, Any]:
    min_cell = spec.min_cell_count
    ps = run.propensity
    cohorts = {"target": run.target, "comparator": run.comparator}
    head = {"id": run.name, "title": f"{run.target} vs {run.comparator}", "target": run.target,
            "comparator": run.comparator, "status": run.status, "status_reason": run.reason}
    if ps is None:  # not estimable: what was computed (attrition) and why it stopped
        attrition, _ = protect_attrition(run.attrition, run.name, cohorts, {"target": None, "comparator": None},
                                         {"target": None, "comparator": None}, {}, min_cell)
        comp = spec.comparisons[run.name]
        outcomes = [not_estimable_outcome(o, o in comp.negative_controls, run.short_reason or "see the comparison", min_cell)
                    for o in dict.fromkeys(comp.outcomes + comp.negative_controls)]
        return {**head, "attrition": attrition, "diagnostics": [], "empirical_null": None, "table1": [],
                "table1_n": {}, "balance": [], "outcomes": outcomes, "warnings": run.warnings}
    n_before = {"target": ps.n_target_before, "comparator": ps.n_comparator_before}
    n_matched = {"target": ps.n_target, "comparator": ps.n_comparator}
    attrition, arms = protect_attrition(
        run.attrition, run.name, cohorts, n_before, n_matched,
        {o.outcome: {a: int(o.numbers[f"n_{a}"]) for a in arms_of()} for o in run.outcomes}, min_cell)
    n = {"before": n_before, "after": n_matched}
    table1, _ = protect_rows(ps.table1, ps.table1_cells, n, min_cell, value_columns={
        "target_before": ("target", "before"), "comparator_before": ("comparator", "before"),
        "target_after": ("target", "after"), "comparator_after": ("comparator", "after")},
        smd_columns={"smd_before": "before", "smd_after": "after"})
    balance, _ = protect_rows(ps.balance, ps.balance_cells, n, min_cell, value_columns={},
                              smd_columns={"smd_before": "before", "smd_after": "after"})
    return {
        **head,
        "n_target_before": arms["target"].before,
        "n_comparator_before": arms["comparator"].before,
        "n_target": arms["target"].matched,
        "n_comparator": arms["comparator"].matched,
        "propensity": {"auc": _clean(ps.auc), "equipoise": _clean(ps.equipoise), "n_covariates": ps.n_covariates,
                       "caliper_width": _clean(ps.caliper_width)},
        "diagnostics": [{k: _clean(v) for k, v in d.to_dict().items()} for d in run.diagnostics],
        "empirical_null": run.null,
        "attrition": attrition,
        "table1": [{k: _clean(v) for k, v in r.items()} for r in table1],
        "table1_n": {"target_before": arms["target"].before, "comparator_before": arms["comparator"].before,
                     "target_after": arms["target"].matched, "comparator_after": arms["comparator"].matched},
        "balance": [{k: _clean(v) for k, v in r.items()} for r in balance],
        "outcomes": [outcome_record(o, min_cell, run.outcome_notes.get(o.outcome),
                                    {a: arms[a].at_risk[o.outcome] for a in arms_of()}) for o in run.outcomes],
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
        ``diagnostics`` and ``balance``, each with a ``comparison`` column; see
        docs/results-schema.md.
    """
    rows = {"estimates": [], "attrition": [], "table1": [], "diagnostics": [], "balance": []}
    for comp in results["comparisons"]:
        for o in comp["outcomes"]:
            rows["estimates"].append({"comparison": comp["id"], **{k: v for k, v in o.items()
                                                                     if k not in ("withheld", "warnings")},
                                      "withheld": ",".join(o["withheld"])})
        for key in ("attrition", "table1", "diagnostics", "balance"):
            rows[key] += [{"comparison": comp["id"], **r} for r in comp[key]]
    out = {}
    for name, recs in rows.items():
        frame = pd.DataFrame(recs)
        # mixed int / "<10" columns are stored as text so the Parquet schema is stable
        for col in frame.columns:
            if frame[col].map(lambda v: isinstance(v, str)).any() and col not in ("comparison",):
                frame[col] = frame[col].map(lambda v: None if v is None else str(v))
        out[name] = frame
    return out


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def json_bytes(results: dict[str, Any]) -> bytes:
    return (json.dumps(results, indent=2, allow_nan=False, default=str) + "\n").encode()


__all__ = ["COUNT_KEYS", "assemble", "json_bytes", "parquet_bytes", "tables"]
