"""HTML of a network study: the site summary a data steward reads before sending a bundle, and the
pooled report (per-site forests with the pooled rows, calibration on the pooled negative controls).

Plain HTML with inline SVG from :mod:`follicle.report.svg` (no matplotlib: a report of 50 sites x 30
outcomes renders in well under a second).
"""

from __future__ import annotations

import math
from typing import Any

from markupsafe import escape

from follicle.report.svg.charts import funnel_svg
from follicle.report.svg.forest import Row, forest_svg

STYLE = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}"
         "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 6px;"
         "font-size:90%;text-align:right}td:first-child,th:first-child{text-align:left}"
         ".fail{color:#a00}.note{color:#555;font-size:90%}svg{max-width:100%;height:auto}")


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if math.isfinite(v) else "-"
    return str(v)


def _ci(e: dict[str, Any]) -> str:
    if e.get("hr") is None:
        return "-"
    return f"{_fmt(e['hr'])} ({_fmt(e.get('hr_ci_low'))} to {_fmt(e.get('hr_ci_high'))})"


def _page(title: str, body: list[str]) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>" + "".join(body) + "</body></html>\n")


def _table(head: list[str], rows: list[list[Any]]) -> str:
    out = ["<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{escape(_fmt(c))}</td>" for c in r) + "</tr>")
    return "".join(out) + "</table>"


def site_summary_html(doc: dict[str, Any]) -> str:
    """What the bundle of one site holds, in the words and numbers a data steward checks."""
    k = doc["min_cell_count"]
    body = [f"<h1>Site bundle: {escape(doc['site'])}</h1>",
            f"<p>Study <b>{escape(doc['study'])}</b>, package {escape(doc['package_id'][:16])}, Follicle "
            f"{escape(doc['follicle_version'])}. This bundle holds aggregates only: counts (those from 1 to {k - 1} "
            f"shown as &lt;{k}), hazard ratios with their profile log-likelihood (a curve of the log HR on a grid), "
            f"diagnostics, attrition, and Kaplan-Meier survival at days {', '.join(map(str, doc['km_days']))} "
            "rebuilt from counts rounded up to multiples of the minimum cell count. It holds no person id, no "
            "date of an individual and no row-level table. An estimate withheld for small counts is sent "
            "without its likelihood curve.</p>"]
    for c in doc["comparisons"]:
        body.append(f"<h2>{escape(c['target'])} vs {escape(c['comparator'])}</h2>")
        if c["status"] != "estimated":
            body.append(f"<p class='fail'>Not estimable: {escape(c.get('status_reason') or '')}</p>")
        body.append("<h3>Attrition</h3>")
        body.append(_table(["cohort", "step", "persons"],
                           [[a.get("cohort"), a.get("description") or a.get("step"), a.get("count", a.get("persons"))]
                            for a in c.get("attrition", [])]))
        if c.get("adjustments"):
            body.append("<h3>Adjustments</h3>")
            body.append(_table(["adjustment", "kind", "n target", "n comparator", "max |SMD|"],
                               [[a["name"], a["adjustment"], a["n_target"], a["n_comparator"],
                                 _fmt(a.get("max_abs_smd"), 3)] for a in c["adjustments"]]))
        rows = []
        for o in c["outcomes"]:
            for e in o["estimates"]:
                km = e.get("km")
                surv = "-" if not km else "; ".join(
                    f"{d}d {_fmt(t, 3)}/{_fmt(m, 3)}" for d, t, m in zip(km["days"], km["target"]["survival"],
                                                                          km["comparator"]["survival"]))
                rows.append([o["outcome"] + (" (NC)" if o["negative_control"] else ""), e["name"], e["n_target"],
                             e["n_comparator"], e["events_target"], e["events_comparator"], _ci(e),
                             e.get("diagnostics_overall"), "yes" if e.get("profile") else "no", surv,
                             e.get("label") or ""])
        body.append("<h3>Estimates</h3>")
        body.append(_table(["outcome", "adjustment", "n T", "n C", "events T", "events C", "HR (95% CI)",
                            "diagnostics", "likelihood sent", "KM survival T/C", "status"], rows))
    return _page(f"Site bundle {doc['site']}", body)


