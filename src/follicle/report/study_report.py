"""Render a comparative study's results (already aggregate and suppressed) as one HTML file.

The page is self-contained: figures are embedded as data URIs, styles are inline, there is no
script and nothing is fetched, so it opens offline and can be e-mailed as it is.
"""

from __future__ import annotations

import math
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

_env = Environment(loader=PackageLoader("follicle.report", "templates"), autoescape=select_autoescape(["html", "j2"]))


def fmt_num(value: Any, digits: int = 2) -> str:
    """A number for a table cell; suppressed labels and missing values pass through as text."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def fmt_p(p: Any) -> str:
    if p is None or isinstance(p, str):
        return "-" if p is None else p
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_ci(est: Any, low: Any, high: Any, digits: int = 2, *, missing: str = "-") -> str:
    """``est (low to high)``: "to" keeps negative bounds readable, as ``-0.040 (-0.052 to -0.028)``;
    *missing* (e.g. a status label) when there is no estimate."""
    if est is None or isinstance(est, str):
        return missing
    return f"{fmt_num(est, digits)} ({fmt_num(low, digits)} to {fmt_num(high, digits)})"


_SHORT = {"max |SMD| after adjustment": "balance", "equipoise (share with preference 0.3-0.7)": "equipoise",
          "minimum detectable relative risk": "MDRR", "expected absolute systematic error (EASE)": "EASE"}


def _outcome_row(o: dict[str, Any], km_uri: str | None) -> dict[str, Any]:
    label = o.get("label") or "-"
    return {
        "outcome": o["outcome"],
        "negative_control": o.get("negative_control", False),
        "events_target": fmt_num(o.get("events_target")),
        "events_comparator": fmt_num(o.get("events_comparator")),
        "py_target": fmt_num(o.get("person_years_target"), 0),
        "py_comparator": fmt_num(o.get("person_years_comparator"), 0),
        "fu_text": f"{fmt_num(o.get('mean_followup_days_target'), 0)} / {fmt_num(o.get('mean_followup_days_comparator'), 0)}",
        "risk_text": f"{fmt_num(o.get('risk_target'), 4)} / {fmt_num(o.get('risk_comparator'), 4)}",
        "rd_text": fmt_ci(o.get("rd"), o.get("rd_ci_low"), o.get("rd_ci_high"), 3),
        "rr_text": fmt_ci(o.get("rr"), o.get("rr_ci_low"), o.get("rr_ci_high")),
        "or_text": fmt_ci(o.get("or"), o.get("or_ci_low"), o.get("or_ci_high")),
        "hr_text": fmt_ci(o.get("hr"), o.get("hr_ci_low"), o.get("hr_ci_high"), missing=label),
        "logrank_text": fmt_p(o.get("logrank_p")),
        "ph_text": fmt_p(o.get("ph_test_p")),
        "evalue_text": f"{fmt_num(o.get('evalue'))} ({fmt_num(o.get('evalue_ci'))})",
        "mdrr_text": fmt_num(o.get("mdrr")),
        "diagnostics": [{"name": _SHORT.get(d["name"], d["name"]), "status": d["status"]} for d in o.get("diagnostics") or []],
        "diagnostics_overall": o.get("diagnostics_overall"),
        "km": km_uri,
    }


def _estimate_row(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": e["name"], "adjustment": e["adjustment"],
        "n_target": fmt_num(e.get("n_target")), "n_comparator": fmt_num(e.get("n_comparator")),
        "events_target": fmt_num(e.get("events_target")), "events_comparator": fmt_num(e.get("events_comparator")),
        "hr_text": fmt_ci(e.get("hr"), e.get("hr_ci_low"), e.get("hr_ci_high"), missing=e.get("label") or "-"),
        "calibrated_text": fmt_ci(e.get("calibrated_hr", e.get("hr")), e.get("calibrated_ci_low"),
                                  e.get("calibrated_ci_high")) if e.get("calibrated_ci_low") is not None else "-",
        "p_text": fmt_p(e.get("p")),
        "diagnostics_overall": e.get("diagnostics_overall"),
    }


def _diagnostic_rows(diagnostics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**d, "value_text": fmt_num(d.get("value"), 3), "threshold_text": d.get("threshold_text", fmt_num(d.get("threshold"), 2))}
            for d in diagnostics]


def _table1_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Table 1 cells as text; a figure withheld for privacy (None) shows as "-"."""
    return [{k: (fmt_num(v, 3) if k.startswith("smd") else fmt_num(v, 1) if isinstance(v, float) or v is None else v)
             for k, v in r.items()} for r in rows]


def _details_text(adj: dict[str, Any]) -> str:
    d = adj.get("details") or {}
    parts = [f"estimand: {adj['estimand']}", f"analysed: {fmt_num(adj['n_target'])} target, {fmt_num(adj['n_comparator'])} comparator"]
    if adj["adjustment"] == "matching":
        parts.append(f"1:{d.get('ratio')}{' variable ratio' if d.get('variable_ratio') else ''}, order {d.get('order')}, "
                     f"caliper {fmt_num(d.get('caliper_width'), 3)} on the matching scale")
    elif adj["adjustment"] == "stratification":
        parts.append(f"{d.get('n_strata')} strata at PS quantiles ({d.get('strata_with_both_arms')} with both arms); "
                     "Cox model stratified by stratum")
    elif adj["adjustment"] == "iptw":
        parts.append(f"weights {fmt_num(d.get('min_weight'), 3)}-{fmt_num(d.get('max_weight'), 3)}; effective sample size "
                     f"{fmt_num(d.get('ess_target'), 0)} target, {fmt_num(d.get('ess_comparator'), 0)} comparator; robust SE")
    return "; ".join(parts)


