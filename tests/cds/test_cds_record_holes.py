"""Second review of issue 24: paths by which a fact present in the FHIR record was not read (or read
wrongly), so that a patient with a contraindication, or with an unknown safety fact, got "start" or
"start-with-cautions". Each test was written failing first; the fix is named in its docstring."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from follicle.cds.engine import evaluate
from follicle.cds.facts import LabValue
from follicle.cds.fhir import parse_resources
from follicle.errors import InputError
from cds_helpers import AS_OF, healthy_facts

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
PT = {"resourceType": "Patient", "id": "p", "gender": "male", "birthDate": "1980-01-01"}


def _parse(*resources, patient=PT, **kw):
    return parse_resources([patient, *resources], as_of=AS_OF, **kw)


def _obs(id_, loinc, when=AS_OF.isoformat(), **value):
    r = {"resourceType": "Observation", "id": id_, "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]}, **value}
    if when is not None:
        r["effectiveDateTime"] = when
    return r


def _q(value, unit, **extra):
    return {"valueQuantity": {"value": value, "unit": unit, **extra}}


def _cond(code, system=ICD, status="active", display=None, text=None):
    coding = {"system": system, "code": code} | ({"display": display} if display else {})
    c = {"resourceType": "Condition", "id": f"c{code}", "clinicalStatus": {"coding": [{"code": status}]},
         "code": {"coding": [coding]} | ({"text": text} if text else {})}
    return c


def _merge(facts, **over):
    """Healthy facts with what the record says laid over them (None from the record stays None)."""
    data = {k: v for k, v in facts.model_dump().items() if k not in ("as_of", "patient_id", "history")}
    known = {k: v for k, v in data.items() if v not in (None, [])}
    base = healthy_facts(**known)
    return base.model_copy(update=over)


def _days_ago(n: int) -> str:
    return (AS_OF - timedelta(days=n)).isoformat()


# ---------------------------------------------------------------- dates of results


def test_a_result_dated_after_the_evaluation_date_is_not_taken_as_current():
    """Hole: the newest result won even when it postdated the evaluation date (``--as-of`` in the past), so
    a later normal count hid the low count the decision date had. Fix: results after ``as_of`` are skipped."""
    low = _obs("low", "731-0", when=_days_ago(5), **_q(0.3, "10*3/uL"))
    later = _obs("later", "731-0", when=(AS_OF + timedelta(days=30)).isoformat(), **_q(2.0, "10*3/uL"))
    rec = _parse(low, later)
    assert rec.facts.lymphocytes.value == pytest.approx(0.3)
    assert any("Observation/later" in w and "after the evaluation date" in w for w in rec.warnings)
    assert evaluate(_merge(rec.facts), "baricitinib", region="EU").decision == "do-not-start"


def test_a_stale_result_is_not_taken_as_current():
    """Hole: a normal count of any age counted as the baseline, so a CBC from years ago gave "start".
    Fix: results older than ``max_result_age_days`` (default 90, a practice setting) leave the fact unknown."""
    old = _obs("old", "731-0", when=_days_ago(800), **_q(1.8, "10*3/uL"))
    rec = _parse(old)
    assert rec.facts.lymphocytes is None
    assert any("Observation/old" in w and "older than 90 days" in w for w in rec.warnings)
    assert [h.analyte for h in rec.facts.history] == ["lymphocytes"]  # kept for the monitoring schedule
    d = evaluate(_merge(rec.facts, lymphocytes=None), "baricitinib", region="US")
    assert d.decision == "cannot-decide" and any(n.startswith("lymphocytes") for n in d.needs)
    assert _parse(old, max_result_age_days=1000).facts.lymphocytes.value == pytest.approx(1.8)


def test_a_stale_negative_pregnancy_test_is_not_taken_as_not_pregnant():
    woman = dict(PT, gender="female")
    rec = _parse(_obs("hcg", "2106-3", when=_days_ago(200), valueString="Negative"), patient=woman)
    assert rec.facts.pregnant is None
    d = evaluate(_merge(rec.facts, sex="female", pregnant=None), "baricitinib", region="EU")
    assert d.decision == "cannot-decide" and any(n.startswith("pregnant") for n in d.needs)


def test_an_undated_result_is_not_taken_as_current():
    rec = _parse(_obs("nodate", "731-0", when=None, **_q(1.8, "10*3/uL")))
    assert rec.facts.lymphocytes is None and any("Observation/nodate" in w and "no date" in w for w in rec.warnings)


def test_effective_period_and_instant_give_the_date():
    """Hole: only effectiveDateTime/issued were read; a result dated by effectivePeriod or effectiveInstant
    was undated."""
    p = _obs("p", "731-0", when=None, effectivePeriod={"start": _days_ago(3), "end": _days_ago(2)}, **_q(0.4, "10*3/uL"))
    i = _obs("i", "751-8", when=None, effectiveInstant=_days_ago(2) + "T08:00:00Z", **_q(0.8, "10*3/uL"))
    f = _parse(p, i).facts
    assert f.lymphocytes.date == AS_OF - timedelta(days=2) and f.neutrophils.date == AS_OF - timedelta(days=2)


# ---------------------------------------------------------------- values with a comparator


def test_a_count_reported_below_a_bound_fires_the_threshold():
    """Hole: valueQuantity.comparator was dropped, so "ALC < 0.5 x10^9/L" read as exactly 0.5 and the
    "do not initiate below 0.5" rule did not fire. Fix: the bound is kept and compared as a range."""
    rec = _parse(_obs("alc", "731-0", valueQuantity={"value": 0.5, "comparator": "<", "unit": "10*9/L"}))
    assert rec.facts.lymphocytes.comparator == "<"
    d = evaluate(_merge(rec.facts), "baricitinib", region="EU")
    assert d.decision == "do-not-start" and "baricitinib.eu.lymphocytes" in {r.rule_id for r in d.reasons}
    assert "lymphocytes <0.5" in d.reasons[0].observed


def test_a_bound_that_straddles_the_threshold_leaves_the_rule_open():
    d = evaluate(healthy_facts(lymphocytes=LabValue.of("lymphocytes", 1.0, "10*3/uL", comparator="<")), "baricitinib", region="US")
    assert d.decision == "cannot-decide" and any(n.startswith("lymphocytes") for n in d.needs)


def test_an_egfr_reported_above_a_bound_is_read_as_above():
    """eGFR is often reported as ">60" or ">90": above every renal threshold, so no step-down fires and
    nothing is left open; ">45" leaves the 30-60 step-down open."""
    d = evaluate(healthy_facts(egfr=LabValue.of("egfr", 90, "mL/min/1.73m2", comparator=">")), "baricitinib", region="US")
    assert d.decision == "start" and d.dose.mg == 2 and not d.dose.adjustments
    d = evaluate(healthy_facts(egfr=LabValue.of("egfr", 60, "mL/min/1.73m2", comparator=">")), "baricitinib", region="EU")
    assert d.dose.mg == 4 and not d.dose.adjustments  # crcl taken from eGFR keeps the bound (> 60 is above 30-60)
    d = evaluate(healthy_facts(egfr=LabValue.of("egfr", 45, "mL/min/1.73m2", comparator=">")), "baricitinib", region="US")
    assert d.decision == "cannot-decide" and any(n.startswith("egfr") for n in d.needs)


# ---------------------------------------------------------------- who the pregnancy rules apply to


@pytest.mark.parametrize("sex", ["other", "unknown"])
def test_pregnancy_rules_apply_unless_the_patient_is_recorded_male(sex):
    """Hole: ``when: {sex: female}`` skipped the pregnancy and lactation rules for administrative gender
    "other" or "unknown", so a positive pregnancy test gave "start". Fix: only a recorded male is excluded."""
    assert evaluate(healthy_facts(sex=sex, pregnant=True), "baricitinib", region="EU").decision == "do-not-start"
    d = evaluate(healthy_facts(sex=sex, pregnant=None), "baricitinib", region="EU")
    assert d.decision == "cannot-decide" and any(n.startswith("pregnant") for n in d.needs)


def test_a_recorded_pregnancy_fires_whatever_the_administrative_gender():
    rec = _parse(_cond("Z33.1"))  # Patient.gender male
    assert rec.facts.pregnant is True
    assert evaluate(_merge(rec.facts), "ritlecitinib", region="EU").decision == "do-not-start"
    d = evaluate(healthy_facts(sex="male", pregnant=None), "baricitinib", region="EU")  # a man is not asked
    assert d.decision == "start" and not any(n.fact == "pregnant" for n in d.not_assessed)


# ---------------------------------------------------------------- Conditions


@pytest.mark.parametrize("code,fact,value", [
    ("B181", "hbv_status", "hbsag_positive"), ("A150", "tb_status", "active"), ("Z227", "tb_status", "latent"),
    ("b18.2", "hcv_status", "positive"), ("N186", "esrd_or_renal_transplant", True), ("Z331", "pregnant", True),
])
def test_icd10cm_codes_written_without_the_dot_are_read(code, fact, value):
    """Hole: ICD-10-CM codes were matched with their dot, and many systems send them without it."""
    assert getattr(_parse(_cond(code)).facts, fact) == value


@pytest.mark.parametrize("code,fact,value", [
    ("B17.0", "hbv_status", "hbsag_positive"),    # acute delta-(super) infection of hepatitis B carrier
    ("R65.21", "active_infection", True),         # severe sepsis with septic shock
    ("R65.20", "active_infection", True),         # severe sepsis without septic shock
    ("B37.7", "active_infection", True),          # candidal sepsis
    ("T81.44XA", "active_infection", True),       # sepsis following a procedure
    ("O09.511", "pregnant", True),                # supervision of high risk pregnancy
    ("Z34.01", "pregnant", True),                 # supervision of normal first pregnancy
])
def test_icd10cm_codes_that_were_missing(code, fact, value):
    """Checked against the CMS FY2026 tabular (PyPI simple-icd-10-cm 1.5.0, as clinical.md §1.1). The
    hepatitis carrier codes Z22.51/Z22.52 are not in that tabular, so they are not held."""
    assert getattr(_parse(_cond(code)).facts, fact) == value


@pytest.mark.parametrize("code,fact,value", [
    ("46177005", "esrd_or_renal_transplant", True),   # End-stage renal disease (OMOP Synthea vocabulary)
    ("76571007", "active_infection", True),           # Septic shock
    ("79586000", "pregnant", True),                   # Tubal pregnancy
    ("67811000119102", "malignancy_history", True),   # Primary small cell malignant neoplasm of lung, TNM stage 1
])
def test_snomed_codes_found_in_the_project_vocabulary(code, fact, value):
    assert getattr(_parse(_cond(code, system=SCT)).facts, fact) == value


@pytest.mark.parametrize("display,fact,test", [
    ("Pulmonary tuberculosis (disorder)", "tb_status", _obs("igra", "71773-6", valueString="Negative")),
    ("Chronic hepatitis B (disorder)", "hbv_status", _obs("hbsag", "5196-1", valueString="Negative")),
    ("Chronic hepatitis C (disorder)", "hcv_status", _obs("hcv", "13955-0", valueString="Negative")),
])
def test_an_uncoded_condition_naming_tb_or_hepatitis_is_not_overridden_by_a_negative_test(display, fact, test):
    """Hole: SNOMED codes for TB and hepatitis B/C could not be verified, so such a Condition was ignored
    and a negative test gave "start". Fix: an active Condition without an ICD-10-CM code whose name says
    tuberculosis / hepatitis B / C leaves the fact open (the reassuring test is not taken)."""
    rec = _parse(_cond("12345678", system=SCT, display=display), test)
    assert getattr(rec.facts, fact) is None
    assert any(display in n for n in rec.notes + rec.warnings)
    drug_region = ("ritlecitinib", "US")
    d = evaluate(_merge(rec.facts, **{fact: None}), *drug_region[:1], region=drug_region[1])
    assert d.decision in ("cannot-decide", "do-not-start")


def test_a_resolved_uncoded_tb_condition_and_screening_encounters_do_not_blank_the_test():
    igra = _obs("igra", "71773-6", valueString="Negative")
    assert _parse(_cond("1", system=SCT, display="Pulmonary tuberculosis", status="resolved"), igra).facts.tb_status == "negative"
    assert _parse(_cond("2", system=SCT, display="Screening for tuberculosis"), igra).facts.tb_status == "negative"


# ---------------------------------------------------------------- medications


def _mr(id_, concept=None, status="active", **extra):
    r = {"resourceType": "MedicationRequest", "id": id_, "status": status, "intent": "order", **extra}
    if concept is not None:
        r["medicationCodeableConcept"] = concept
    return r


def test_a_medication_given_by_reference_is_read():
    """Hole: only medicationCodeableConcept was read; a MedicationRequest pointing to a Medication
    (contained or in the bundle) was ignored, so fluconazole did not fire the Leqselvi contraindication."""
    contained = _mr("m1", medicationReference={"reference": "#med"},
                    contained=[{"resourceType": "Medication", "id": "med", "code": {"text": "Fluconazole 150 mg tablet"}}])
    in_bundle = _mr("m2", medicationReference={"reference": "Medication/flu"})
    medication = {"resourceType": "Medication", "id": "flu", "code": {"coding": [{"system": RX, "code": "x", "display": "fluconazole"}]}}
    for resources in ([contained], [in_bundle, medication]):
        facts = _parse(*resources).facts
        assert [c.name for c in facts.concomitant] == ["fluconazole"]
        assert evaluate(_merge(facts), "deuruxolitinib", region="US").decision == "do-not-start"


def test_an_unidentified_medication_leaves_the_interaction_rules_open():
    """Hole: a MedicationRequest coded only by an RxNorm clinical-drug code (no name) matched nothing and was
    dropped, so the medication list read as complete and clean. Fix: it stays in the list as unidentified,
    and a class rule that does not fire on the identified drugs is left open."""
    rec = _parse(_mr("m", {"coding": [{"system": RX, "code": "197698"}]}))
    assert [c.matched_by for c in rec.facts.concomitant] == ["unidentified"]
    assert any("MedicationRequest/m" in w and "could not be identified" in w for w in rec.warnings)
    d = evaluate(_merge(rec.facts), "deuruxolitinib", region="US")
    assert d.decision == "cannot-decide" and any(n.startswith("concomitant") for n in d.needs)
    # a named drug outside every class is identified: nothing left open
    d = evaluate(_merge(_parse(_mr("n", {"text": "lisinopril 10 MG Oral Tablet"})).facts), "deuruxolitinib", region="US")
    assert not any(n.startswith("concomitant") for n in d.needs)


@pytest.mark.parametrize("kind,status", [("MedicationRequest", "unknown"), ("MedicationStatement", "unknown")])
def test_a_medication_of_unknown_status_counts(kind, status):
    """Hole: status "unknown" (the source system does not know whether it is current) was read as not taken."""
    r = {"resourceType": kind, "id": "f", "status": status, "medicationCodeableConcept": {"text": "fluconazole"}}
    assert evaluate(_merge(_parse(r).facts), "deuruxolitinib", region="US").decision == "do-not-start"


def test_a_topical_form_in_the_medication_resource_is_read():
    r = _mr("rux", medicationReference={"reference": "#m"},
            contained=[{"resourceType": "Medication", "id": "m", "code": {"text": "ruxolitinib 1.5 %"}, "form": {"text": "Topical cream"}}])
    assert _parse(r).facts.concomitant == []


def test_a_recent_live_vaccination_recorded_as_immunization_counts():
    """Hole: live vaccines were read only from MedicationRequests; an Immunization with a live vaccine given
    days before starting did not fire "live vaccine immediately prior to therapy". Fix: a completed live
    vaccination within the recency window counts as current."""
    recent = {"resourceType": "Immunization", "id": "v", "status": "completed", "occurrenceDateTime": _days_ago(10),
              "vaccineCode": {"text": "Varicella virus vaccine live (Varivax)"}}
    facts = _parse(recent).facts
    assert "live_vaccine" in facts.concomitant[0].classes
    assert evaluate(_merge(facts), "baricitinib", region="EU").decision == "do-not-start"
    old = dict(recent, occurrenceDateTime=_days_ago(3000))
    assert not any("live_vaccine" in c.classes for c in _parse(old).facts.concomitant or [])
    not_done = dict(recent, status="not-done")
    assert not any("live_vaccine" in c.classes for c in _parse(not_done).facts.concomitant or [])


# ---------------------------------------------------------------- Observation shapes


def test_a_count_inside_a_panel_component_is_read():
    """Hole: Observation.component was not read, so a low count reported inside a CBC panel was missed and an
    older separate normal count was used."""
    panel = _obs("cbc", "58410-2", component=[
        {"code": {"coding": [{"system": "http://loinc.org", "code": "731-0"}]}, "valueQuantity": {"value": 0.3, "unit": "10*3/uL"}}])
    older = _obs("alc", "731-0", when=_days_ago(20), **_q(1.9, "10*3/uL"))
    f = _parse(panel, older).facts
    assert f.lymphocytes.value == pytest.approx(0.3)
    assert evaluate(_merge(f), "baricitinib", region="US").decision == "do-not-start"


def test_a_result_not_yet_available_is_skipped_not_an_error():
    registered = {"resourceType": "Observation", "id": "r", "status": "registered", "effectiveDateTime": AS_OF.isoformat(),
                  "code": {"coding": [{"system": "http://loinc.org", "code": "731-0"}]}}
    absent = _obs("a", "751-8", dataAbsentReason={"coding": [{"code": "not-performed"}]})
    rec = _parse(registered, absent)
    assert rec.facts.lymphocytes is None and rec.facts.neutrophils is None
    assert any("Observation/a" in w for w in rec.warnings)


def test_a_resource_of_another_patient_is_an_error():
    """Hole: resources were read whatever patient they named, so another patient's normal labs could stand in."""
    other = _obs("x", "731-0", subject={"reference": "Patient/someone-else"}, **_q(1.8, "10*3/uL"))
    with pytest.raises(InputError) as exc:
        _parse(other)
    assert "Observation/x" in exc.value.render() and "Patient/someone-else" in exc.value.render()


