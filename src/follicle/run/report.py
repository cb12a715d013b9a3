"""The study report: figures from the run (aggregate, small numbers hidden) and the HTML page.

Every figure is drawn from what may be published, per adjustment: Kaplan-Meier figures from
rounded counts (:func:`follicle.privacy.protect_km`), so neither a step nor the numbers at risk
under the plot give back a small count; love plots from the SMDs results.json shows; preference
distributions from counts per bin rounded up to multiples of the minimum cell count
(:mod:`follicle.run.curves`). Figures are SVG written directly (:mod:`follicle.report.svg`, the
plots the web app shows), each drawn once: a study's thirty curves take milliseconds, not seconds.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from follicle.report.figures import svg_uri
from follicle.report.study_report import render_study_report
from follicle.report.svg.charts import histogram_svg, love_svg
from follicle.report.svg.forest import Row, forest_svg
from follicle.report.svg.km import Arm, km_svg
from follicle.run.curves import RunCurves, protected_curves, run_curves
from follicle.run.narrative import caveats, methods_paragraph
from follicle.run.pipeline import ComparisonRun
from follicle.study.spec import StudySpec


def hr_forest(results: dict[str, Any]) -> str:
    """Forest plot (SVG) of HRs: one block per comparison, one row per outcome (negative controls
    last), and under each outcome one row per adjustment when the study has several."""
    rows: list[Row] = []
    for comp in results["comparisons"]:
        rows.append(Row(label=comp["title"], kind="header"))
        for o in sorted(comp["outcomes"], key=lambda o: o["negative_control"]):
            label = o["outcome"] + (" (NC)" if o["negative_control"] else "")
            estimates = o.get("estimates") or [dict(o, name="")]
            several = len(estimates) > 1
            if several:
                rows.append(Row(label=label, kind="note", note=" "))
            for e in estimates:
                text = f"  {e['name']}" if several else label
                if e.get("hr") is None:
                    rows.append(Row(label=text, kind="note", note=e.get("label") or "not estimated"))
                else:
                    rows.append(Row(label=text, estimate=e["hr"], ci_low=e["hr_ci_low"], ci_high=e["hr_ci_high"]))
    return forest_svg(rows, log=True, xlabel="hazard ratio (95% CI, log scale)",
                      favours=("favours target", "favours comparator"), title="Hazard ratios", show_weights=False)


def km_arms(curves: dict[str, pd.DataFrame], at_risk: pd.DataFrame, min_cell: int) -> tuple[list[Arm], list[float]]:
    """Arms of a Kaplan-Meier figure from protected curves: the steps while at least *min_cell*
    are at risk, and the (suppressed) numbers at risk at the ticks."""
    ticks = [float(c) for c in at_risk.columns]
    arms = []
    for label, curve in curves.items():
        shown = curve[curve["at_risk"] >= min_cell]
        at = [str(v) for v in at_risk.loc[label]] if label in at_risk.index else []
        times = shown["time"].astype(float).tolist()
        n_at = [next((v for t, v in reversed(list(zip(ticks, at))) if t <= s), at[0] if at else "") for s in times]
        arms.append(Arm(str(label), times, shown["survival"].astype(float).tolist(),
                        shown["ci_low"].astype(float).tolist(), shown["ci_high"].astype(float).tolist(),
                        n_at, at_risk=at, n0=at[0] if at else ""))
    return arms, ticks


def figures(runs: list[ComparisonRun], results: dict[str, Any], min_cell: int,
            curves: RunCurves | None = None) -> dict[str, Any]:
    """Data URIs of every figure, keyed as :func:`render_study_report` expects: ``forest``, and per
    comparison id ``preference`` (before adjustment) and per adjustment name ``love``,
    ``preference`` (after adjustment) and ``km`` (outcome -> URI; unweighted designs only, negative
    controls under the primary adjustment only). *curves*: the run's protected curves, when the
    caller computed them already (:func:`follicle.run.curves.run_curves`)."""
    curves = curves or run_curves(runs, results, min_cell)
    out: dict[str, Any] = {"forest": svg_uri(hr_forest(results))}
    for run in runs:
        comp = next(c for c in results["comparisons"] if c["id"] == run.name)
        labels = (run.target, run.comparator)
        entry: dict[str, Any] = {"adjustments": {}}
        out[run.name] = entry
        if not run.adjusted:  # not estimable: no figures
            continue
        if (run.name, None) in curves.preference:
            entry["preference"] = svg_uri(histogram_svg(curves.preference[(run.name, None)], labels,
                                                        title=f"Preference score before adjustment: {run.name}"))
        for name, adj in run.adjusted.items():
            figs: dict[str, Any] = {"km": {}}
            published = next((a["balance"] for a in comp.get("adjustments", []) if a["name"] == name), [])
            balance = pd.DataFrame(published, columns=["covariate", "smd_before", "smd_after"]).dropna(
                subset=["smd_before", "smd_after"])
            if len(balance):  # only the SMDs results.json shows (docs/privacy.md)
                figs["love"] = svg_uri(love_svg(balance.to_dict(orient="records"), threshold=0.1,
                                                before="before adjustment", title=f"Covariate balance: {name}",
                                                after=f"after {adj.kind}" if adj.kind != "crude"
                                                else "crude (no adjustment)"))
            bins = curves.preference.get((run.name, name))
            if bins is not None:
                figs["preference"] = svg_uri(histogram_svg(bins, labels, title=f"Preference score after {name}"))
            entry["adjustments"][name] = figs
    for comparison, name, outcome, km, at_risk in curves.km:
        arms, ticks = km_arms(km, at_risk, min_cell)
        out[comparison]["adjustments"][name]["km"][outcome] = svg_uri(
            km_svg(arms, ticks, title=outcome.replace("_", " "), min_cell_count=min_cell))
    return out


def study_report_html(spec: StudySpec, runs: list[ComparisonRun], results: dict[str, Any], *,
                      truth: dict[tuple[str, str], float] | None = None, curves: RunCurves | None = None) -> str:
    """The report page; *truth* (true HR by comparison and outcome, the synthetic world's) is shown
    beside each estimate; *curves* as for :func:`figures`."""
    return render_study_report(results, figures(runs, results, spec.min_cell_count, curves),
                               methods=methods_paragraph(spec), caveats=caveats(spec, results), truth=truth)


__all__ = ["hr_forest", "protected_curves", "study_report_html"]
