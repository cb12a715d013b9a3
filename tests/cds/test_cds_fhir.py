"""FHIR R4 -> facts: LOINC mapping (clinical.md §5), unit conversion, bad input, RxNorm mapping (§1.3)."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings


from follicle.cds.fhir import parse_bundle
from follicle.cds.rxnorm import match_medication
from follicle.errors import InputError

DATA = Path(__file__).parent / "data" / "patient_bundle.json"
AS_OF = date(2026, 2, 1)
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"


def bundle():
    return json.loads(DATA.read_text())


def obs(id_, loinc, value=None, unit=None, when="2026-01-05", **extra):
    r = {"resourceType": "Observation", "id": id_, "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]}, "effectiveDateTime": when}
    if value is not None:
        r["valueQuantity"] = {"value": value} | ({"unit": unit} if unit else {})
    r.update(extra)
    return r


def with_entries(*resources, base=None):
    b = copy.deepcopy(base or {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p", "gender": "male", "birthDate": "1980-01-01"}}]})
    b["entry"] += [{"resource": r} for r in resources]
    return b


def test_sample_bundle_facts():
    rec = parse_bundle(bundle(), as_of=AS_OF)
    f = rec.facts
    assert f.age_years == 35 and f.sex == "female"
    assert f.lymphocytes.value == 1.4 and f.lymphocytes.unit == "10*3/uL"
    assert f.neutrophils.value == pytest.approx(3.2)  # 3200 cells/mm3 -> 3.2 10*3/uL
    assert f.haemoglobin.value == pytest.approx(13.1)  # 131 g/L -> 13.1 g/dL
    assert f.egfr.value == 52 and f.tb_status == "negative" and f.hbv_status == "negative" and f.hcv_status == "negative"
    assert [c.name for c in f.concomitant] == ["methotrexate"] and f.concomitant[0].matched_by == "rxcui"
    assert any("39156-5" in w for w in rec.warnings)  # unknown LOINC skipped with a warning (CLI default)


def test_cells_per_mm3_and_10e3_per_ul_agree():
    a = parse_bundle(with_entries(obs("a", "731-0", 450, "cells/mm3")), as_of=AS_OF).facts.lymphocytes
    b = parse_bundle(with_entries(obs("a", "731-0", 0.45, "10*3/uL")), as_of=AS_OF).facts.lymphocytes
    c = parse_bundle(with_entries(obs("a", "731-0", 0.45, "x10E3/uL")), as_of=AS_OF).facts.lymphocytes
    assert a.value == b.value == c.value == 0.45


def test_lab_without_unit_is_an_error_naming_the_observation():
    with pytest.raises(InputError) as exc:
        parse_bundle(with_entries(obs("alc7", "731-0", 450)), as_of=AS_OF)
    assert "Observation/alc7" in exc.value.render() and "no unit" in exc.value.render()


def test_unsupported_unit_is_an_error():
    with pytest.raises(InputError, match="cannot be used") as exc:
        parse_bundle(with_entries(obs("hb1", "718-7", 8.1, "mmol/L")), as_of=AS_OF)
    assert "mmol/L" in exc.value.render()


def test_unknown_loinc_error_in_strict_mode():
    b = with_entries(obs("x", "39156-5", 24, "kg/m2"))
    assert parse_bundle(b, as_of=AS_OF).warnings
    with pytest.raises(InputError) as exc:
        parse_bundle(b, as_of=AS_OF, unknown_loinc="error")
    assert "39156-5" in exc.value.render()


def test_bundle_without_patient_is_an_error():
    b = bundle()
    b["entry"] = [e for e in b["entry"] if e["resource"]["resourceType"] != "Patient"]
    with pytest.raises(InputError, match="no Patient"):
        parse_bundle(b, as_of=AS_OF)


def test_newest_egfr_preferred_across_codes():
    b = with_entries(obs("e1", "33914-3", 40, "mL/min/1.73m2", when="2025-06-01"),
                     obs("e2", "98979-8", 70, "mL/min/{1.73_m2}", when="2026-01-01"))
    f = parse_bundle(b, as_of=AS_OF).facts
    assert f.egfr.value == 70 and len([h for h in f.history if h.analyte == "egfr"]) == 2


def test_qualitative_results_read_from_text():
    b = with_entries(obs("t", "71773-6", valueCodeableConcept={"text": "Positive"}),
                     obs("h", "5196-1", valueString="Reactive"),
                     obs("c", "16128-1", valueCodeableConcept={"coding": [{"display": "Not detected"}]}),
                     obs("q", "2106-3", valueString="negative"),
                     obs("z", "13955-0", valueString="indeterminate"))
    rec = parse_bundle(b, as_of=AS_OF)
    f = rec.facts
    assert (f.tb_status, f.hbv_status, f.hcv_status, f.pregnant) == ("positive", "hbsag_positive", "negative", False)
    assert any("Observation/z" in w for w in rec.warnings)


def test_zoster_immunization_by_name():
    imm = {"resourceType": "Immunization", "status": "completed", "vaccineCode": {"text": "Zoster vaccine recombinant (Shingrix)"}}
    assert parse_bundle(with_entries(imm), as_of=AS_OF).facts.zoster_vaccinated is True
    assert parse_bundle(with_entries(), as_of=AS_OF).facts.zoster_vaccinated is None  # absence is not evidence


@pytest.mark.parametrize("concept,drug,by", [
    ({"coding": [{"system": RX, "code": "2047232"}]}, "baricitinib", "rxcui"),  # clinical.md §1.3 [V]
    ({"coding": [{"system": RX, "code": "1357536"}]}, "tofacitinib", "rxcui"),
    ({"coding": [{"system": RX, "code": "999999", "display": "ritlecitinib 50 MG Oral Capsule"}]}, "ritlecitinib", "name"),
    ({"text": "LEQSELVI 8 mg tablet"}, "deuruxolitinib", "name"),
    ({"text": "methylprednisolone 4 MG Oral Tablet"}, "methylprednisolone", "name"),  # not prednisolone
    ({"text": "probenecid 500 mg"}, "probenecid", "name"),
])
def test_rxnorm_mapping(concept, drug, by):
    m = match_medication(concept)
    assert m.drug.name == drug and m.matched_by == by


def test_topical_ruxolitinib_flagged_and_unknown_drug_none():
    assert match_medication({"text": "Opzelura (ruxolitinib) 1.5% cream"}).topical is True
    assert match_medication({"text": "ruxolitinib 5 MG Oral Tablet"}).topical is False
    assert match_medication({"text": "ibuprofen"}) is None


# --- fuzzing: any JSON-ish bundle is either parsed or rejected with InputError, never another exception
from fhir_strategies import bundles, json_values  # noqa: E402


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bundles | json_values)
def test_fuzzed_bundles_parse_or_fail_cleanly(b):
    try:
        rec = parse_bundle(b, as_of=AS_OF)
    except InputError as exc:
        assert exc.render()
    else:
        assert rec.facts.as_of == AS_OF


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "7", True, None])
def test_non_numeric_or_non_finite_values_are_errors(value):
    o = obs("v", "718-7", 1, "g/dL")
    o["valueQuantity"]["value"] = value
    with pytest.raises(InputError) as exc:
        parse_bundle(with_entries(o), as_of=AS_OF)
    assert "Observation/v" in exc.value.render() and "finite number" in exc.value.render()


def test_implausible_birth_date_is_an_input_error():
    b = with_entries()
    b["entry"][0]["resource"]["birthDate"] = "1700-01-01"
    with pytest.raises(InputError, match="out of range"):
        parse_bundle(b, as_of=AS_OF)


def test_aa_diagnosis_from_conditions():
    icd = {"resourceType": "Condition", "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "L63.1"}]}}
    sct = {"resourceType": "Condition", "code": {"coding": [{"system": "http://snomed.info/sct", "code": "68225006"}]}}
    other = {"resourceType": "Condition", "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F32.A"}]}}
    assert parse_bundle(with_entries(icd), as_of=AS_OF).aa_diagnosis is True
    assert parse_bundle(with_entries(sct, other), as_of=AS_OF).aa_diagnosis is True
    assert parse_bundle(with_entries(other), as_of=AS_OF).aa_diagnosis is False
    assert parse_bundle(with_entries(), as_of=AS_OF).aa_diagnosis is None