def test_dates_in_this_file_are_relative_to_the_shared_evaluation_date():
    assert AS_OF == date(2026, 3, 1)


@pytest.mark.parametrize("kind,status", [("MedicationRequest", "stopped"), ("MedicationRequest", "cancelled"),
                                         ("MedicationRequest", "entered-in-error"), ("MedicationRequest", "completed"),
                                         ("MedicationStatement", "not-taken"), ("MedicationStatement", "entered-in-error")])
def test_a_medication_no_longer_taken_does_not_count(kind, status):
    r = {"resourceType": kind, "id": "f", "status": status, "medicationCodeableConcept": {"text": "fluconazole"}}
    facts = _parse(r).facts
    assert facts.concomitant == []  # the list is known (the record holds medications) and holds nothing current
    assert evaluate(_merge(facts), "deuruxolitinib", region="US").decision != "do-not-start"


def test_ophthalmic_ciclosporin_is_not_systemic_immunosuppression():
    """Over-blocking found in review: ciclosporin eye drops counted as a potent immunosuppressant."""
    assert _parse(_mr("c", {"text": "cyclosporine 0.05 % Ophthalmic Emulsion"})).facts.concomitant == []
    assert [c.name for c in _parse(_mr("c", {"text": "cyclosporine 100 MG Oral Capsule"})).facts.concomitant] == ["cyclosporine"]
