"""Runs: the list, a run's live progress, and its results (attrition, Table 1, balance, PS
distribution, Kaplan-Meier, forest, diagnostics, downloads), all read from the run's published,
already suppressed outputs (``results.json`` and ``tables/*.parquet``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from follicle.web.deps import RUN_ID_RE, inside
from follicle.report.svg.axes import figure, url
from follicle.report.svg.charts import histogram_svg, love_svg
from follicle.report.svg.forest import Row, forest_svg
from follicle.report.svg.km import Arm, km_figure
from follicle.web.templating import is_htmx, render

router = APIRouter(prefix="/runs")
TABS = (("summary", "Summary"), ("attrition", "Attrition"), ("table1", "Table 1"), ("balance", "Balance"),
        ("ps", "PS distribution"), ("km", "Kaplan-Meier"), ("diagnostics", "Diagnostics"), ("downloads", "Downloads"))
DOWNLOADS = {"results.json": "application/json", "report.html": "text/html"}


def _run_dir(request: Request, run_id: str) -> Path:
    if not RUN_ID_RE.match(run_id):
        raise HTTPException(404)
    root = request.app.state.runs.root
    path = inside(root, run_id)
    if not (path / "status.json").is_file():
        raise HTTPException(404)
    return path


def out_dir(run_dir: Path) -> Path:
    """The run's published outputs."""
    return run_dir / "out"


def _results(run_dir: Path) -> dict[str, Any]:
    path = out_dir(run_dir) / "results.json"
    if not path.is_file():
        raise HTTPException(404)
    return json.loads(path.read_text())


def _table(run_dir: Path, name: str) -> pd.DataFrame:
    path = out_dir(run_dir) / "tables" / f"{name}.parquet"
    return pd.read_parquet(path) if path.is_file() else pd.DataFrame()


@router.get("", response_class=HTMLResponse)
def runs_page(request: Request) -> HTMLResponse:
    return render(request, "runs.html.j2", runs=request.app.state.runs.list())


