"""The Study designer: drafts of study specs (new, from a template, or a loaded YAML file), edited
section by section, validated as :class:`follicle.study.spec.StudySpec`, downloaded as YAML, run."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from follicle.errors import InputError, SpecError
from follicle.web import drafts
from follicle.web.deps import NAME_RE, safe_name, studies_dir
from follicle.web.forms import Fields
from follicle.web.security import read_form
from follicle.web.templating import render
from follicle.web.uploads import upload_text

router = APIRouter(prefix="/studies")
TEMPLATES = {"jaki_neuropsych": "JAK inhibitors and neuropsychiatric outcomes (Levine et al. 2025)"}


def store(request: Request) -> drafts.DraftStore:
    return drafts.DraftStore(request.app.state.settings.runs)


def back(name: str, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(f"/studies/{name}" + (f"#{anchor}" if anchor else ""), status_code=303)


@router.get("", response_class=HTMLResponse)
def studies_page(request: Request, error: str | None = None) -> HTMLResponse:
    s = store(request)
    rows = []
    for n in s.names():
        try:
            data = s.load(n)
        except SpecError:
            rows.append({"name": n, "description": "(unreadable draft)", "problems": 1, "cohorts": 0, "comparisons": 0})
            continue
        rows.append({"name": n, "description": str(data.get("description") or ""), "problems": len(drafts.problems(data)),
                     "cohorts": len(data.get("cohorts") or {}), "comparisons": len(data.get("comparisons") or {})})
    return render(request, "studies.html.j2", drafts=rows, templates=TEMPLATES, error=error, problems=[])


@router.post("/new")
async def new_study(request: Request) -> Response:
    form = Fields(await read_form(request))
    name = form.text("name")
    if not NAME_RE.match(name):
        raise InputError(f"name: use lower-case letters, digits and _ (starting with a letter, at most 40); got {name!r}")
    s = store(request)
    if s.exists(name):
        raise InputError(f"name: a study called {name!r} exists already")
    template = form.text("template")
    if template:
        if template not in TEMPLATES:
            raise InputError(f"template: unknown template {template!r}")
        data = drafts.parse_yaml((studies_dir() / f"{template}.yaml").read_text(encoding="utf-8"), source=template)
    else:
        data = drafts.blank(name)
    s.save(name, data)
    return back(name)


@router.post("/upload")
async def upload_study(request: Request) -> Response:
    raw = await read_form(request)
    text = await upload_text(raw.get("spec"), what="study spec", max_bytes=drafts.MAX_SPEC_BYTES)
    if text is None:
        raise InputError("choose a study spec file (YAML or JSON)")
    filename = raw.get("spec").filename  # type: ignore[union-attr]
    data = drafts.parse_yaml(text, source=filename)
    drafts.check_shape(data, source=filename)
    name = str(data.get("name") or "")
    if not NAME_RE.match(name):
        raise SpecError(f"{raw.get('spec').filename}: the spec's name must be lower case, digits and _ "  # type: ignore[union-attr]
                        f"(starting with a letter, at most 40); got {name!r}")
    store(request).save(name, data)
    return back(name)


def _options(data: dict[str, Any]) -> dict[str, list[str]]:
    return {k: sorted((data.get(k) or {}).keys()) for k in ("concept_sets", "cohorts", "outcomes", "comparisons")}


@router.get("/{name}", response_class=HTMLResponse)
def designer(request: Request, name: str) -> HTMLResponse:
    safe_name(name)
    from follicle.web.study_form import ANCHORS, KINDS, adjustments_of

    data = store(request).load(name)
    analysis = data.get("analysis") if isinstance(data.get("analysis"), dict) else {}
    return render(request, "designer.html.j2", name=name, d=data, problems=drafts.problems(data), opts=_options(data),
                  codes=codes_text, adjustments=adjustments_of(analysis), kinds=KINDS, anchors=ANCHORS)


def codes_text(entries: Any) -> str:
    """A concept set's codes as one line (``ICD10CM:L63, RxNorm:baricitinib``)."""
    if entries is None:
        return ""
    items = entries if isinstance(entries, list) else [entries]
    return ", ".join(str(e) if not isinstance(e, dict) else f"{e.get('vocabulary')}:{e.get('code')}" for e in items)


@router.get("/{name}/spec.yaml")
def download(request: Request, name: str) -> Response:
    safe_name(name)
    spec = drafts.validated(store(request).load(name))
    return Response(spec.to_yaml(), media_type="application/x-yaml",
                    headers={"content-disposition": f'attachment; filename="{name}.yaml"'})


@router.post("/{name}/validate", response_class=HTMLResponse)
def validate(request: Request, name: str) -> HTMLResponse:
    safe_name(name)
    return render(request, "fragments/problems.html.j2", problems=drafts.problems(store(request).load(name)),
                  checked=True)


