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
    """Forest plot of HRs: one block per comparison, one row per outcome (negative controls last)."""
    rows: list[ForestRow] = []
    for comp in results["comparisons"]:
        rows.append(ForestRow(label=comp["title"], kind="header"))
        for o in sorted(comp["outcomes"], key=lambda o: o["negative_control"]):
            label = o["outcome"] + (" (NC)" if o["negative_control"] else "")
            if o.get("hr") is None:
                rows.append(ForestRow(label=label, kind="note", note=o.get("label") or "not estimated"))
            else:
                rows.append(ForestRow(label=label, estimate=o["hr"], ci_low=o["hr_ci_low"], ci_high=o["hr_ci_high"]))
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
    """Data URIs of every figure, keyed as :func:`render_study_report` expects."""
    out: dict[str, Any] = {"forest": to_data_uri(hr_forest(results))}
    jobs, keys = [], []
    for run in runs:
        shown = {o["outcome"] for comp in results["comparisons"] if comp["id"] == run.name
                 for o in comp["outcomes"] if o.get("hr") is not None}
        for o in run.outcomes:
            if o.at_risk is None or not o.curves or o.outcome not in shown:
                continue  # withheld estimates get no curve: its steps would reveal the small counts
            jobs.append((o.curves, _at_risk_text(o.at_risk, min_cell), o.outcome.replace("_", " "), min_cell))
            keys.append((run.name, o.outcome))
        ps = run.propensity
        if ps is None:  # not estimable: no propensity figures
            out[run.name] = {"km": {}}
            continue
        out[run.name] = {
            "love": to_data_uri(love_plot(ps.balance)),
            "preference": to_data_uri(preference_plot(ps.preference, run.treatment, (run.target, run.comparator))),
            "km": {},
        }
    for (name, outcome), uri in zip(keys, _render_all(jobs)):
        out[name]["km"][outcome] = uri
    return out


def study_report_html(spec: StudySpec, runs: list[ComparisonRun], results: dict[str, Any], *,
                      truth: dict[tuple[str, str], float] | None = None) -> str:
    """The report page; *truth* (true HR by comparison and outcome, the synthetic world's) is shown
    beside each estimate."""
    return render_study_report(results, figures(runs, results, spec.min_cell_count),
                               methods=methods_paragraph(spec), caveats=caveats(spec, results), truth=truth)


__all__ = ["hr_forest", "study_report_html"]