@router.get("/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str, comparison: str | None = None, tab: str = "summary") -> HTMLResponse:
    run_dir = _run_dir(request, run_id)
    status = request.app.state.runs.status(run_id)
    ctx: dict[str, Any] = {"status": status, "run_id": run_id, "tabs": TABS, "tab": tab, "results": None}
    if status.get("state") == "done":
        results = _results(run_dir)
        comps = [c["id"] for c in results["comparisons"]]
        if tab not in dict(TABS):
            raise HTTPException(404)
        comparison = comparison or (comps[0] if comps else None)
        if comparison not in comps:
            raise HTTPException(404)
        comp = next(c for c in results["comparisons"] if c["id"] == comparison)
        names = [a["name"] for a in comp.get("adjustments") or []]
        adjustment = request.query_params.get("adjustment") or comp.get("primary_adjustment")
        if names and adjustment not in names:
            raise HTTPException(404)
        view = adjusted(comp, adjustment) if names else comp
        ctx |= {"results": results, "comparisons": comps, "comparison": comparison, "comp": view,
                "adjustments": comp.get("adjustments") or [], "adjustment": adjustment,
                "tab_html": _tab(request, run_dir, run_id, results, view, tab)}
    return render(request, "run.html.j2", **ctx)


@router.get("/{run_id}/status", response_class=HTMLResponse)
def run_status(request: Request, run_id: str) -> Response:
    _run_dir(request, run_id)
    status = request.app.state.runs.status(run_id)
    resp = render(request, "fragments/run_status.html.j2", status=status, run_id=run_id)
    if status.get("state") in ("done", "failed") and is_htmx(request):
        resp.headers["HX-Refresh"] = "true"  # reload the page to show the results or the error
    return resp


def adjusted(comp: dict[str, Any], name: str | None) -> dict[str, Any]:
    """The comparison as seen under one adjustment (results with named adjustments): its Table 1, balance,
    diagnostics, empirical null and sizes, and each outcome's estimate under it."""
    adj = next((a for a in comp.get("adjustments") or [] if a["name"] == name), None)
    if adj is None:
        return comp
    view = dict(comp)
    for key in ("table1", "balance", "diagnostics", "empirical_null", "n_target", "n_comparator"):
        if key in adj:
            view[key] = adj[key]
    outcomes = []
    for o in comp["outcomes"]:
        est = next((e for e in o.get("estimates") or [] if e.get("name") == name), None)
        outcomes.append({**o, **{k: v for k, v in (est or {}).items() if k not in ("name", "adjustment")},
                         "outcome": o["outcome"], "negative_control": o["negative_control"]} if est else o)
    view["outcomes"] = outcomes
    view["adjustment"] = adj
    return view


def selected_adjustment(comp: dict[str, Any]) -> str | None:
    """The adjustment a comparison view shows (the primary one unless another was chosen)."""
    return (comp.get("adjustment") or {}).get("name") or comp.get("primary_adjustment")


def _of_adjustment(frame: pd.DataFrame, name: str | None) -> pd.DataFrame:
    """Rows of a curve table for one adjustment (tables without the column: all rows)."""
    if frame.empty or "adjustment" not in frame.columns:
        return frame
    return frame[frame["adjustment"] == name] if name is not None else frame[frame["adjustment"].isna()]


def _tab(request: Request, run_dir: Path, run_id: str, results: dict[str, Any], comp: dict[str, Any], tab: str) -> Any:
    k = results["min_cell_count"]
    if tab == "summary":
        return {"forest": forest_html(run_id, results, comp["id"]), "outcomes": comp["outcomes"]}
    if tab == "balance":
        thr = results["spec"].get("analysis", {}).get("balance_threshold", 0.1)
        kind = (comp.get("adjustment") or {}).get("adjustment", "matching")
        return {"love": figure(love_svg(comp["balance"], threshold=thr, before="before adjustment",
                                        after="crude (no adjustment)" if kind == "crude" else f"after {kind}"),
                               f"Absolute standardised mean differences; dashed line at {thr}.", zoom=False),
                "rows": comp["balance"]}
    if tab == "ps":
        pref = _table(run_dir, "preference")
        pref = pref[pref["comparison"] == comp["id"]] if len(pref) else pref
        before = _of_adjustment(pref, None)
        if before.empty:
            return {"figure": None}
        arms = [comp["target"], comp["comparator"]]
        note = f"Counts per bin rounded up to a multiple of {k}; shaded: preference 0.3 to 0.7 (equipoise)."
        out = {"figure": figure(histogram_svg(before.to_dict(orient="records"), arms,
                                              title="Preference score distribution before adjustment", note=note),
                                note, zoom=False),
               "after": None, "auc": comp["propensity"].get("auc"), "equipoise": comp["propensity"].get("equipoise")}
        name = selected_adjustment(comp)
        after = _of_adjustment(pref, name) if "adjustment" in pref.columns else pref.iloc[:0]
        if name is not None and not after.empty:
            how = "weighted" if (comp.get("adjustment") or {}).get("adjustment") == "iptw" else "people analysed"
            caption = f"{note} After adjustment {name} ({how})."
            out["after"] = figure(histogram_svg(after.to_dict(orient="records"), arms,
                                                title=f"Preference score distribution after {name}", note=caption),
                                  caption, zoom=False)
        return out
    if tab == "km":
        km = _of_adjustment(_table(run_dir, "km"), selected_adjustment(comp))
        shown = sorted(set(km.loc[km["comparison"] == comp["id"], "outcome"])) if len(km) else []
        outcome = request.query_params.get("outcome") or (shown[0] if shown else None)
        if outcome is not None and outcome not in shown:
            raise HTTPException(404)
        return {"outcomes": shown, "outcome": outcome,
                "figure": km_html(request, run_dir, run_id, comp, outcome, k) if outcome else None}
    if tab == "downloads":
        return {"files": downloads(run_dir)}
    return None


def forest_html(run_id: str, results: dict[str, Any], comparison: str, xmin: float | None = None,
                xmax: float | None = None) -> Any:
    comp = next(c for c in results["comparisons"] if c["id"] == comparison)
    rows = [Row(comp["title"], kind="header")]
    several = len(comp.get("adjustments") or []) > 1
    for o in sorted(comp["outcomes"], key=lambda o: o["negative_control"]):
        label = o["outcome"].replace("_", " ") + (" (NC)" if o["negative_control"] else "")
        for e in (o.get("estimates") if several else None) or [o]:
            name = f"{label} · {e['name']}" if several else label
            extra = (f"events {e['events_target']} vs {e['events_comparator']}; p = {e['p']:.3g}"
                     if e.get("p") is not None else "")
            rows.append(Row(name, e.get("hr"), e.get("hr_ci_low"), e.get("hr_ci_high"), extra=extra,
                            note=e.get("label") or ("withheld (small counts)" if e.get("withheld") else "not estimated")))
    svg = forest_svg(rows, log=True, xlabel="hazard ratio (log scale)", favours=("favours target", "favours comparator"),
                     xmin=xmin, xmax=xmax, title=f"Hazard ratios: {comp['title']}", show_weights=False)
    return figure(svg, "Hazard ratios (95% CI) per outcome; NC = negative control (true HR 1 by design).",
                  src=url(f"/runs/{run_id}/forest", comparison=comparison), fig_id="run-forest")


def km_html(request: Request, run_dir: Path, run_id: str, comp: dict[str, Any], outcome: str, k: int,
            xmin: float | None = None, xmax: float | None = None) -> Any:
    adjustment = selected_adjustment(comp)
    km, risk = _of_adjustment(_table(run_dir, "km"), adjustment), _of_adjustment(_table(run_dir, "km_at_risk"), adjustment)
    km = km[(km["comparison"] == comp["id"]) & (km["outcome"] == outcome)]
    risk = risk[(risk["comparison"] == comp["id"]) & (risk["outcome"] == outcome)] if len(risk) else risk
    ticks = sorted(set(risk["time"])) if len(risk) else []
    arms = []
    for arm in (comp["target"], comp["comparator"]):
        steps = km[km["arm"] == arm].sort_values("time")
        row = risk[risk["arm"] == arm].sort_values("time") if len(risk) else risk
        at = list(row["at_risk"]) if len(row) else []
        n_at = [next((v for t, v in reversed(list(zip(ticks, at))) if t <= s), at[0] if at else "") for s in steps["time"]]
        arms.append(Arm(arm, list(steps["time"]), list(steps["survival"]), list(steps["ci_low"]), list(steps["ci_high"]),
                        n_at, at_risk=at, n0=at[0] if at else ""))
    title = outcome.replace("_", " ")
    return km_figure(arms, ticks, title=f"Kaplan-Meier: {title}", min_cell_count=k, xmin=xmin, xmax=xmax,
                     caption=f"Cumulative incidence of {title} with 95% CIs; curves stop where fewer than {k} are at "
                             "risk; numbers at risk below (at the latest tick on hover). Drag across the plot to zoom.",
                     src=url(f"/runs/{run_id}/km", comparison=comp["id"], outcome=outcome,
                             adjustment=adjustment if "adjustments" in comp and comp.get("adjustments") else None),
                     fig_id="run-km")


@router.get("/{run_id}/forest", response_class=HTMLResponse)
def forest_fragment(request: Request, run_id: str, comparison: str, xmin: float | None = None,
                    xmax: float | None = None) -> HTMLResponse:
    results = _results(_run_dir(request, run_id))
    if comparison not in [c["id"] for c in results["comparisons"]]:
        raise HTTPException(404)
    return HTMLResponse(str(forest_html(run_id, results, comparison, xmin, xmax)))


@router.get("/{run_id}/km", response_class=HTMLResponse)
def km_fragment(request: Request, run_id: str, comparison: str, outcome: str, adjustment: str | None = None,
                xmin: float | None = None, xmax: float | None = None) -> HTMLResponse:
    run_dir = _run_dir(request, run_id)
    results = _results(run_dir)
    comp = next((c for c in results["comparisons"] if c["id"] == comparison), None)
    if comp is None:
        raise HTTPException(404)
    if adjustment is not None:
        if adjustment not in [a["name"] for a in comp.get("adjustments") or []]:
            raise HTTPException(404)
        comp = adjusted(comp, adjustment)
    km = _of_adjustment(_table(run_dir, "km"), selected_adjustment(comp))
    if km.empty or not ((km["comparison"] == comparison) & (km["outcome"] == outcome)).any():
        raise HTTPException(404)
    return HTMLResponse(str(km_html(request, run_dir, run_id, comp, outcome, results["min_cell_count"], xmin, xmax)))


@router.get("/{run_id}/files/{path:path}")
def download(request: Request, run_id: str, path: str) -> Response:
    """A published output of the run: results.json, report.html or tables/<name>.parquet (nothing else)."""
    run_dir = _run_dir(request, run_id)
    out = out_dir(run_dir)
    if path in DOWNLOADS:
        media = DOWNLOADS[path]
    elif path.startswith("tables/") and path.endswith(".parquet") and "/" not in path[7:] and ".." not in path:
        media = "application/vnd.apache.parquet"
    else:
        raise HTTPException(404)
    target = inside(out, *path.split("/"))
    if not target.is_file():
        raise HTTPException(404)
    return FileResponse(target, media_type=media, filename=target.name)


def downloads(run_dir: Path) -> list[str]:
    out = out_dir(run_dir)
    files = [n for n in DOWNLOADS if (out / n).is_file()]
    return files + sorted(f"tables/{p.name}" for p in (out / "tables").glob("*.parquet"))