def _forest(o: dict[str, Any], title: str) -> str:
    rows = [Row(s["site"], s.get("hr"), s.get("hr_ci_low"), s.get("hr_ci_high"),
                note=f"left out: {s['reason']}" if not s["included"] else (s.get("failed") or ""))
            for s in o["sites"]]
    for p in o["pooled"]:
        label = {("normal", "fixed"): "Pooled, fixed (normal)", ("normal", "random"): "Pooled, random (normal, HKSJ)",
                 ("likelihood", "fixed"): "Pooled, likelihood", ("likelihood", "random"): "Pooled, likelihood random"}
        rows.append(Row(label[(p["approximation"], p["model"])], p["hr"], p["hr_ci_low"] or None,
                        p["hr_ci_high"], kind="summary"))
    return forest_svg(rows, log=True, xlabel="Hazard ratio", title=title, show_weights=False)


def pool_report_html(res: dict[str, Any]) -> str:
    """The pooled report: per comparison x adjustment x outcome a forest of the sites and pooled rows."""
    body = [f"<h1>Network study: {escape(res['study'])}</h1>",
            f"<p>{len(res['sites'])} site(s): {escape(', '.join(s['site'] for s in res['sites']))}. Package "
            f"{escape(res['package_id'][:16])}. "
            + (f"Sites failing {escape(', '.join(res['excluding_diagnostics']))} are left out of each pool and "
               "listed. " if res["excluding_diagnostics"] else "Sites failing diagnostics are <b>kept</b> in the "
               "pools (--include-failing) and marked. ")
            + "Normal approximation: inverse-variance fixed effect and REML "
            "random effects with the Hartung-Knapp-Sidik-Jonkman CI. Likelihood: the sites' profile "
            "log-likelihoods summed (maximum, likelihood-ratio CI), and a normal random effect integrated "
            "over each site's likelihood (tau profiled out).</p>"]
    for c in res["comparisons"]:
        body.append(f"<h2>{escape(c['target'])} vs {escape(c['comparator'])}</h2>")
        for adj in dict.fromkeys(o["adjustment"] for o in c["outcomes"]):
            outs = [o for o in c["outcomes"] if o["adjustment"] == adj]
            body.append(f"<h3>Adjustment {escape(adj)}</h3>")
            rows = []
            for o in outs:
                byname = {(p["approximation"], p["model"]): p for p in o["pooled"]}
                cal = o.get("calibrated")
                rows.append([o["outcome"] + (" (NC)" if o["negative_control"] else ""),
                             sum(s["included"] for s in o["sites"]), len(o["sites"]),
                             _ci(byname.get(("normal", "fixed"), {})), _ci(byname.get(("normal", "random"), {})),
                             _ci(byname.get(("likelihood", "fixed"), {})), _ci(byname.get(("likelihood", "random"), {})),
                             _ci(cal) if cal else "-"])
            body.append(_table(["outcome", "sites in", "sites", "fixed (normal)", "random (HKSJ)", "likelihood",
                                "likelihood random", "calibrated (likelihood)"], rows))
            cal = c["calibration"].get(adj)
            if cal:
                body.append(f"<p>Empirical null from {cal['n_controls']} pooled negative controls: mean "
                            f"{cal['mean']:.3f}, SD {cal['sd']:.3f} (log HR).</p>")
                yi = [x["log_hr"] for x in cal["controls"]]
                body.append(funnel_svg(yi, [x["se_log_hr"] for x in cal["controls"]], [f"control {i + 1}" for i in range(len(yi))],
                                       estimate=0.0, xlabel="Hazard ratio", ratio=True,
                                       title="Pooled negative controls (likelihood) against their SE"))
            else:
                body.append("<p class='note'>Fewer than 3 pooled negative controls: no empirical calibration.</p>")
            for o in outs:
                if o["pooled"] or o["sites"]:
                    body.append(f"<h4>{escape(o['outcome'])}</h4>")
                    body.append(_forest(o, f"{c['id']} {adj} {o['outcome']}"))
                    for s in o["left_out"]:
                        body.append(f"<p class='note'>Left out: {escape(s['site'])}: {escape(s['reason'])}</p>")
    return _page(f"Network study {res['study']}", body)
