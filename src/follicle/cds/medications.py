"""FHIR MedicationRequest / MedicationStatement / Immunization -> the drugs the rules test.

* The medication is read from ``medicationCodeableConcept`` or from ``medicationReference``
  (a contained Medication ``#id``, a Medication in the record, or the reference's ``display``).
  The Medication's ``form`` and the dosage ``route`` count for the topical check (Opzelura cream,
  tacrolimus ointment are not systemic exposure).
* Current: requests active / on-hold, statements active / intended / on-hold, and for both
  ``unknown`` (the source system does not know whether it is current: the safer reading is that
  it may be).
* A current medication that names no drug that could be read (a code only, not in the catalogue)
  is kept as **unidentified**: it may belong to any class, so a class rule that does not fire on
  the identified drugs is left open ("cannot decide") rather than read as "none".
* Immunization: zoster vaccination by name; a completed **live vaccination** (catalogue names and
  the CVX codes held in ``drugs.yaml``) within the recency window counts as a current live vaccine
  ("during, or immediately prior to" therapy); an undated one is taken as recent, the safer reading.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

from follicle.cds.facts import Concomitant
from follicle.cds.kb import KnowledgeBase, default_kb
from follicle.cds.rxnorm import is_topical, match_medication

MEDICATION_KINDS = ("MedicationRequest", "MedicationStatement")
CURRENT_STATUS = {"MedicationRequest": {"active", "on-hold", "unknown"},
                  "MedicationStatement": {"active", "intended", "on-hold", "unknown"}}
CVX = "http://hl7.org/fhir/sid/cvx"


class DrugOrder(BaseModel):
    """A MedicationRequest (or MedicationStatement) mapped to a catalogue ingredient."""

    resource_id: str | None
    drug: str
    matched_by: str
    text: str
    topical: bool
    status: str | None
    authored_on: date | None
    dose_mg: float | None


def listed(value: Any) -> list:
    """*value* if it is a list, else an empty list (malformed input is not iterated)."""
    return value if isinstance(value, list) else []


def as_date(value: Any) -> date | None:
    """A FHIR date or dateTime as a date (None if absent or unreadable)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date() if "T" in value else date.fromisoformat(value[:10])
    except ValueError:
        return None


def medication_index(resources: list[dict]) -> dict[str, dict]:
    """Medication resources of the record by ``Medication/<id>``."""
    return {f"Medication/{r['id']}": r for r in resources
            if r.get("resourceType") == "Medication" and isinstance(r.get("id"), str)}


def _texts(concept: Any) -> list[str]:
    if not isinstance(concept, dict):
        return []
    out = [concept["text"]] if isinstance(concept.get("text"), str) else []
    return out + [c["display"] for c in listed(concept.get("coding")) if isinstance(c, dict) and isinstance(c.get("display"), str)]


def _form_texts(res: dict, med: dict | None) -> list[str]:
    """Dose form (Medication.form) and route (dosage) texts, for the topical check."""
    out = _texts(med.get("form")) if med else []
    for d in listed(res.get("dosageInstruction")) + listed(res.get("dosage")):
        if isinstance(d, dict):
            out += _texts(d.get("route"))
    return out


def _referenced(res: dict, medications: dict[str, dict]) -> tuple[dict | None, str | None]:
    """The Medication a ``medicationReference`` points to (contained or in the record), and its display."""
    ref = res.get("medicationReference")
    if not isinstance(ref, dict):
        return None, None
    target, display = ref.get("reference"), ref.get("display") if isinstance(ref.get("display"), str) else None
    if not isinstance(target, str):
        return None, display
    if target.startswith("#"):
        med = next((c for c in listed(res.get("contained")) if isinstance(c, dict) and c.get("id") == target[1:]), None)
    else:
        m = re.search(r"Medication/([^/]+)$", target)
        med = medications.get(f"Medication/{m.group(1)}") if m else None
    return (med if isinstance(med, dict) else None), display


def medication_concept(res: dict, medications: dict[str, dict] | None = None) -> tuple[dict | None, list[str]]:
    """The CodeableConcept naming the medication of *res*, and its dose-form / route texts."""
    cc = res.get("medicationCodeableConcept")
    med, display = _referenced(res, medications or {})
    forms = _form_texts(res, med)
    if isinstance(cc, dict):
        return cc, forms
    if med is not None and isinstance(med.get("code"), dict):
        return med["code"], forms
    return ({"text": display} if display else None), forms


def _dose_mg(mr: dict) -> float | None:
    for di in listed(mr.get("dosageInstruction")):
        for dr in listed(di.get("doseAndRate")) if isinstance(di, dict) else []:
            q = dr.get("doseQuantity") if isinstance(dr, dict) else None
            if isinstance(q, dict) and isinstance(q.get("value"), (int, float)) and not isinstance(q.get("value"), bool):
                if str(q.get("unit") or q.get("code") or "").lower() == "mg":
                    return float(q["value"])
    return None


