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

* a resource that names another patient (``subject`` / ``patient``) than the record's Patient is an
  error: another patient's normal results must never stand in.

Which result is **current** (the value the rules test): the newest one dated on or before the
evaluation date and no older than ``max_result_age_days`` (default :data:`MAX_RESULT_AGE_DAYS`).
Older, undated and later results are not taken as current (the fact stays unknown, so a safety
rule that needs it answers "cannot decide") and each is named in the warnings; every dated result
stays in the history for the monitoring schedule. The date is ``effectiveDateTime``,
``effectivePeriod`` (end, else start), ``effectiveInstant``, else ``issued``. A value with a
``comparator`` (``<0.5``) is kept as a bound. Results inside a panel (``component``) are read like
separate Observations. A result not yet available (status registered, or a ``dataAbsentReason``
without a value) is skipped with a warning.

Qualitative results (HBsAg, HCV antibody, IGRA, hCG) are read from the result text
(``valueString``, ``valueCodeableConcept.text`` / ``coding.display``): the reference holds no
answer codes, so no code is assumed. Smoking status (LOINC 72166-2) is read from its SNOMED answer
or text. Conditions (ICD-10-CM, and the SNOMED CT codes that could be verified) give TB, hepatitis,
serious infection, malignancy, VTE, pregnancy, ESRD and smoking facts (:mod:`follicle.cds.conditions`);
an uncoded Condition naming TB or hepatitis B/C leaves that fact open. Medications and
immunizations: :mod:`follicle.cds.medications`. When the record gives a fact twice, the more severe
value wins.
"""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from follicle.cds.conditions import SMOKING_LOINC, condition_facts, smoking_value, uncoded_open_facts, worse
from follicle.cds.facts import HistoryEntry, LabValue, PatientFacts
from follicle.cds.kb import KnowledgeBase, default_kb
from follicle.cds.medications import DrugOrder, as_date, listed, parse_medication, read_immunizations, read_medications
from follicle.errors import InputError

__all__ = ["DrugOrder", "ParsedRecord", "parse_bundle", "parse_medication", "parse_resources", "resources_of"]

#: Results older than this many days are not taken as current, and live vaccinations within it count as
#: "immediately prior". A **practice setting, not a label statement**: the labels give no maximum age
#: for a baseline result; 90 days matches the three-monthly laboratory interval of the practice
#: guidance in the knowledge base (status G, JCAD 2025) and the 90-day CBC card of clinical.md §4. Change
#: it with ``--max-result-age-days`` / ``FOLLICLE_CDS_MAX_RESULT_AGE_DAYS``.
MAX_RESULT_AGE_DAYS = 90

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


_date = as_date


def _loinc(code: Any) -> list[str]:
    if not isinstance(code, dict):
        return []
    return [c["code"] for c in listed(code.get("coding")) if isinstance(c, dict) and c.get("system") == LOINC_SYSTEM and isinstance(c.get("code"), str)]


def _qualitative(obs: dict) -> str | None:
    texts: list[str] = []
    if isinstance(obs.get("valueString"), str):
        texts.append(obs["valueString"])
    vcc = obs.get("valueCodeableConcept")
    if isinstance(vcc, dict):
        if isinstance(vcc.get("text"), str):
            texts.append(vcc["text"])
        texts += [c["display"] for c in listed(vcc.get("coding")) if isinstance(c, dict) and isinstance(c.get("display"), str)]
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


def _patient_fields(pt: dict, as_of: date, problems: list[str]) -> dict[str, Any]:
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
    return fields


def _other_patient(res: dict, patient_id: str | None) -> str | None:
    """The Patient reference of *res* when it names another patient than the record's."""
    for key in ("subject", "patient"):
        ref = res.get(key)
        target = ref.get("reference") if isinstance(ref, dict) else None
        if isinstance(target, str) and patient_id is not None:
            m = re.search(r"(?:^|/)Patient/([^/]+)$", target)
            if m and m.group(1) != patient_id:
                return target
    return None


def _obs_date(obs: dict) -> date | None:
    period = obs.get("effectivePeriod") if isinstance(obs.get("effectivePeriod"), dict) else {}
    return (_date(obs.get("effectiveDateTime")) or _date(period.get("end")) or _date(period.get("start"))
            or _date(obs.get("effectiveInstant")) or _date(obs.get("issued")))


def _units(obs: dict) -> list[tuple[dict, bool]]:
    """The Observation and its components as separate results: (result, is_component)."""
    out = [(obs, False)]
    for i, comp in enumerate(listed(obs.get("component"))):
        if isinstance(comp, dict):
            out.append((dict(comp, resourceType="Observation", id=f"{obs.get('id', '?')}/component[{i}]"), True))
    return out


_HAS_VALUE = ("valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger")


