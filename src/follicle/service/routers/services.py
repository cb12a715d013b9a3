"""The hook endpoints: ``patient-view`` (monitoring) and ``order-sign`` / ``order-select`` (order check).

Thin: gather the prefetch, turn it into facts (:mod:`follicle.cds.fhir`), ask the engine
(:mod:`follicle.cds.engine`), render cards (:mod:`follicle.service.cards`).
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Response

from follicle.cds.engine import evaluate
from follicle.cds.facts import Concomitant
from follicle.cds.fhir import DrugOrder, ParsedRecord, parse_medication, parse_resources, resources_of
from follicle.cds.medications import medication_index
from follicle.cds.kb import default_kb
from follicle.service.cards import info_card, monitoring_cards, order_cards
from follicle.service.catalog import (
    ORDER_ID, ORDER_KEYS, ORDER_REQUIRED, PATIENT_VIEW_ID, PATIENT_VIEW_KEYS, PATIENT_VIEW_REQUIRED,
)
from follicle.service.models import CdsResponse, OperationOutcome, OrderRequest, PatientViewRequest
from follicle.service.prefetch import gather
from follicle.service.security import Client
from follicle.service.settings import CdsSettings, get_settings
from follicle.errors import InputError

router = APIRouter(tags=["services"])
_ERR: dict[int | str, dict[str, Any]] = {c: {"model": OperationOutcome} for c in (400, 401, 412, 422)}


async def get_fhir_transport() -> httpx.AsyncBaseTransport | None:
    """Transport for fetching from ``fhirServer`` (None = real network); tests override it."""
    return None


Settings = Annotated[CdsSettings, Depends(get_settings)]
Transport = Annotated[httpx.AsyncBaseTransport | None, Depends(get_fhir_transport)]


async def _record(body: PatientViewRequest | OrderRequest, keys: list[str], required: set[str],
                  settings: CdsSettings, transport: httpx.AsyncBaseTransport | None) -> ParsedRecord:
    ctx = body.context.model_dump()
    data = await gather(
        keys=keys, required=required, prefetch=body.prefetch, context=ctx, fhir_server=body.fhirServer,
        access_token=body.fhirAuthorization.access_token if body.fhirAuthorization else None,
        transport=transport, timeout=settings.fhir_timeout_seconds, allowed_servers=settings.allowed_fhir_servers,
    )
    resources = [r for k in keys for r in (data.get(k) or [])]
    for pt in (r for r in data.get("patient") or [] if r.get("resourceType") == "Patient"):
        if isinstance(pt.get("id"), str) and pt["id"] != body.context.patientId:
            raise InputError(f"prefetch.patient: Patient/{pt['id']} is not context.patientId {body.context.patientId!r}")
    record = parse_resources(resources, as_of=settings.evaluation_date(), unknown_loinc="error",
                             max_result_age_days=settings.max_result_age_days)
    if record.facts.patient_id is not None and record.facts.patient_id != body.context.patientId:
        raise InputError(f"prefetch.patient: Patient/{record.facts.patient_id} is not context.patientId {body.context.patientId!r}")
    if data.get("medications") is None:
        record.facts.concomitant = None  # not fetched: unknown, not "none"
    return record


def _send(resp: CdsResponse) -> Response:
    """Serialise once (the model is already validated; FastAPI would validate it again)."""
    return Response(resp.model_dump_json(exclude_none=True), media_type="application/json")


def _is_jaki(order: DrugOrder | None) -> bool:
    kb = default_kb()
    return order is not None and "jak_inhibitor" in kb.drug(order.drug).classes  # type: ignore[union-attr]


@router.post(f"/cds-services/{PATIENT_VIEW_ID}", response_model=CdsResponse, response_model_exclude_none=True, responses=_ERR)
async def patient_view(body: PatientViewRequest, client: Client, settings: Settings, transport: Transport) -> Response:
    """Monitoring due or overdue, and abnormal labs, for a patient on a JAK inhibitor."""
    record = await _record(body, PATIENT_VIEW_KEYS, PATIENT_VIEW_REQUIRED, settings, transport)
    kb = default_kb()
    cards = []
    for med in record.medications:
        if med.status != "active" or med.topical or not _is_jaki(med):
            continue
        label = kb.label(med.drug, settings.region)
        if label is None or not label.encoded:
            why = label.reason if label is not None else "no label is encoded for it"
            cards.append(info_card(f"{med.drug.capitalize()}: {settings.region} label not encoded; monitoring not checked",
                                   [f"MedicationRequest/{med.resource_id} names {med.drug}. {why}"]))
            continue
        if med.authored_on is None:
            cards.append(info_card(f"{med.drug.capitalize()}: start date unknown, monitoring schedule not computed",
                                   [f"MedicationRequest/{med.resource_id} has no authoredOn date."]))
            continue
        d = evaluate(record.facts, med.drug, region=settings.region, mode="on_treatment", start=med.authored_on, compare=False)
        cards += monitoring_cards(d, body.context.patientId)
    return _send(CdsResponse(cards=cards))


@router.post(f"/cds-services/{ORDER_ID}", response_model=CdsResponse, response_model_exclude_none=True, responses=_ERR)
async def order_check(body: OrderRequest, client: Client, settings: Settings, transport: Transport) -> Response:
    """Contraindications, dose and missing screening for a draft JAK inhibitor order."""
    draft_resources = resources_of(body.context.draftOrders, where="context.draftOrders")
    drafts = [r for r in draft_resources if r.get("resourceType") == "MedicationRequest"]
    if body.hook == "order-select":
        chosen = set(body.context.selections or [])
        drafts = [r for r in drafts if f"MedicationRequest/{r.get('id')}" in chosen]
    medications = medication_index(draft_resources)  # a draft may name its drug by medicationReference
    orders = [(r, parse_medication(r, medications=medications)) for r in drafts]
    jaki = [(r, o) for r, o in orders if _is_jaki(o)]
    if not jaki:
        return _send(CdsResponse(cards=[]))
    record = await _record(body, ORDER_KEYS, ORDER_REQUIRED, settings, transport)
    kb = default_kb()
    cards = []
    if record.aa_diagnosis is False:
        cards.append(info_card("No alopecia areata diagnosis found in the conditions; these checks are for AA",
                               ["No Condition coded ICD-10-CM L63.x or SNOMED CT 68225006 was found. Descendant SNOMED "
                                "codes (totalis, universalis) are not held, so a coded subtype may have been missed."]))
    for raw, order in jaki:
        assert order is not None
        if order.topical:
            cards.append(info_card(f"Topical {order.drug}: not systemic JAK inhibitor exposure; not checked",
                                   ["The ruxolitinib ingredient also covers topical cream (Opzelura); this order reads as topical."]))
            continue
        label = kb.label(order.drug, settings.region)
        if label is None or not label.encoded:
            why = label.reason if label is not None else "no label is encoded for it"
            cards.append(info_card(f"{order.drug.capitalize()}: {settings.region} label not encoded; nothing was checked",
                                   [why, f"Drugs with an encoded {settings.region} label: {', '.join(kb.encoded_drugs(settings.region))}."]))
            continue
        others = [o for r, o in orders if o is not None and r is not raw and not o.topical]
        facts = record.facts.model_copy()
        if others:
            drafts_as_concomitant = [
                Concomitant(name=o.drug, classes=kb.drug(o.drug).classes, matched_by=o.matched_by,  # type: ignore[union-attr, arg-type]
                            source_id=f"MedicationRequest/{o.resource_id}")
                for o in others
            ]
            # the other drafts count; a medication list the record did not give stays open (never "none")
            rest = facts.concomitant if facts.concomitant is not None else [
                Concomitant(name="medication list not available", matched_by="unidentified", source_id="prefetch.medications")]
            facts.concomitant = list(rest) + drafts_as_concomitant
        d = evaluate(facts, order.drug, region=settings.region, mode="start")
        notes = list(record.warnings) + [f"From the record: {n}" for n in record.notes]
        if any(m.drug == order.drug and m.status in ("active", "on-hold") and not m.topical for m in record.medications):
            notes.append(f"The patient already has an active {order.drug} order (a renewal?); the checks before starting are shown anyway.")
        if order.matched_by == "name":
            notes.append(f"The order was matched to {order.drug} by name ({order.text!r}); no RxNorm ingredient code for it is held.")
        cards += order_cards(d, body.context.patientId, order.dose_mg, notes)
    return _send(CdsResponse(cards=cards))
