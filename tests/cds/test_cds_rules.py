"""The situations issue 24 found passing as "start-with-cautions", and the severity rules:
a contraindication or label "do not initiate" gives do-not-start whatever else is missing;
missing safety facts give cannot-decide, never start; refused drugs are refused."""

from __future__ import annotations

from datetime import date

import pytest

from follicle.cds.engine import LabelNotEncoded, evaluate
from follicle.cds.facts import LabValue, PatientFacts
from follicle.cds.fhir import parse_resources
from follicle.errors import InputError
from cds_helpers import AS_OF, healthy_facts, med


def _record(*resources, **over):
    pt = {"resourceType": "Patient", "id": "p", "gender": "male", "birthDate": "1980-01-01"}
    return parse_resources([pt, *resources], as_of=AS_OF).facts.model_copy(update=over)


def _cond(icd, status="active"):
    return {"resourceType": "Condition", "id": icd, "clinicalStatus": {"coding": [{"code": status}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": icd}]}}


def _mr(name, status="active", kind="MedicationRequest"):
    return {"resourceType": kind, "id": name, "status": status, "medicationCodeableConcept": {"text": name}}


def _merge(record_facts, **over):
    """Healthy facts with what the record says laid over them."""
    known = {k: v for k, v in record_facts.model_dump().items() if v not in (None, []) and k not in ("as_of", "patient_id", "history")}
    return healthy_facts(**(known | over))


@pytest.mark.parametrize("region", ["US"])
def test_deuruxolitinib_active_tb_from_a_condition_is_do_not_start(region):
    d = evaluate(_merge(_record(_cond("A15.0"))), "deuruxolitinib", region=region)
    assert d.decision == "do-not-start" and "deuruxolitinib.us.tb_active" in {r.rule_id for r in d.reasons}


def test_deuruxolitinib_positive_hbsag_is_never_start():
    hbsag = {"resourceType": "Observation", "id": "h", "status": "final", "valueString": "Positive", "effectiveDateTime": AS_OF.isoformat(),
             "code": {"coding": [{"system": "http://loinc.org", "code": "5196-1"}]}}
    d = evaluate(_merge(_record(hbsag)), "deuruxolitinib", region="US")
    assert d.decision == "cannot-decide" and any("hepatitis" in n for n in d.needs)


@pytest.mark.parametrize("kind", ["MedicationRequest", "MedicationStatement"])
def test_deuruxolitinib_fluconazole_in_the_record_fires_the_cyp2c9_contraindication(kind):
    facts = _record(_mr("fluconazole 150 MG Oral Tablet", kind=kind))
    assert [(c.name, c.classes) for c in facts.concomitant] == [("fluconazole", ("moderate_or_strong_cyp2c9_inhibitor",))]
    d = evaluate(_merge(facts), "deuruxolitinib", region="US")
    assert d.decision == "do-not-start" and "deuruxolitinib.us.cyp2c9_inhibitor" in {r.rule_id for r in d.reasons}


@pytest.mark.parametrize("region", ["EU", "US"])
def test_tofacitinib_is_refused_with_the_reason(region):
    facts = healthy_facts(lymphocytes=LabValue.of("lymphocytes", 0.3, "10*9/L"), egfr=LabValue.of("egfr", 25, "mL/min/1.73m2"))
    with pytest.raises(LabelNotEncoded, match="not authorised|not approved"):
        evaluate(facts, "tofacitinib", region=region)


def test_deuruxolitinib_is_refused_under_the_eu_setting():
    with pytest.raises(LabelNotEncoded, match="No EU SmPC"):
        evaluate(healthy_facts(), "deuruxolitinib", region="EU")


@pytest.mark.parametrize("drug,region,expected", [
    ("baricitinib", "EU", "do-not-start"), ("baricitinib", "US", "start-with-cautions"),
    ("ritlecitinib", "EU", "do-not-start"), ("ritlecitinib", "US", "start-with-cautions"),  # US 8.1: not a contraindication
    ("deuruxolitinib", "US", "cannot-decide"),
])
def test_pregnancy_per_label(drug, region, expected):
    d = evaluate(healthy_facts(sex="female", pregnant=True), drug, region=region)
    assert d.decision == expected, [r.rule_id for r in d.reasons]


def test_pregnancy_difference_between_labels_is_said():
    d = evaluate(healthy_facts(sex="female", pregnant=True), "baricitinib", region="EU")
    joined = " ".join(d.region_differences)
    assert "pregnancy: EU SmPC 4.3" in joined and "US prescribing information 8.1 Pregnancy: caution" in joined


@pytest.mark.parametrize("drug,region,expected", [
    ("baricitinib", "EU", "start-with-cautions"),  # EU: 'carefully considered prior to initiating'
    ("baricitinib", "US", "do-not-start"), ("ritlecitinib", "EU", "do-not-start"), ("ritlecitinib", "US", "do-not-start"),
    ("deuruxolitinib", "US", "do-not-start"),
])
def test_active_serious_infection(drug, region, expected):
    facts = _merge(_record(_cond("A41.9")))
    assert facts.active_infection is True
    assert evaluate(facts, drug, region=region).decision == expected


@pytest.mark.parametrize("name", ["azathioprine", "tacrolimus 1 MG Oral Capsule", "ciclosporin", "adalimumab", "upadacitinib"])
def test_immunosuppressants_and_biologics_from_the_record(name):
    facts = _merge(_record(_mr(name)))
    assert evaluate(facts, "baricitinib", region="EU").decision == "do-not-start"
    assert evaluate(facts, "baricitinib", region="US").decision == "do-not-start"
    assert evaluate(facts, "deuruxolitinib", region="US").decision == "do-not-start"
    assert evaluate(facts, "ritlecitinib", region="US").decision == "do-not-start"  # limitation of use (Medscape wording, P)


def test_topical_tacrolimus_is_not_systemic():
    facts = _record(_mr("tacrolimus 0.1 % Topical Ointment"))
    assert facts.concomitant == []


def test_ema_restrictions():
    d = evaluate(healthy_facts(age_years=66), "baricitinib", region="EU")
    # restricted use from 65 (4.4, V); the current SmPC recommends 2 mg from 65 in RA/AD, the AA paragraph was not seen
    assert d.decision == "cannot-decide" and any(n.startswith("elderly dose 65") for n in d.needs)
    assert {"baricitinib.eu.age_65", "baricitinib.eu.dose_65_not_encoded"} <= {r.rule_id for r in d.reasons}
    assert evaluate(healthy_facts(age_years=64), "baricitinib", region="EU").decision == "start"
    d = evaluate(healthy_facts(smoking="current"), "baricitinib", region="EU")
    assert d.decision == "start-with-cautions" and d.reasons[0].action == "restrict"
    d = evaluate(healthy_facts(smoking="former"), "baricitinib", region="EU")  # long-time? unknown
    assert d.decision == "start-with-cautions" and "smoking" in {n.fact for n in d.not_assessed}
    d = evaluate(healthy_facts(age_years=66), "baricitinib", region="US")
    assert "baricitinib.eu.age_65" not in {r.rule_id for r in d.reasons}


def test_baricitinib_eu_2mg_at_75_and_oat3():
    d = evaluate(healthy_facts(age_years=75), "baricitinib", region="EU")
    assert d.dose.mg == 2 and "baricitinib.eu.elderly_75" in {a.rule_id for a in d.dose.adjustments}
    d = evaluate(healthy_facts(concomitant=[med("probenecid", "strong_oat3_inhibitor")]), "baricitinib", region="EU")
    assert d.dose.mg == 2
    d = evaluate(healthy_facts(concomitant=[med("probenecid", "strong_oat3_inhibitor")]), "baricitinib", region="US")
    assert d.decision == "cannot-decide" and any("oat3" in n for n in d.needs)


def test_strong_cyp3a_inducers_and_live_vaccines():
    rif = [med("rifampin", "strong_cyp3a_inducer")]
    assert evaluate(healthy_facts(concomitant=rif), "ritlecitinib", region="US").decision == "do-not-start"
    assert evaluate(healthy_facts(concomitant=rif), "ritlecitinib", region="EU").decision == "cannot-decide"
    assert evaluate(healthy_facts(concomitant=rif), "deuruxolitinib", region="US").decision == "cannot-decide"
    live = [med("live vaccine", "live_vaccine")]
    assert evaluate(healthy_facts(concomitant=live), "baricitinib", region="EU").decision == "do-not-start"
    assert evaluate(healthy_facts(concomitant=live), "ritlecitinib", region="US").decision == "do-not-start"
    for drug, region in (("baricitinib", "US"), ("ritlecitinib", "EU"), ("deuruxolitinib", "US")):
        assert evaluate(healthy_facts(concomitant=live), drug, region=region).decision == "cannot-decide"


def test_contraindication_wins_whatever_else_is_missing():
    facts = PatientFacts(as_of=AS_OF, sex="female", pregnant=True)
    for drug in ("baricitinib", "ritlecitinib"):
        assert evaluate(facts, drug, region="EU").decision == "do-not-start"


@pytest.mark.parametrize("drug,region", [("baricitinib", "EU"), ("baricitinib", "US"), ("ritlecitinib", "EU"),
                                         ("ritlecitinib", "US"), ("deuruxolitinib", "US")])
def test_missing_safety_facts_give_cannot_decide_never_start(drug, region):
    d = evaluate(PatientFacts(as_of=AS_OF, age_years=40, sex="male"), drug, region=region)
    assert d.decision == "cannot-decide"
    assert {"lymphocytes", "tb status"} <= {n.split(" (")[0] for n in d.needs}
    full = evaluate(healthy_facts(), drug, region=region)
    assert full.decision in ("start", "start-with-cautions")
    for fact in ("hepatic_class", "tb_status", "active_infection", "lymphocytes"):
        if (drug, region, fact) == ("baricitinib", "EU", "active_infection"):
            continue  # the EU SmPC asks to weigh an active infection (a caution), so not knowing it is not blocking
        assert evaluate(healthy_facts(**{fact: None}), drug, region=region).decision == "cannot-decide"


def test_positive_tb_test_not_evaluated_leaves_active_tb_open():
    d = evaluate(healthy_facts(tb_status="positive"), "ritlecitinib", region="US")
    assert d.decision == "cannot-decide" and any("tb status" in n and "positive" in n for n in d.needs)


@pytest.mark.parametrize("drug,region", [("baricitinib", "US"), ("ritlecitinib", "EU"), ("ritlecitinib", "US")])
def test_healthy_adult_with_complete_record_may_start(drug, region):
    d = evaluate(healthy_facts(), drug, region=region)
    assert d.decision == "start", [r.rule_id for r in d.reasons] + [n.fact for n in d.not_assessed]
    assert d.disclaimer == "This supports, and does not replace, the clinician's judgement."


def test_eu_creatinine_clearance_from_egfr_is_stated_as_assumed():
    d = evaluate(healthy_facts(egfr=LabValue.of("egfr", 45, "mL/min/1.73m2")), "baricitinib", region="EU")
    assert d.dose.mg == 2 and d.assumed and "creatinine clearance taken as the eGFR" in d.assumed[0]
    d = evaluate(healthy_facts(crcl=LabValue.of("crcl", 70, "mL/min")), "baricitinib", region="EU")
    assert d.assumed == [] and d.dose.mg == 4


def test_on_treatment_uses_interrupt_and_discontinue():
    d = evaluate(healthy_facts(lymphocytes=LabValue.of("lymphocytes", 400, "cells/mm3")), "baricitinib", region="US", mode="on_treatment")
    assert [r.action for r in d.reasons] == ["interrupt"] and d.decision == "do-not-start"
    d = evaluate(healthy_facts(platelets=LabValue.of("platelets", 40_000, "cells/mm3")), "ritlecitinib", region="US", mode="on_treatment")
    assert d.reasons[0].action == "discontinue" and d.reasons[0].severity == "critical"
    d = evaluate(healthy_facts(platelets=LabValue.of("platelets", 80_000, "cells/mm3")), "ritlecitinib", region="US", mode="on_treatment")
    assert d.reasons == []


def test_unknown_drug_is_an_error():
    with pytest.raises(InputError, match="not in the drug catalogue"):
        evaluate(healthy_facts(), "aspirin")


def test_resolved_or_refuted_conditions_do_not_count():
    assert _record(_cond("A15.0", status="resolved")).tb_status is None
    refuted = dict(_cond("A15.0"), verificationStatus={"coding": [{"code": "refuted"}]})
    assert _record(refuted).tb_status is None
    assert _record(_cond("Z85.3", status="resolved")).malignancy_history is True  # history counts


def test_record_worse_value_wins():
    igra = {"resourceType": "Observation", "id": "i", "status": "final", "valueString": "Negative",
            "code": {"coding": [{"system": "http://loinc.org", "code": "71773-6"}]}}
    assert _record(igra, _cond("A15.0")).tb_status == "active"
    assert date(2026, 3, 1) == AS_OF
