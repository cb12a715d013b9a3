"""The cohort editor of a study draft: entry, required and excluded criteria with windows, prior
observation, washout, minimum exposures, age; live attrition computed in the database as you edit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from follicle.errors import FollicleError
from follicle.privacy import protect_chain
from follicle.web import drafts
from follicle.web.deps import cdm, safe_name
from follicle.web.forms import Fields
from follicle.web.routers.studies import store
from follicle.web.security import read_form
from follicle.web.study_form import MAX_CRITERIA, cohort_from_form
from follicle.web.templating import render

router = APIRouter(prefix="/studies/{name}/cohorts")


def _load(request: Request, name: str, cohort: str) -> tuple[dict[str, Any], dict[str, Any]]:
    safe_name(name)
    safe_name(cohort)
    data = store(request).load(name)
    if cohort not in (data.get("cohorts") or {}):
        raise HTTPException(404)
    return data, data["cohorts"][cohort]


@router.get("/{cohort}", response_class=HTMLResponse)
def editor(request: Request, name: str, cohort: str) -> HTMLResponse:
    data, c = _load(request, name, cohort)
    rows = {k: list(c.get(k) or []) + [{}] for k in ("require", "exclude")}
    others = sorted(k for k in data.get("cohorts", {}) if k != cohort)
    return render(request, "cohort.html.j2", name=name, cohort=cohort, c=c, rows=rows,
                  sets=sorted((data.get("concept_sets") or {}).keys()), others=others, max_criteria=MAX_CRITERIA)


def _with_form(data: dict[str, Any], cohort: str, f: Fields) -> dict[str, Any]:
    new = dict(data)
    new["cohorts"] = dict(data.get("cohorts") or {})
    new["cohorts"][cohort] = cohort_from_form(f, data["cohorts"][cohort])
    return new


def attrition_rows(request: Request, spec: Any, cohort: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The cohort's attrition (small counts and small differences protected) and the concept-set warnings."""
    from follicle.study.counts import cohort_attrition

    with cdm(request) as con:
        out = cohort_attrition(spec, con, cohort)
    k = spec.min_cell_count
    records = out["attrition"].to_dict(orient="records")
    shown = protect_chain([int(r["persons"]) for r in records], k)
    rows = []
    prev: Any = None
    for r, n in zip(records, shown, strict=True):
        removed = prev - n if isinstance(prev, int) and isinstance(n, int) else None
        rows.append({"step": r["step"], "description": r["description"], "persons": n if n is not None else "withheld",
                     "removed": removed})
        if isinstance(n, int):
            prev = n
    return rows, out["warnings"]


@router.post("/{cohort}/attrition", response_class=HTMLResponse)
async def live_attrition(request: Request, name: str, cohort: str) -> HTMLResponse:
    data, _ = _load(request, name, cohort)
    f = Fields(await read_form(request))
    try:
        new = _with_form(data, cohort, f)
        f.done()
        spec = drafts.validated(_only_cohorts(new))
        rows, warnings = attrition_rows(request, spec, cohort)
    except FollicleError as exc:
        return render(request, "fragments/attrition.html.j2", rows=[], warnings=[], error=str(exc), problems=exc.problems)
    return render(request, "fragments/attrition.html.j2", rows=rows, warnings=warnings, error=None, problems=[],
                  min_cell_count=spec.min_cell_count)


def _only_cohorts(data: dict[str, Any]) -> dict[str, Any]:
    """The draft without the parts a cohort does not need (so an unfinished comparison does not
    stop the attrition)."""
    return {"name": data.get("name", "draft"), "concept_sets": data.get("concept_sets") or {},
            "cohorts": data.get("cohorts") or {}, "comparisons": {}, "min_cell_count": data.get("min_cell_count", 10)}


@router.post("/{cohort}")
async def save(request: Request, name: str, cohort: str) -> Response:
    data, _ = _load(request, name, cohort)
    f = Fields(await read_form(request))
    new = _with_form(data, cohort, f)
    f.done()
    store(request).save(name, new)
    return RedirectResponse(f"/studies/{name}/cohorts/{cohort}?saved=1", status_code=303)


@router.post("/{cohort}/delete")
def delete(request: Request, name: str, cohort: str) -> Response:
    data, _ = _load(request, name, cohort)
    data["cohorts"].pop(cohort)
    store(request).save(name, data)
    return RedirectResponse(f"/studies/{name}#cohorts", status_code=303)