def parse_medication(mr: dict, kb: KnowledgeBase | None = None, medications: dict[str, dict] | None = None) -> DrugOrder | None:
    """A MedicationRequest / MedicationStatement mapped to its ingredient, or None if it names no catalogue drug."""
    concept, forms = medication_concept(mr, medications)
    if concept is None:
        return None
    m = match_medication(concept, kb)
    if m is None:
        return None
    topical = m.topical or is_topical(m.drug, " | ".join(forms).lower())
    return DrugOrder(
        resource_id=mr.get("id") if isinstance(mr.get("id"), str) else None, drug=m.drug.name,
        matched_by=m.matched_by, text=m.text, topical=topical,
        status=mr.get("status") if isinstance(mr.get("status"), str) else None,
        authored_on=as_date(mr.get("authoredOn")), dose_mg=_dose_mg(mr),
    )


def _ref(res: dict) -> str:
    return f"{res.get('resourceType')}/{res.get('id', '?')}"


def read_medications(resources: list[dict], kb: KnowledgeBase | None = None) -> tuple[list[DrugOrder], list[Concomitant] | None, list[str]]:
    """Medication requests (all, for the service), the current concomitant drugs (None when the record
    holds no medication resource: not known), and warnings."""
    kb = kb or default_kb()
    medications = medication_index(resources)
    requests: list[DrugOrder] = []
    current: list[Concomitant] = []
    warnings: list[str] = []
    held = [r for r in resources if r.get("resourceType") in MEDICATION_KINDS]
    for res in held:
        order = parse_medication(res, kb, medications)
        if res["resourceType"] == "MedicationRequest" and order is not None:
            requests.append(order)
        status = res.get("status") if isinstance(res.get("status"), str) else None
        if status not in CURRENT_STATUS[res["resourceType"]]:
            continue
        if status == "unknown":
            warnings.append(f"{_ref(res)}: status 'unknown' read as possibly current")
        if order is not None:
            if not order.topical:
                current.append(Concomitant(name=order.drug, classes=kb.drug(order.drug).classes,  # type: ignore[union-attr]
                                           matched_by=order.matched_by, source_id=_ref(res)))  # type: ignore[arg-type]
            if order.matched_by == "name":
                warnings.append(f"{_ref(res)}: {order.drug} matched by name in {order.text!r} (no RxNorm ingredient code held)")
            continue
        concept, _ = medication_concept(res, medications)
        if not any(t.strip() for t in _texts(concept)):
            current.append(Concomitant(name="unidentified medication", matched_by="unidentified", source_id=_ref(res)))
            warnings.append(f"{_ref(res)}: the medication could not be identified (no name, and no code held in the "
                            "drug catalogue); the interaction and combination checks are left open")
    return requests, (current if held else None), warnings


def read_immunizations(resources: list[dict], *, as_of: date, window_days: int | None,
                       kb: KnowledgeBase | None = None) -> tuple[bool | None, list[Concomitant], list[str]]:
    """Zoster vaccination (True if recorded; never False from absence), current live vaccinations, warnings."""
    kb = kb or default_kb()
    zoster: bool | None = None
    live: list[Concomitant] = []
    warnings: list[str] = []
    for imm in (r for r in resources if r.get("resourceType") == "Immunization"):
        if not isinstance(imm.get("status"), str) or imm["status"] != "completed":
            continue
        vc = imm.get("vaccineCode")
        text = " ".join(_texts(vc)).lower()
        if re.search(r"\b(zoster|shingrix)\b", text):
            zoster = True
        drug = _live_vaccine(vc, kb)
        if drug is None:
            continue
        when = as_date(imm.get("occurrenceDateTime"))
        if when is not None and when > as_of:
            warnings.append(f"{_ref(imm)}: live vaccination dated {when}, after the evaluation date {as_of}; not read")
            continue
        if when is not None and window_days is not None and (as_of - when).days > window_days:
            continue
        if when is None:
            warnings.append(f"{_ref(imm)}: live vaccination without a date; taken as recent")
        live.append(Concomitant(name=drug.name, classes=drug.classes, matched_by="name", source_id=_ref(imm)))
    return zoster, live, warnings


def _live_vaccine(vaccine_code: Any, kb: KnowledgeBase):  # type: ignore[no-untyped-def]
    if not isinstance(vaccine_code, dict):
        return None
    for c in listed(vaccine_code.get("coding")):
        if isinstance(c, dict) and c.get("system") == CVX and isinstance(c.get("code"), str):
            for d in kb.drugs:
                if c["code"].strip() in d.cvx:
                    return d
    m = match_medication(vaccine_code, kb)
    return m.drug if m is not None and "live_vaccine" in m.drug.classes else None
