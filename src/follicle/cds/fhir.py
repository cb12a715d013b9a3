"""FHIR R4 resources (a Bundle, or CDS Hooks prefetch) -> :class:`PatientFacts`.

LOINC codes are those of clinical.md §5 (status per code in :data:`LOINC`). Decisions on bad
input, documented in docs/cds-hooks.md:

* a numeric lab (``valueQuantity``) **without a unit** is an error naming the Observation: a
  guessed unit could move a count threshold by a factor of 1000;
* a unit that cannot be converted for the analyte is an error (e.g. haemoglobin in mmol/L: the
  reference gives no factor);
* an Observation whose LOINC is **not in the table** is an error with ``unknown_loinc="error"``
  (the service: it asked for these codes only) and is skipped with a warning with
  ``unknown_loinc="warn"`` (the CLI default: a whole-record export holds many other labs);
* a Bundle without a Patient is an error.

Qualitative results (HBsAg, HCV antibody, IGRA, hCG) are read from the result text
(``valueString``, ``valueCodeableConcept.text`` / ``coding.display``): the reference holds no
answer codes, so no code is assumed. Smoking status (LOINC 72166-2) is read from its SNOMED answer
or text. Conditions (ICD-10-CM, and the SNOMED CT codes that could be verified) give TB, hepatitis,
serious infection, malignancy, VTE, pregnancy, ESRD and smoking facts (:mod:`follicle.cds.conditions`).
Active MedicationRequests and MedicationStatements give the concomitant drugs and their classes.
When the record gives a fact twice, the more severe value wins.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from follicle.cds.conditions import SMOKING_LOINC, condition_facts, smoking_value, worse
from follicle.cds.facts import Concomitant, HistoryEntry, LabValue, PatientFacts
from follicle.cds.kb import KnowledgeBase, default_kb
from follicle.cds.rxnorm import match_medication
from follicle.errors import InputError

LOINC_SYSTEM = "http://loinc.org"
ICD10CM_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED_SYSTEM = "http://snomed.info/sct"
AA_SNOMED = "68225006"

#: LOINC -> (analyte, status in clinical.md §5)
LOINC: dict[str, tuple[str, str]] = {
    **{c: ("egfr", "V") for c in ("33914-3", "48642-3", "48643-1", "62238-1", "88294-4", "88293-6",
                                  "50044-7", "70969-1", "50210-4", "98979-8", "98980-6")},
    "731-0": ("lymphocytes", "V"), "26474-7": ("lymphocytes", "P"),
    "751-8": ("neutrophils", "V"), "26499-4": ("neutrophils", "V"), "753-4": ("neutrophils", "V"),
    "718-7": ("haemoglobin", "V"),
    "777-3": ("platelets", "V"), "26515-7": ("platelets", "V"),
    "1742-6": ("liver_enzymes", "V"), "1743-4": ("liver_enzymes", "V"), "76625-3": ("liver_enzymes", "V"),
    "1920-8": ("liver_enzymes", "P"),
    "13457-7": ("lipids", "P"), "18262-6": ("lipids", "V"), "96259-7": ("lipids", "V"),
    "2106-3": ("pregnancy_test", "V"), "2118-8": ("pregnancy_test", "V"),
    "5196-1": ("hbsag", "V"), "5195-3": ("hbsag", "V"),
    "13955-0": ("hcv_ab", "V"), "16128-1": ("hcv_ab", "V"),
    "71773-6": ("tb_igra", "V"),
    SMOKING_LOINC: ("smoking", "V"),
    # known but not used by any rule (IGRA controls, T-SPOT panel, CBC panel)
    "71772-8": ("unused", "V"), "71774-4": ("unused", "V"), "74281-7": ("unused", "V"), "58410-2": ("unused", "V"),
}
NUMERIC = {"egfr", "lymphocytes", "neutrophils", "haemoglobin", "platelets", "liver_enzymes", "lipids"}
#: analytes used in the prefetch query of the service
PREFETCH_LOINC = sorted(c for c, (a, _) in LOINC.items() if a != "unused")

_POS = re.compile(r"^(positive|detected|reactive|pos)\b")
_NEG = re.compile(r"^(negative|not detected|non-?reactive|neg)\b")


class DrugOrder(BaseModel):
    """A MedicationRequest mapped to a catalogue ingredient."""

    resource_id: str | None
    drug: str
    matched_by: str
    text: str
    topical: bool
    status: str | None
    authored_on: date | None
    dose_mg: float | None


class ParsedRecord(BaseModel):
    """Facts plus what else the resources said: medication orders, AA diagnosis, warnings.

    ``aa_diagnosis`` is True when a Condition codes alopecia areata (ICD-10-CM L63.x, clinical.md
    §1.1; SNOMED 68225006, §1.2), False when Conditions were given and none does (descendant SNOMED
    codes are not held, so False means "not found", not "absent"), None when no Condition was given.
    """

    facts: PatientFacts
    medications: list[DrugOrder]
    warnings: list[str]
    aa_diagnosis: bool | None = None
    notes: list[str] = []


def _date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date() if "T" in value else date.fromisoformat(value[:10])
    except ValueError:
        return None


def _loinc(code: Any) -> list[str]:
    if not isinstance(code, dict):
        return []
    return [c["code"] for c in code.get("coding") or [] if isinstance(c, dict) and c.get("system") == LOINC_SYSTEM and isinstance(c.get("code"), str)]


def _qualitative(obs: dict) -> str | None:
    texts: list[str] = []
    if isinstance(obs.get("valueString"), str):
        texts.append(obs["valueString"])
    vcc = obs.get("valueCodeableConcept")
    if isinstance(vcc, dict):
        if isinstance(vcc.get("text"), str):
            texts.append(vcc["text"])
        texts += [c["display"] for c in vcc.get("coding") or [] if isinstance(c, dict) and isinstance(c.get("display"), str)]
    for t in texts:
        t = t.strip().lower()
        if _POS.match(t):
            return "positive"
        if _NEG.match(t):
            return "negative"
    return None


def _ref(res: dict) -> str:
    return f"{res.get('resourceType')}/{res.get('id', '?')}"


def resources_of(bundle: Any, *, where: str = "bundle") -> list[dict]:
    """The resources in a Bundle (or a single resource) after checking their shape."""
    if not isinstance(bundle, dict) or not isinstance(bundle.get("resourceType"), str):
        raise InputError(f"{where}: expected a FHIR resource (a JSON object with resourceType)")
    if bundle["resourceType"] != "Bundle":
        return [bundle]
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise InputError(f"{where}.entry: expected a list, got {type(entries).__name__}")
    out = []
    for i, e in enumerate(entries):
        res = e.get("resource") if isinstance(e, dict) else None
        if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
            raise InputError(f"{where}.entry[{i}].resource: expected a FHIR resource with resourceType")
        out.append(res)
    return out


def _dose_mg(mr: dict) -> float | None:
    for di in mr.get("dosageInstruction") or []:
        for dr in (di.get("doseAndRate") or []) if isinstance(di, dict) else []:
            q = dr.get("doseQuantity") if isinstance(dr, dict) else None
            if isinstance(q, dict) and isinstance(q.get("value"), (int, float)) and not isinstance(q.get("value"), bool):
                if str(q.get("unit") or q.get("code") or "").lower() == "mg":
                    return float(q["value"])
    return None


def parse_medication(mr: dict, kb: KnowledgeBase | None = None) -> DrugOrder | None:
    """A MedicationRequest mapped to its ingredient, or None if it names no catalogue drug."""
    concept = mr.get("medicationCodeableConcept")
    if not isinstance(concept, dict):
        return None
    m = match_medication(concept, kb)
    if m is None:
        return None
    return DrugOrder(
        resource_id=mr.get("id") if isinstance(mr.get("id"), str) else None, drug=m.drug.name,
        matched_by=m.matched_by, text=m.text, topical=m.topical,
        status=mr.get("status") if isinstance(mr.get("status"), str) else None,
        authored_on=_date(mr.get("authoredOn")), dose_mg=_dose_mg(mr),
    )


def parse_resources(
    resources: list[dict],
    *,
    as_of: date,
    unknown_loinc: Literal["error", "warn"] = "warn",
    kb: KnowledgeBase | None = None,
) -> ParsedRecord:
    """Turn FHIR resources into facts; raise InputError listing every problem at once."""
    kb = kb or default_kb()
    problems: list[str] = []
    warnings: list[str] = []
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    if not patients:
        raise InputError("bundle: no Patient resource; the checks need the patient's age and sex")
    if len({p.get("id") for p in patients}) > 1:
        raise InputError("bundle: more than one Patient resource; send one patient's record")
    pt = patients[0]
    fields: dict[str, Any] = {"as_of": as_of, "patient_id": pt.get("id") if isinstance(pt.get("id"), str) else None}
    birth = pt.get("birthDate")
    if birth is not None:
        bd = _date(birth)
        if bd is None:
            problems.append(f"{_ref(pt)}.birthDate: not a date: {birth!r}")
        elif bd > as_of:
            problems.append(f"{_ref(pt)}.birthDate: {bd} is after the evaluation date {as_of}")
        else:
            fields["age_years"] = as_of.year - bd.year - ((as_of.month, as_of.day) < (bd.month, bd.day))
    if pt.get("gender") is not None:
        if pt["gender"] in ("female", "male", "other", "unknown"):
            fields["sex"] = pt["gender"]
        else:
            problems.append(f"{_ref(pt)}.gender: expected female, male, other or unknown, got {pt['gender']!r}")

    latest: dict[str, tuple[date | None, Any, str]] = {}
    history: list[HistoryEntry] = []
    for obs in (r for r in resources if r.get("resourceType") == "Observation"):
        if obs.get("status") in ("entered-in-error", "cancelled"):
            continue
        codes = _loinc(obs.get("code"))
        known = [c for c in codes if c in LOINC]
        if not known:
            msg = f"{_ref(obs)}: LOINC {', '.join(codes) or '(none)'} is not one the checks use"
            (problems if unknown_loinc == "error" else warnings).append(msg)
            continue
        analyte = LOINC[known[0]][0]
        if analyte == "unused":
            continue
        when = _date(obs.get("effectiveDateTime")) or _date(obs.get("issued"))
        if analyte in NUMERIC:
            q = obs.get("valueQuantity")
            if (not isinstance(q, dict) or isinstance(q.get("value"), bool) or not isinstance(q.get("value"), (int, float))
                    or not math.isfinite(q["value"])):
                problems.append(f"{_ref(obs)} (LOINC {known[0]}): valueQuantity.value must be a finite number")
                continue
            units = [u for u in (q.get("code"), q.get("unit")) if isinstance(u, str) and u.strip()]
            if not units:
                problems.append(f"{_ref(obs)} (LOINC {known[0]}): valueQuantity has no unit; a count or concentration cannot be read without one")
                continue
            value, err = None, ""
            for u in units:
                try:
                    value = LabValue.of(analyte, float(q["value"]), u, when, _ref(obs))
                    break
                except ValueError as exc:
                    err = str(exc)
            if value is None:
                problems.append(f"{_ref(obs)} (LOINC {known[0]}): {err}")
                continue
            if when is not None:
                history.append(HistoryEntry(analyte=analyte, date=when, value=value.value, unit=value.unit))  # type: ignore[arg-type]
        else:
            value = smoking_value(obs) if analyte == "smoking" else _qualitative(obs)
            if value is None:
                warnings.append(f"{_ref(obs)} (LOINC {known[0]}): result not read as positive or negative; left unknown")
                continue
        prev = latest.get(analyte)
        if prev is None or (when is not None and (prev[0] is None or when >= prev[0])):
            latest[analyte] = (when, value, _ref(obs))
        if LOINC[known[0]][1] == "P":
            warnings.append(f"{_ref(obs)}: LOINC {known[0]} is only partially verified in the reference")

    for analyte in NUMERIC:
        if analyte in latest:
            fields[analyte] = latest[analyte][1]
    qual = {a: latest[a][1] for a in ("pregnancy_test", "hbsag", "hcv_ab", "tb_igra") if a in latest}
    if "pregnancy_test" in qual:
        fields["pregnant"] = qual["pregnancy_test"] == "positive"
    if "hbsag" in qual:
        fields["hbv_status"] = "hbsag_positive" if qual["hbsag"] == "positive" else "negative"
    if "hcv_ab" in qual:
        fields["hcv_status"] = qual["hcv_ab"]
    if "tb_igra" in qual:
        fields["tb_status"] = qual["tb_igra"]
    if "smoking" in latest:
        fields["smoking"] = latest["smoking"][1]

    meds: list[DrugOrder] = []
    statements: list[DrugOrder] = []
    for mr in (r for r in resources if r.get("resourceType") in ("MedicationRequest", "MedicationStatement")):
        order = parse_medication(mr, kb)
        if order is not None:
            (meds if mr["resourceType"] == "MedicationRequest" else statements).append(order)
    if any(r.get("resourceType") in ("MedicationRequest", "MedicationStatement") for r in resources):
        active = [m for m in meds if m.status in ("active", "on-hold") and not m.topical]
        active += [m for m in statements if m.status in ("active", "intended", "on-hold") and not m.topical]
        fields["concomitant"] = [
            Concomitant(name=m.drug, classes=kb.drug(m.drug).classes, matched_by=m.matched_by,  # type: ignore[union-attr, arg-type]
                        source_id=m.resource_id)
            for m in active
        ]
        warnings += [f"MedicationRequest/{m.resource_id}: {m.drug} matched by name in {m.text!r} (no RxNorm ingredient code held)" for m in meds if m.matched_by == "name"]
    for imm in (r for r in resources if r.get("resourceType") == "Immunization"):
        vc = imm.get("vaccineCode")
        text = " ".join(_texts_of(vc)).lower()
        if imm.get("status") == "completed" and re.search(r"\b(zoster|shingrix)\b", text):
            fields["zoster_vaccinated"] = True
    conditions = [r for r in resources if r.get("resourceType") == "Condition"]
    aa = None
    if conditions:
        aa = any(
            isinstance(c, dict) and (
                (c.get("system") == ICD10CM_SYSTEM and isinstance(c.get("code"), str) and c["code"].upper().startswith("L63"))
                or (c.get("system") == SNOMED_SYSTEM and c.get("code") == AA_SNOMED))
            for cond in conditions for c in ((cond.get("code") or {}).get("coding") or [] if isinstance(cond.get("code"), dict) else [])
        )
    cond_facts, notes = condition_facts([c for c in conditions if isinstance(c, dict)])
    for k, v in cond_facts.items():
        if k == "vte_risk_factors":
            fields[k] = sorted(set(fields.get(k) or []) | set(v))
        else:
            fields[k] = worse(k, fields.get(k), v)
    fields["history"] = history
    if problems:
        raise InputError("FHIR input cannot be used as given", problems=problems)
    try:
        facts = PatientFacts(**fields)
    except ValidationError as exc:
        raise InputError("FHIR input gives facts out of range", problems=[
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]) from None
    return ParsedRecord(facts=facts, medications=meds, warnings=warnings, aa_diagnosis=aa, notes=notes)


def _texts_of(concept: Any) -> list[str]:
    if not isinstance(concept, dict):
        return []
    out = [concept["text"]] if isinstance(concept.get("text"), str) else []
    return out + [c["display"] for c in concept.get("coding") or [] if isinstance(c, dict) and isinstance(c.get("display"), str)]


def parse_bundle(bundle: Any, *, as_of: date, unknown_loinc: Literal["error", "warn"] = "warn") -> ParsedRecord:
    """Facts from a FHIR R4 Bundle (``resourceType: Bundle``)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InputError("bundle: expected a FHIR R4 Bundle (resourceType 'Bundle')")
    return parse_resources(resources_of(bundle), as_of=as_of, unknown_loinc=unknown_loinc)
