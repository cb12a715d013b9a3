"""The Network meta-analysis page: the bundled JAK-inhibitor trials (or an uploaded CSV) fitted as
R's netmeta does (:mod:`follicle.synthesis.nma`): network graph, effects, league table, rankings, GRADE."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from follicle.errors import InputError, SpecError
from follicle.web.deps import recall, remember, studies_dir
from follicle.report.svg.axes import figure, url
from follicle.report.svg.charts import netgraph_svg
from follicle.report.svg.forest import Row, forest_svg
from follicle.web.security import read_form
from follicle.web.templating import is_htmx, render
from follicle.web.uploads import csv_frame, upload_text

router = APIRouter(prefix="/nma")
MEASURES = ("OR", "RR", "RD", "MD", "SMD")


@router.get("", response_class=HTMLResponse)
def nma_page(request: Request) -> HTMLResponse:
    return render(request, "nma.html.j2", measures=MEASURES, result=None, error=None, problems=[])


def _bundled() -> tuple[Any, Any, str]:
    from follicle.synthesis.data import jaki_trial_arms
    from follicle.synthesis.nma.spec import NMASpec

    path = studies_dir() / "jaki_nma.yaml"
    if not path.is_file():
        raise InputError(f"the bundled spec {path} is not there (run from a Follicle source tree)")
    return NMASpec.from_yaml(path.read_text(encoding="utf-8")), jaki_trial_arms(), "bundled JAK-inhibitor trial arms"


def _uploaded(form: Any, frame: Any, name: str) -> Any:
    from follicle.synthesis.nma.spec import NMASpec

    def text(key: str, default: str = "") -> str:
        v = form.get(key)
        return v.strip() if isinstance(v, str) else default

    fmt = "contrasts" if {"treatment1", "treatment2", "estimate", "se"} <= set(frame.columns) else "arms"
    stem = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name.rsplit(".", 1)[0])[:60] or "upload"
    try:
        return NMASpec(name=stem, data=name, format=fmt, measure=text("measure", "OR").upper(),  # type: ignore[arg-type]
                       reference=text("reference") or None, better=text("better"), model=text("model", "random"),  # type: ignore[arg-type]
                       nsim=2000)
    except ValidationError as exc:
        raise SpecError("network meta-analysis settings", problems=[
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]) from None


@router.post("", response_class=HTMLResponse)
async def nma_run(request: Request) -> HTMLResponse:
    from follicle.synthesis.nma.spec import run_spec

    form = await read_form(request)
    try:
        if form.get("source") == "bundled":
            spec, frame, source = _bundled()
        else:
            upload = form.get("csv")
            text = await upload_text(upload, what="CSV")
            if text is None:
                raise InputError("choose a CSV file (arms or contrasts), or use the bundled JAK-inhibitor trials")
            name = upload.filename  # type: ignore[union-attr]
            frame, source = csv_frame(text, name=name, dtype=None), name
            spec = _uploaded(form, frame, name)
        try:
            _, out = run_spec(spec, frame, source=source)
        except (ValueError, ArithmeticError, KeyError) as exc:
            raise InputError(f"{source}: {exc}") from None
    except (InputError, SpecError) as exc:
        return render(request, "fragments/nma_result.html.j2" if is_htmx(request) else "nma.html.j2", status_code=400,
                      measures=MEASURES, result=None, error=str(exc), problems=exc.problems)
    key = remember(request, "nma", out)
    return render(request, "fragments/nma_result.html.j2" if is_htmx(request) else "nma.html.j2",
                  measures=MEASURES, result=view(out, key, source), error=None, problems=[])


def forest_html(out: dict[str, Any], key: str, xmin: float | None = None, xmax: float | None = None) -> Any:
    model = out["model_for_decisions"]
    ratio = out["scale"] == "log"
    tr = math.exp if ratio else (lambda v: v)
    ps = out[model]["p_scores"]
    rows = [Row(f"{e['treatment']} vs {out['reference']}", tr(e["estimate"]), tr(e["ci_low"]), tr(e["ci_high"]),
                extra=f"P-score {ps.get(e['treatment'], float('nan')):.3f}")
            for e in sorted(out[model]["effects"], key=lambda e: -ps.get(e["treatment"], 0))]
    svg = forest_svg(rows, log=ratio, xlabel=f"{out['measure']} against {out['reference']}" + (" (log scale)" if ratio else ""),
                     xmin=xmin, xmax=xmax, title="Network estimates", show_weights=False)
    return figure(svg, f"Network estimates against {out['reference']} ({model} effects model), ordered by P-score.",
                  src=url(f"/nma/r/{key}/forest"), fig_id="nma-forest")


def view(out: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    model = out["model_for_decisions"]
    ps, su, probs = out[model]["p_scores"], out[model]["sucra"], out[model]["rank_probabilities"]
    ranks = [{"treatment": t, "pscore": ps[t], "sucra": su.get(t), "best": probs.get(t, {}).get("rank_1")}
             for t in sorted(ps, key=lambda t: -ps[t])]
    lt = out[model]["league_table"]
    grade = out.get("grade")
    return {
        "key": key, "title": out.get("spec", {}).get("title") or out.get("spec", {}).get("name", "Network"),
        "source": source, "out": out, "model": model, "ranks": ranks,
        "league": {"columns": lt["columns"], "rows": lt["data"]},
        "netgraph": figure(netgraph_svg(out["treatments"], out["edges"], scores=ps),
                           "Network graph: a line per direct comparison, wider with more studies.", zoom=False),
        "forest": forest_html(out, key), "het": out["heterogeneity"], "grade": grade,
        "grade_rows": [r for r in grade["table"] if r["comparison"].endswith(f":{out['reference']}")] if grade else [],
    }


@router.get("/r/{key}/forest", response_class=HTMLResponse)
def nma_forest(request: Request, key: str, xmin: float | None = None, xmax: float | None = None) -> HTMLResponse:
    return HTMLResponse(str(forest_html(recall(request, "nma", key), key, xmin, xmax)))