def _read_observation(obs: dict, when: date | None, code: str, problems: list[str], warnings: list[str]) -> Any:
    """The value of one result (LabValue, qualitative string, smoking status), or None (problem / warning recorded)."""
    analyte = LOINC[code][0]
    if not any(k in obs for k in _HAS_VALUE) and obs.get("dataAbsentReason") is not None:
        warnings.append(f"{_ref(obs)} (LOINC {code}): no value (dataAbsentReason); left unknown")
        return None
    if analyte not in NUMERIC:
        value = smoking_value(obs) if analyte == "smoking" else _qualitative(obs)
        if value is None:
            warnings.append(f"{_ref(obs)} (LOINC {code}): result not read as positive or negative; left unknown")
        return value
    q = obs.get("valueQuantity")
    if (not isinstance(q, dict) or isinstance(q.get("value"), bool) or not isinstance(q.get("value"), (int, float))
            or not math.isfinite(q["value"])):
        problems.append(f"{_ref(obs)} (LOINC {code}): valueQuantity.value must be a finite number")
        return None
    comparator = q.get("comparator")
    if comparator is not None and comparator not in ("<", "<=", ">", ">="):
        problems.append(f"{_ref(obs)} (LOINC {code}): valueQuantity.comparator {comparator!r} is not <, <=, > or >=")
        return None
    units = [u for u in (q.get("code"), q.get("unit")) if isinstance(u, str) and u.strip()]
    if not units:
        problems.append(f"{_ref(obs)} (LOINC {code}): valueQuantity has no unit; a count or concentration cannot be read without one")
        return None
    err = ""
    for u in units:
        try:
            return LabValue.of(analyte, float(q["value"]), u, when, _ref(obs), comparator)
        except ValueError as exc:
            err = str(exc)
    problems.append(f"{_ref(obs)} (LOINC {code}): {err}")
    return None


def _read_observations(resources: list[dict], as_of: date, unknown_loinc: str, problems: list[str], warnings: list[str]
                       ) -> tuple[dict[str, list[tuple[date | None, Any, str]]], list[HistoryEntry]]:
    """Every readable result per analyte, and the dated numeric history (nothing after ``as_of``)."""
    results: dict[str, list[tuple[date | None, Any, str]]] = {}
    history: list[HistoryEntry] = []
    for obs in (r for r in resources if r.get("resourceType") == "Observation"):
        if isinstance(obs.get("status"), str) and obs["status"] in ("entered-in-error", "cancelled", "registered"):
            continue  # no result (yet), or withdrawn
        when = _obs_date(obs)
        units = _units(obs)
        known_parts = [u for u, _ in units if any(c in LOINC for c in _loinc(u.get("code")))]
        for unit, is_component in units:
            codes = _loinc(unit.get("code"))
            known = [c for c in codes if c in LOINC]
            if not known:
                if not is_component and not known_parts and not (obs.get("component") and not any(k in obs for k in _HAS_VALUE)):
                    msg = f"{_ref(obs)}: LOINC {', '.join(codes) or '(none)'} is not one the checks use"
                    (problems if unknown_loinc == "error" else warnings).append(msg)
                continue
            analyte = LOINC[known[0]][0]
            if analyte == "unused" or (not is_component and obs.get("component") and not any(k in obs for k in _HAS_VALUE)):
                continue
            if when is not None and when > as_of:
                warnings.append(f"{_ref(unit)}: dated {when}, after the evaluation date {as_of}; not used")
                continue
            value = _read_observation(unit, when, known[0], problems, warnings)
            if value is None:
                continue
            if isinstance(value, LabValue) and when is not None:
                history.append(HistoryEntry(analyte=analyte, date=when, value=value.value, unit=value.unit))  # type: ignore[arg-type]
            results.setdefault(analyte, []).append((when, value, _ref(unit)))
            if LOINC[known[0]][1] == "P":
                warnings.append(f"{_ref(unit)}: LOINC {known[0]} is only partially verified in the reference")
    return results, history


def _current(analyte: str, found: list[tuple[date | None, Any, str]], as_of: date, max_age: int | None,
             warnings: list[str]) -> Any:
    """The newest result that is current (dated, no older than *max_age* days; smoking status has no age
    limit: past smoking counts), or None with a warning naming why none is."""
    def fresh(when: date | None) -> bool:
        return when is not None and (max_age is None or analyte == "smoking" or (as_of - when).days <= max_age)

    current = [(w, i, v) for i, (w, v, _) in enumerate(found) if fresh(w)]
    if current:
        return max(current, key=lambda t: (t[0], t[1]))[2]
    if analyte == "smoking" and found:
        return found[-1][1]
    for when, _, ref in found:
        why = "has no date" if when is None else f"dated {when}, older than {max_age} days"
        warnings.append(f"{ref} ({analyte}): {why}; not taken as a current result, so {analyte.replace('_', ' ')} is unknown")
    return None


