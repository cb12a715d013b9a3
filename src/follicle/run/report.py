"""The study report: figures from the run (aggregate, small numbers hidden) and the HTML page."""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pandas as pd

from follicle.report.figures import km_plot, love_plot, preference_plot, to_data_uri
from follicle.report.forest import ForestRow, forest_plot
from follicle.privacy import suppress_count
from follicle.report.study_report import render_study_report
from follicle.run.narrative import caveats, methods_paragraph
from follicle.run.pipeline import ComparisonRun
from follicle.study.spec import StudySpec


def hr_forest(results: dict[str, Any]) -> Any:
    """Forest plot of HRs: one block per comparison, one row per outcome (negative controls last),
    and under each outcome one row per adjustment when the study has several."""
    rows: list[ForestRow] = []
    for comp in results["comparisons"]:
        rows.append(ForestRow(label=comp["title"], kind="header"))
        for o in sorted(comp["outcomes"], key=lambda o: o["negative_control"]):
            label = o["outcome"] + (" (NC)" if o["negative_control"] else "")
            estimates = o.get("estimates") or [dict(o, name="")]
            several = len(estimates) > 1
            if several:
                rows.append(ForestRow(label=label, kind="note", note=""))
            for e in estimates:
                text = f"  {e['name']}" if several else label
                if e.get("hr") is None:
                    rows.append(ForestRow(label=text, kind="note", note=e.get("label") or "not estimated"))
                else:
                    rows.append(ForestRow(label=text, estimate=e["hr"], ci_low=e["hr_ci_low"], ci_high=e["hr_ci_high"]))
    return forest_plot(rows, log_scale=True, xlabel="hazard ratio (95% CI)", label_header="Outcome",
                       estimate_header="HR [95% CI]", favours=("favours target", "favours comparator"),
                       show_weights=False)


def _at_risk_text(at_risk: pd.DataFrame, min_cell: int) -> pd.DataFrame:
    return at_risk.map(lambda v: suppress_count(int(v), min_cell))


def _km_uri(job: tuple[dict[str, pd.DataFrame], pd.DataFrame, str, int]) -> str:
    curves, at_risk, title, min_cell = job
    return to_data_uri(km_plot(curves, at_risk, title=title, min_cell_count=min_cell), tight=False)


def _render_all(jobs: list[tuple[Any, ...]]) -> list[str]:
    """KM figures, in worker processes when there are several cores (matplotlib is single-threaded
    and a figure costs ~0.15 s, so a study's thirty curves are worth spreading); order is kept."""
    workers = min(os.cpu_count() or 1, 4)
    if workers < 2 or len(jobs) < 4 or "fork" not in mp.get_all_start_methods():
        return [_km_uri(job) for job in jobs]
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
        return list(pool.map(_km_uri, jobs, chunksize=max(1, len(jobs) // (2 * workers))))


def figures(runs: list[ComparisonRun], results: dict[str, Any], min_cell: int) -> dict[str, Any]:
    """Data URIs of every figure, keyed as :func:`render_study_report` expects: ``forest``, and per
    comparison id ``preference`` (before adjustment) and per adjustment name ``love``,
    ``preference`` (after adjustment) and ``km`` (outcome -> URI; unweighted designs only, negative
    controls under the primary adjustment only)."""
    out: dict[str, Any] = {"forest": to_data_uri(hr_forest(results))}
    jobs, keys = [], []
    for run in runs:
        comp = next(c for c in results["comparisons"] if c["id"] == run.name)
        labels = (run.target, run.comparator)
        entry: dict[str, Any] = {"adjustments": {}}
        out[run.name] = entry
        if not run.adjusted:  # not estimable: no figures
            continue
        if run.propensity is not None:
            entry["preference"] = to_data_uri(preference_plot(run.propensity.preference, run.treatment, labels))
        for name, adj in run.adjusted.items():
            shown = {o["outcome"] for o in comp["outcomes"] for e in o.get("estimates", [])
                     if e["name"] == name and e.get("hr") is not None}
            figs: dict[str, Any] = {"km": {}}
            if len(adj.balance):
                figs["love"] = to_data_uri(love_plot(adj.balance, after_label=f"after {adj.kind}"
                                                     if adj.kind != "crude" else "crude (no adjustment)"))
            if run.propensity is not None and adj.kind != "crude" and adj.n_target and adj.n_comparator:
                figs["preference"] = to_data_uri(preference_plot(
                    run.propensity.preference, run.treatment, labels, weights=adj.weights))
            entry["adjustments"][name] = figs
            for o in run.estimates[name]:
                if o.at_risk is None or not o.curves or o.outcome not in shown:
                    continue  # withheld estimates get no curve: its steps would reveal the small counts
                if o.negative_control and name != run.primary:
                    continue  # negative controls' curves under the primary adjustment only
                jobs.append((o.curves, _at_risk_text(o.at_risk, min_cell), o.outcome.replace("_", " "), min_cell))
                keys.append((run.name, name, o.outcome))
    for (run_name, adj_name, outcome), uri in zip(keys, _render_all(jobs)):
        out[run_name]["adjustments"][adj_name]["km"][outcome] = uri
    return out


def study_report_html(spec: StudySpec, runs: list[ComparisonRun], results: dict[str, Any], *,
                      truth: dict[tuple[str, str], float] | None = None) -> str:
    """The report page; *truth* (true HR by comparison and outcome, the synthetic world's) is shown
    beside each estimate."""
    return render_study_report(results, figures(runs, results, spec.min_cell_count),
                               methods=methods_paragraph(spec), caveats=caveats(spec, results), truth=truth)


__all__ = ["hr_forest", "study_report_html"]
