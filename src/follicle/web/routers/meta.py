"""The Meta-analysis page: a CSV of studies (or the bundled JAK-inhibitor trials) pooled as a
:class:`follicle.synthesis.spec.MetaSpec` says: forest, funnel, heterogeneity, GRADE."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from follicle.errors import InputError, SpecError
from follicle.web.deps import recall, remember, studies_dir
from follicle.report.svg.axes import figure, url
from follicle.report.svg.charts import funnel_svg
from follicle.report.svg.forest import Row, forest_svg
from follicle.web.security import read_form
from follicle.web.templating import is_htmx, render
from follicle.web.uploads import csv_frame, upload_text

router = APIRouter(prefix="/meta")
MEASURES = ("OR", "RR", "RD", "MD", "SMD", "GEN")
METHODS = ("REML", "DL", "PM", "ML", "SJ", "HE", "EE", "MH", "PETO")
XLABEL = {"OR": "odds ratio", "RR": "risk ratio", "RD": "risk difference", "MD": "mean difference",
          "SMD": "standardised mean difference", "GEN": "estimate"}


@router.get("", response_class=HTMLResponse)
def meta_page(request: Request) -> HTMLResponse:
    return render(request, "meta.html.j2", measures=MEASURES, methods=METHODS, result=None, error=None, problems=[])


def _bundled() -> tuple[Any, Any, str]:
    from follicle.synthesis.data import load_jaki_rct
    from follicle.synthesis.spec import MetaSpec

    path = studies_dir() / "jaki_rct_meta.yaml"
    if not path.is_file():
        raise InputError(f"the bundled spec {path} is not there (run from a Follicle source tree)")
    return MetaSpec.from_yaml(path.read_text(encoding="utf-8")), load_jaki_rct(), "bundled JAK-inhibitor trials"


def _uploaded_spec(form: Any, name: str) -> Any:
    from follicle.synthesis.spec import Continuity, GradeSpec, Judgement, MetaSpec

    def text(key: str, default: str = "") -> str:
        v = form.get(key)
        return v.strip() if isinstance(v, str) else default

    grade = None
    if text("grade_outcome"):
        judged = {}
        for dom in ("risk_of_bias", "indirectness", "publication_bias"):
            rating, reason = text(f"{dom}_rating"), text(f"{dom}_reason")
            if rating:
                judged[dom] = Judgement(rating=rating, reason=reason)  # type: ignore[arg-type]
        grade = GradeSpec(outcome=text("grade_outcome"), design=text("grade_design", "rct"), **judged)  # type: ignore[arg-type]
    favours = (text("favours_left"), text("favours_right")) if text("favours_left") and text("favours_right") else None
    stem = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name.rsplit(".", 1)[0])[:60] or "upload"
    return MetaSpec(name=stem, title=text("title"), data=name, measure=text("measure", "OR").upper(),  # type: ignore[arg-type]
                    method=text("method", "REML").upper(), knha=text("knha") == "on", ratio=text("ratio") == "on",  # type: ignore[arg-type]
                    subgroup=text("subgroup") or None, favours=favours, grade=grade,
                    continuity=Continuity())


def analyse(spec: Any, frame: Any, source: str) -> dict[str, Any]:
    """Run the spec and keep what the page shows (plots are drawn from this, zoomed or not)."""
    from follicle.synthesis.spec import run_spec

    try:
        out = run_spec(spec, frame, source=source)
    except KeyError as exc:
        raise SpecError(str(exc.args[0])) from None
    except (ValueError, ArithmeticError) as exc:
        raise InputError(f"{source}: {exc}") from None
    groups = None
    if spec.subgroup and "study" in frame.columns:
        groups = dict(zip(frame["study"].astype(str).str.strip(), frame[spec.subgroup].astype(str)))
    return {"spec": spec, "out": out, "groups": groups, "source": source}


@router.post("", response_class=HTMLResponse)
async def meta_run(request: Request) -> HTMLResponse:
    form = await read_form(request)
    try:
        if form.get("source") == "bundled":
            spec, frame, source = _bundled()
        else:
            upload = form.get("csv")
            text = await upload_text(upload, what="CSV")
            if text is None:
                raise InputError("choose a CSV file of studies, or use the bundled JAK-inhibitor trials")
            name = upload.filename  # type: ignore[union-attr]
            frame, source = csv_frame(text, name=name), name
            try:
                spec = _uploaded_spec(form, name)
            except ValidationError as exc:
                raise SpecError("meta-analysis settings", problems=[
                    f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]) from None
        result = analyse(spec, frame, source)
    except (InputError, SpecError) as exc:
        ctx = {"result": None, "error": str(exc), "problems": exc.problems}
        return render(request, "fragments/meta_result.html.j2" if is_htmx(request) else "meta.html.j2",
                      status_code=400, measures=MEASURES, methods=METHODS, **ctx)
    key = remember(request, "meta", result)
    ctx = view(result, key)
    return render(request, "fragments/meta_result.html.j2" if is_htmx(request) else "meta.html.j2",
                  measures=MEASURES, methods=METHODS, result=ctx, error=None, problems=[])


def forest_html(result: dict[str, Any], key: str, xmin: float | None = None, xmax: float | None = None) -> Any:
    from follicle.report.forest import spec_rows

    spec, out = result["spec"], result["out"]
    rows, footer = spec_rows(out, result["groups"], spec.note)
    ratio = out["overall"].is_ratio
    drawn = [Row(r.label, r.estimate, r.ci_low, r.ci_high, weight=r.weight, kind=r.kind,
                 extra=(f"prediction interval {r.pi_low:.2f} to {r.pi_high:.2f}" if r.pi_low is not None else ""))
             for r in rows]
    favours = (f"favours {spec.favours[0]}", f"favours {spec.favours[1]}") if spec.favours else None
    svg = forest_svg(drawn, log=ratio, xlabel=XLABEL.get(spec.measure, "estimate") + (" (log scale)" if ratio else ""),
                     favours=favours, xmin=xmin, xmax=xmax, title=spec.title or spec.name)
    return figure(svg, footer.replace("\n", " · "), src=url(f"/meta/r/{key}/forest"), fig_id="meta-forest")


def view(result: dict[str, Any], key: str) -> dict[str, Any]:
    """What the results fragment shows."""
    spec, out = result["spec"], result["out"]
    res = out["overall"]
    tr = math.exp if res.is_ratio else (lambda v: v)
    funnel = None
    if res.k >= 3:
        filled = out.get("trimfill", {}).get("filled_yi", [])
        funnel = figure(funnel_svg(res.yi, list(np.sqrt(res.vi)), res.labels, estimate=res.estimate,
                                   xlabel=XLABEL.get(spec.measure, "estimate"), ratio=res.is_ratio, filled_yi=filled),
                        "Funnel plot: each study's estimate against its standard error; hollow points are studies "
                        "added by trim-and-fill.", zoom=False)
    grade = out.get("grade")
    return {
        "key": key, "title": spec.title or spec.name, "source": result["source"], "measure": spec.measure,
        "method": res.method, "knha": res.knha, "k": res.k, "forest": forest_html(result, key), "funnel": funnel,
        "pooled": (tr(res.estimate), tr(res.ci_low), tr(res.ci_high)),
        "pi": (tr(res.pi_low), tr(res.pi_high)) if res.tau2 > 0 else None, "p": res.pval,
        "het": {"tau2": res.tau2, "tau2_ci": (res.tau2_ci_low, res.tau2_ci_high), "i2": res.i2,
                "i2_ci": (res.i2_ci_low, res.i2_ci_high), "h2": res.h2, "q": res.q, "q_df": res.q_df, "q_p": res.q_p},
        "subgroups": out.get("subgroups"), "egger": out.get("egger"), "trimfill": out.get("trimfill"),
        "grade": grade, "dropped": res.dropped, "note": spec.note, "ratio": res.is_ratio,
        "spec_yaml": spec.to_yaml(),
    }


@router.get("/r/{key}/forest", response_class=HTMLResponse)
def meta_forest(request: Request, key: str, xmin: float | None = None, xmax: float | None = None) -> HTMLResponse:
    result = recall(request, "meta", key)
    return HTMLResponse(str(forest_html(result, key, xmin, xmax)))