def concept_set_rows(report: dict[str, Any] | None) -> list[dict[str, str]]:
    """One row per concept set of the (suppressed) resolution report: how it was resolved, its
    persons and the rows and persons it could be missing."""
    if not report:
        return []
    found: dict[str, dict[str, int]] = {}
    for r in report["routes"]:
        if r["concepts"] and not r["excluded"]:
            per = found.setdefault(r["concept_set"], {})
            per[r["route"]] = per.get(r["route"], 0) + int(r["concepts"])
    return [{"name": r["concept_set"], "hierarchy": r["hierarchy"] or "-",
             "routes": ", ".join(f"{k} {v}" for k, v in found.get(r["concept_set"], {}).items()) or "nothing",
             "persons": fmt_num(r["persons"]),
             "missed": "-" if not r["missed_rows"] else f"{fmt_num(r['missed_rows'])} / {fmt_num(r['missed_persons'])}"}
            for r in report["sets"]]


def render_study_report(
    results: dict[str, Any],
    figures: dict[str, Any],
    *,
    methods: str,
    caveats: list[str],
    truth: dict[tuple[str, str], float] | None = None,
) -> str:
    """HTML text of the report.

    *results* follows docs/results-schema.md; *figures* maps ``forest`` and, per comparison id,
    ``preference`` and ``adjustments`` (adjustment name -> ``love``, ``preference``, ``km``
    (outcome -> data URI)) to embedded images; *truth* (true HR by comparison and outcome, for the
    synthetic world) adds a column beside the estimates.
    """
    comparisons, summary = [], []
    for comp in results["comparisons"]:
        figs = figures.get(comp["id"], {})
        for o in comp["outcomes"]:
            true_hr = None if truth is None else truth.get((comp["id"], o["outcome"]))
            for e in o.get("estimates") or [dict(o, name="-", adjustment="-")]:
                summary.append({"comparison": comp["title"], "outcome": o["outcome"],
                                "negative_control": o.get("negative_control", False), **_estimate_row(e),
                                "true_text": "-" if true_hr is None else fmt_num(float(true_hr), 2),
                                "covered": None if true_hr is None or e.get("hr") is None
                                else bool(e["hr_ci_low"] <= true_hr <= e["hr_ci_high"])})
        attrition: dict[str, list[dict[str, str]]] = {}
        for step in comp["attrition"]:
            attrition.setdefault(step["cohort"], []).append(
                {"step": step.get("description") or step["step"], "count": fmt_num(step["count"])})
        adjustments = []
        for adj in comp.get("adjustments", []):
            adj_figs = figs.get("adjustments", {}).get(adj["name"], {})
            outcomes = []
            for o in comp["outcomes"]:
                e = next(e for e in o["estimates"] if e["name"] == adj["name"])
                outcomes.append(_outcome_row({**e, "outcome": o["outcome"], "negative_control": o["negative_control"]},
                                             adj_figs.get("km", {}).get(o["outcome"])))
            n = adj.get("table1_n") or {}
            adjustments.append({
                "name": adj["name"], "kind": adj["adjustment"], "primary": adj["primary"], "details": _details_text(adj),
                "diagnostics": _diagnostic_rows(adj["diagnostics"]), "table1": _table1_rows(adj["table1"]),
                "table1_n": {k: fmt_num(v) for k, v in n.items()},
                "outcomes": outcomes, "love": adj_figs.get("love"), "preference": adj_figs.get("preference"),
                "warnings": adj.get("warnings", []),
            })
        comparisons.append({
            "id": comp["id"], "title": comp["title"], "target": comp["target"], "comparator": comp["comparator"],
            "attrition": attrition, "preference": figs.get("preference"), "adjustments": adjustments,
            "auc": fmt_num((comp.get("propensity") or {}).get("auc"), 3),
            "equipoise": fmt_num((comp.get("propensity") or {}).get("equipoise"), 3),
            "n_covariates": fmt_num((comp.get("propensity") or {}).get("n_covariates")),
            "status": comp.get("status", "estimated"), "status_reason": comp.get("status_reason"),
        })
    return _env.get_template("study_report.html.j2").render(
        title=results.get("title", "Follicle study report"),
        description=results.get("description"),
        version=results["follicle_version"],
        spec_hash=results["spec_hash"],
        cdm_fingerprint=results["cdm_fingerprint"],
        min_cell_count=results["min_cell_count"],
        privacy_warning=results.get("privacy_warning"),
        summary=summary,
        with_truth=truth is not None,
        concept_sets=concept_set_rows(results.get("concept_sets")),
        not_estimated=results.get("not_estimated", []),
        warnings=results.get("warnings", []),
        forest=figures.get("forest"),
        methods=methods,
        caveats=caveats,
        comparisons=comparisons,
    )
