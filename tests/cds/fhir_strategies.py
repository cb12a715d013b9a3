"""Hypothesis strategies for FHIR-shaped JSON: near-valid resources mixed with arbitrary JSON."""

from hypothesis import strategies as st

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=8)
#: JSON without NaN / infinity, for the fields added by the second review (the service tests send them over HTTP)
_safe = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=8)
_loinc = st.sampled_from(["731-0", "751-8", "718-7", "777-3", "98979-8", "1742-6", "5196-1", "71773-6", "2106-3", "0000-0"])
_quantity = st.fixed_dictionaries({}, optional={
    "value": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6), st.text(max_size=3), st.booleans()),
    "unit": st.one_of(st.sampled_from(["10*3/uL", "cells/mm3", "g/dL", "g/L", "mL/min/1.73m2", "U/L", "", "mmol/L"]), st.text(max_size=5)),
})
_quantity_safe = st.fixed_dictionaries({}, optional={
    "value": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-10**6, 10**6), st.text(max_size=3)),
    "unit": st.sampled_from(["10*3/uL", "cells/mm3", "g/dL", ""]), "comparator": st.sampled_from(["<", ">=", "~", ""]) | _safe})
_observation = st.fixed_dictionaries({"resourceType": st.just("Observation")}, optional={
    "id": st.text(max_size=4), "status": st.sampled_from(["final", "entered-in-error"]),
    "code": st.fixed_dictionaries({"coding": st.lists(st.fixed_dictionaries({"system": st.just("http://loinc.org"), "code": _loinc}), max_size=2)}) | _json,
    "valueQuantity": _quantity | _json, "valueString": st.text(max_size=10) | _json,
    "effectiveDateTime": st.sampled_from(["2026-01-01", "2026-01-01T10:00:00Z", "not a date", ""]) | _json,
    "effectivePeriod": st.fixed_dictionaries({}, optional={"start": st.just("2026-01-01") | _safe, "end": _safe}) | _safe,
    "component": st.lists(st.fixed_dictionaries({"code": _safe, "valueQuantity": _quantity_safe | _safe}) | _safe, max_size=2) | _safe,
    "dataAbsentReason": _safe, "subject": st.fixed_dictionaries({"reference": st.sampled_from(["Patient/x", "Patient/", "x"]) | _safe}) | _safe,
})
_patient = st.fixed_dictionaries({"resourceType": st.just("Patient")}, optional={
    "id": st.text(max_size=4), "gender": st.sampled_from(["female", "male", "x"]) | _json,
    "birthDate": st.sampled_from(["1980-02-29", "2030-01-01", "1990", "bad"]) | _json})
_med = st.fixed_dictionaries({"resourceType": st.just("MedicationRequest")}, optional={
    "status": st.sampled_from(["active", "draft"]) | _json,
    "medicationCodeableConcept": st.fixed_dictionaries({}, optional={"text": st.sampled_from(["baricitinib 2 mg", "cyclosporine"]) | _json,
                                                                     "coding": _json}) | _json,
    "dosageInstruction": _json,
    "medicationReference": st.fixed_dictionaries({}, optional={"reference": st.sampled_from(["#m", "Medication/m", "#"]) | _safe,
                                                               "display": _safe}) | _safe,
    "contained": st.lists(st.fixed_dictionaries({"resourceType": st.just("Medication"), "id": st.just("m")},
                                                optional={"code": _safe, "form": _safe}) | _safe, max_size=2) | _safe})
_immunization = st.fixed_dictionaries({"resourceType": st.just("Immunization")}, optional={
    "status": st.sampled_from(["completed", "not-done"]) | _safe,
    "vaccineCode": st.fixed_dictionaries({}, optional={"text": st.sampled_from(["Varivax", "MMR", "Shingrix"]) | _safe, "coding": _safe}) | _safe,
    "occurrenceDateTime": st.sampled_from(["2026-01-01", "2030-01-01", "bad"]) | _safe})
_condition = st.fixed_dictionaries({"resourceType": st.just("Condition")}, optional={
    "clinicalStatus": _safe, "verificationStatus": _safe,
    "code": st.fixed_dictionaries({}, optional={"text": st.sampled_from(["tuberculosis", "hepatitis B"]) | _safe, "coding": _safe}) | _safe})
_resource = st.one_of(_observation, _patient, _med, _immunization, _condition, _json)
_bundle = st.fixed_dictionaries({"resourceType": st.just("Bundle")}, optional={
    "entry": st.lists(st.fixed_dictionaries({"resource": _resource}) | _json, max_size=6) | _json})

bundles = _bundle
json_values = _json
resources = _resource
observations = _observation