def _split_codes(text: str) -> list[str]:
    return [c.strip() for c in re.split(r"[,;\n]+", text) if c.strip()]


@router.post("/{name}/concept-sets")
async def save_concept_set(request: Request, name: str) -> Response:
    safe_name(name)
    f = Fields(await read_form(request))
    set_name = f.name("set_name")
    entry: dict[str, Any] = {"include": _split_codes(f.text("include"))}
    if f.text("exclude"):
        entry["exclude"] = _split_codes(f.text("exclude"))
    if f.text("description"):
        entry["description"] = f.text("description")
    f.done()
    _check_concept_set(set_name, entry)
    s = store(request)
    data = s.load(name)
    data.setdefault("concept_sets", {})[set_name] = entry
    s.save(name, data)
    return back(name, "concept-sets")


def _check_concept_set(name: str, entry: dict[str, Any]) -> None:
    from pydantic import ValidationError

    from follicle.vocab.conceptset import ConceptSet

    try:
        ConceptSet.model_validate(entry)
    except ValidationError as exc:
        raise InputError(f"concept set {name}", problems=[
            f"{'.'.join(map(str, e['loc'])) or 'codes'}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()]) from None


def _delete(request: Request, name: str, section: str, key: str) -> Response:
    safe_name(name)
    safe_name(key)
    s = store(request)
    data = s.load(name)
    (data.get(section) or {}).pop(key, None)
    s.save(name, data)
    return back(name, section.replace("_", "-"))


@router.post("/{name}/concept-sets/{key}/delete")
def delete_concept_set(request: Request, name: str, key: str) -> Response:
    return _delete(request, name, "concept_sets", key)


@router.post("/{name}/outcomes")
async def save_outcome(request: Request, name: str) -> Response:
    safe_name(name)
    f = Fields(await read_form(request))
    key = f.name("outcome_name")
    entry: dict[str, Any] = {"concept_set": f.name("concept_set")}
    lookback = f.int("prior_lookback_days", minimum=0)
    if lookback is not None:
        entry["prior_lookback_days"] = lookback
    f.done()
    s = store(request)
    data = s.load(name)
    data.setdefault("outcomes", {})[key] = entry
    s.save(name, data)
    return back(name, "outcomes")


@router.post("/{name}/outcomes/{key}/delete")
def delete_outcome(request: Request, name: str, key: str) -> Response:
    return _delete(request, name, "outcomes", key)


@router.post("/{name}/comparisons")
async def save_comparison(request: Request, name: str) -> Response:
    safe_name(name)
    f = Fields(await read_form(request))
    key = f.name("comparison_name")
    entry = {"target": f.name("target"), "comparator": f.name("comparator"), "outcomes": f.names("outcomes"),
             "negative_controls": f.names("negative_controls"), "overlap": f.choice("overlap", ("exclude", "first_exposure"))}
    f.done()
    s = store(request)
    data = s.load(name)
    data.setdefault("comparisons", {})[key] = entry
    s.save(name, data)
    return back(name, "comparisons")


@router.post("/{name}/comparisons/{key}/delete")
def delete_comparison(request: Request, name: str, key: str) -> Response:
    return _delete(request, name, "comparisons", key)


@router.post("/{name}/cohorts")
async def add_cohort(request: Request, name: str) -> Response:
    safe_name(name)
    f = Fields(await read_form(request))
    key, entry = f.name("cohort_name"), f.name("entry")
    f.done()
    s = store(request)
    data = s.load(name)
    cohorts = data.setdefault("cohorts", {})
    if key in cohorts:
        raise InputError(f"cohort_name: a cohort called {key!r} exists already")
    cohorts[key] = {"entry": {"concept_set": entry}}
    s.save(name, data)
    return RedirectResponse(f"/studies/{name}/cohorts/{key}", status_code=303)


@router.post("/{name}/settings")
async def save_settings(request: Request, name: str) -> Response:
    safe_name(name)
    from follicle.web.study_form import settings_from_form

    f = Fields(await read_form(request))
    s = store(request)
    data = s.load(name)
    data.update(settings_from_form(f, data))
    f.done()
    s.save(name, data)
    return back(name, "settings")


@router.post("/{name}/delete")
def delete_study(request: Request, name: str) -> Response:
    safe_name(name)
    store(request).delete(name)
    return RedirectResponse("/studies", status_code=303)


@router.post("/{name}/run")
def run_study(request: Request, name: str) -> Response:
    safe_name(name)
    data = store(request).load(name)
    spec = drafts.validated(data)
    run_id = request.app.state.runs.create(name, spec.to_yaml())
    return RedirectResponse(f"/runs/{run_id}", status_code=303)
