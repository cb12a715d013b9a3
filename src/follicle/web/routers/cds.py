"""The Decision support page: a patient form (and optionally a FHIR record) giving the cards of the
CDS Hooks service, from the same engine (:mod:`follicle.cds.engine`) and card builder
(:mod:`follicle.service.cards`)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from follicle.errors import InputError
from follicle.web.security import read_form
from follicle.web.templating import is_htmx, render

router = APIRouter(prefix="/cds")
MAX_BUNDLE = 1_000_000


def _jaki_drugs() -> list[dict[str, Any]]:
    from follicle.cds.kb import default_kb

    kb = default_kb()
    return [{"name": d.name, "eu": d.name in kb.encoded_drugs("EU"), "us": d.name in kb.encoded_drugs("US")}
            for d in kb.drugs if "jak_inhibitor" in d.classes]


def _page(request: Request, **extra: Any) -> HTMLResponse:
    from follicle.cds.form import FIELDS
    from follicle.cds.kb import DISCLAIMER, default_kb

    ctx = {"fields": FIELDS, "drugs": _jaki_drugs(), "catalogue": sorted(d.name for d in default_kb().drugs),
           "today": dt.date.today().isoformat(), "disclaimer": DISCLAIMER, "cards": None, "error": None,
           "problems": [], "values": {}, "decision": None}
    return render(request, "cds.html.j2", **(ctx | extra))


@router.get("", response_class=HTMLResponse)
def cds_page(request: Request) -> HTMLResponse:
    return _page(request)


def _date(text: Any, name: str, default: dt.date | None) -> dt.date | None:
    text = (text or "").strip() if isinstance(text, str) else ""
    if not text:
        return default
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{name}: expected a date as YYYY-MM-DD, got {text!r}") from None


async def _bundle(upload: Any) -> Any:
    if upload is None or isinstance(upload, str) or not upload.filename:
        return None
    raw = await upload.read(MAX_BUNDLE + 1)
    if len(raw) > MAX_BUNDLE:
        raise InputError(f"{upload.filename}: a FHIR record over {MAX_BUNDLE:,} bytes is refused")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{upload.filename}: not valid UTF-8 JSON ({exc})") from None


def evaluate_form(fields: dict[str, Any], bundle: Any) -> dict[str, Any]:
    """Form -> facts -> decision -> CDS Hooks cards (what the service would answer for this patient)."""
    from follicle.cds.engine import LabelNotEncoded, evaluate
    from follicle.cds.fhir import parse_bundle
    from follicle.cds.form import facts_from_form
    from follicle.service.cards import info_card, monitoring_cards, order_cards

    drug = str(fields.get("drug") or "").strip()
    region = str(fields.get("region") or "EU").strip().upper()
    mode = str(fields.get("mode") or "start").strip()
    if region not in ("EU", "US"):
        raise InputError(f"region: expected EU or US, got {region!r}")
    if mode not in ("start", "on_treatment"):
        raise InputError(f"mode: expected start or on_treatment, got {mode!r}")
    as_of = _date(fields.get("as_of"), "as_of", dt.date.today())
    assert as_of is not None
    start = _date(fields.get("start"), "start", None)
    dose_text = str(fields.get("dose_mg") or "").strip()
    try:
        ordered = float(dose_text) if dose_text else None
    except ValueError:
        raise InputError(f"dose_mg: expected a number of mg, got {dose_text!r}") from None
    patient_id = str(fields.get("patient_id") or "").strip()[:64] or "form"
    notes: list[str] = []
    base = None
    if bundle is not None:
        record = parse_bundle(bundle, as_of=as_of, unknown_loinc="warn")
        base = record.facts
        notes = list(record.warnings) + [f"From the record: {n}" for n in record.notes]
    read = facts_from_form(fields, as_of=as_of, base=base)
    try:
        if mode == "on_treatment":
            d = evaluate(read.facts, drug, region=region, mode="on_treatment", start=start or as_of, compare=False)  # type: ignore[arg-type]
        else:
            d = evaluate(read.facts, drug, region=region, mode="start")  # type: ignore[arg-type]
    except LabelNotEncoded as exc:
        card = info_card(f"{drug.capitalize()}: {region} label not encoded; nothing was checked", [exc.render()])
        return {"cards": [card], "decision": None, "assumed": read.assumed}
    d.assumed = read.assumed + d.assumed
    cards = (monitoring_cards(d, patient_id) if mode == "on_treatment"
             else order_cards(d, patient_id, ordered, notes))
    return {"cards": cards, "decision": d, "assumed": d.assumed}


@router.post("", response_class=HTMLResponse)
async def cds_check(request: Request) -> HTMLResponse:
    form = await read_form(request)
    fields: dict[str, Any] = {}
    for key in set(form.keys()):
        values = form.getlist(key)
        fields[key] = values if len(values) > 1 or key in ("vte_risk_factors", "concomitant") else values[0]
    try:
        out = evaluate_form(fields, await _bundle(form.get("bundle")))
    except InputError as exc:
        ctx = {"error": str(exc), "problems": exc.problems, "values": fields}
        if is_htmx(request):
            return render(request, "fragments/cds_cards.html.j2", status_code=400, cards=None, decision=None, **ctx)
        return _page(request, status_code=400, **ctx)  # type: ignore[arg-type]
    from follicle.web.markdown import to_html

    cards = [{"summary": c.summary, "indicator": c.indicator, "detail": to_html(c.detail or ""),
              "source": c.source.label, "url": str(c.source.url) if c.source.url else None,
              "suggestions": [s.label for s in (c.suggestions or [])]} for c in out["cards"]]
    ctx = {"cards": cards, "decision": out["decision"], "error": None, "problems": [], "values": fields}
    if is_htmx(request):
        return render(request, "fragments/cds_cards.html.j2", **ctx)
    return _page(request, **ctx)