def parse_resources(
    resources: list[dict],
    *,
    as_of: date,
    unknown_loinc: Literal["error", "warn"] = "warn",
    kb: KnowledgeBase | None = None,
    max_result_age_days: int | None = MAX_RESULT_AGE_DAYS,
) -> ParsedRecord:
    """Turn FHIR resources into facts; raise InputError listing every problem at once.

    *max_result_age_days*: results older than this are not current (None: no limit), see the module doc.
    """
    kb = kb or default_kb()
    if max_result_age_days is not None and max_result_age_days < 0:
        raise InputError(f"max_result_age_days: expected a number of days >= 0, got {max_result_age_days}")
    problems: list[str] = []
    warnings: list[str] = []
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    if not patients:
        raise InputError("bundle: no Patient resource; the checks need the patient's age and sex")
    if len({p.get("id") for p in patients}) > 1:
        raise InputError("bundle: more than one Patient resource; send one patient's record")
    pt = patients[0]
    fields = _patient_fields(pt, as_of, problems)
    for res in resources:
        other = _other_patient(res, fields["patient_id"])
        if other is not None:
            problems.append(f"{_ref(res)}: names {other}, not the record's Patient/{fields['patient_id']}")

    results, history = _read_observations(resources, as_of, unknown_loinc, problems, warnings)
    latest = {a: v for a, found in results.items() if (v := _current(a, found, as_of, max_result_age_days, warnings)) is not None}
    for analyte in NUMERIC:
        if analyte in latest:
            fields[analyte] = latest[analyte]
    if "pregnancy_test" in latest:
        fields["pregnant"] = latest["pregnancy_test"] == "positive"
    if "hbsag" in latest:
        fields["hbv_status"] = "hbsag_positive" if latest["hbsag"] == "positive" else "negative"
    if "hcv_ab" in latest:
        fields["hcv_status"] = latest["hcv_ab"]
    if "tb_igra" in latest:
        fields["tb_status"] = latest["tb_igra"]
    if "smoking" in latest:
        fields["smoking"] = latest["smoking"]

    meds, concomitant, med_warnings = read_medications(resources, kb)
    warnings += med_warnings
    zoster, live, imm_warnings = read_immunizations(resources, as_of=as_of, window_days=max_result_age_days, kb=kb)
    warnings += imm_warnings
    if concomitant is not None or live:
        fields["concomitant"] = (concomitant or []) + live
    if zoster:
        fields["zoster_vaccinated"] = True
    conditions = [r for r in resources if r.get("resourceType") == "Condition" and isinstance(r, dict)]
    aa = None
    if conditions:
        aa = any(
            isinstance(c, dict) and (
                (c.get("system") == ICD10CM_SYSTEM and isinstance(c.get("code"), str) and c["code"].upper().startswith("L63"))
                or (c.get("system") == SNOMED_SYSTEM and c.get("code") == AA_SNOMED))
            for cond in conditions for c in (listed(cond["code"].get("coding")) if isinstance(cond.get("code"), dict) else [])
        )
    cond_facts, notes = condition_facts(conditions)
    for k, v in cond_facts.items():
        if k == "vte_risk_factors":
            fields[k] = sorted(set(fields.get(k) or []) | set(v))
        else:
            fields[k] = worse(k, fields.get(k), v)
    for fact, what in uncoded_open_facts(conditions).items():
        if fields.get(fact) in (None, "negative"):
            if fields.get(fact) == "negative":
                warnings.append(f"{what}: names {fact.replace('_status', '').upper()} without a code the checks hold; "
                                f"the negative test is not taken as reassurance, so {fact.replace('_', ' ')} is left open")
            fields[fact] = None
            notes.append(f"{what}: {fact} left open (uncoded Condition)")
    fields["history"] = history
    if problems:
        raise InputError("FHIR input cannot be used as given", problems=problems)
    try:
        facts = PatientFacts(**fields)
    except ValidationError as exc:
        raise InputError("FHIR input gives facts out of range", problems=[
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]) from None
    return ParsedRecord(facts=facts, medications=meds, warnings=warnings, aa_diagnosis=aa, notes=notes)


def parse_bundle(bundle: Any, *, as_of: date, unknown_loinc: Literal["error", "warn"] = "warn",
                 max_result_age_days: int | None = MAX_RESULT_AGE_DAYS) -> ParsedRecord:
    """The patient facts of a FHIR R4 Bundle (``resourceType: Bundle``) on date *as_of*.

    Parameters
    ----------
    bundle : dict
        A parsed FHIR R4 Bundle holding one patient's Patient, Condition, Observation,
        MedicationRequest and AllergyIntolerance resources.
    as_of : datetime.date
        The evaluation date (age, recency of laboratory values).
    unknown_loinc : {"warn", "error"}
        What to do with an Observation whose LOINC code the knowledge base does not use.
    max_result_age_days : int, optional
        Laboratory results older than this many days on *as_of* are not used (None: any age).

    Returns
    -------
    ParsedRecord
        ``facts`` (:class:`PatientFacts`, the input of :func:`follicle.cds.engine.evaluate`),
        medication orders and warnings.

    Raises
    ------
    InputError
        A resource that cannot be read, naming it.
    """
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InputError("bundle: expected a FHIR R4 Bundle (resourceType 'Bundle')")
    return parse_resources(resources_of(bundle), as_of=as_of, unknown_loinc=unknown_loinc, max_result_age_days=max_result_age_days)
