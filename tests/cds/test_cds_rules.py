"""Table-driven tests of the non-numeric rules: a patient for whom each rule fires and one for whom
it does not; the source of each row is the rule's source in clinical.md §3 (checked in the KB)."""

from __future__ import annotations

import pytest

from follicle.cds.engine import evaluate, evaluate_rule
from follicle.cds.kb import default_kb
from cds_helpers import healthy_facts, med

OLU_DRUGS = "https://www.drugs.com/dosage/olumiant.html"
OLU_HCP = "https://www.olumiant.com/hcp/dosing/treatment-considerations"
MIMS = "https://www.mims.com/hongkong/drug/info/olumiant/dosage"
MIMSDEV = "https://sit.mimsdev.com/thailand/drug/info/olumiant"
DERMADV = "https://www.dermatologyadvisor.com/drugprimer/olumiant-for-alopecia-areata/"
BOXED = "https://prescriberpoint.com/therapies/olumiant-866e9f3"
AAFP = "https://aafp.org/pubs/afp/issues/2023/1100/steps-baricitinib-alopecia-areata.html"
PFIZER_MI = "https://www.pfizermedicalinformation.com/en-us/litfulo/dosage-admin"
PFIZER_UK = "https://www.pfizerpro.co.uk/medicine/litfulo/getting-started/dosing"
PFIZER_DDI = "https://pfizermedicalinformation.com/litfulo/drug-interactions"
OPENFDA = "https://api.fda.gov/drug/label.json?search=openfda.generic_name%3A%22Ritlecitinib%22"
DRUGS_DEU = "https://www.drugs.com/dosage/deuruxolitinib.html"
MEDILIB = "https://medilib.ir/uptodate/show/145633"
PT = "https://hbklvsrfcbqr.shop/view/leqselvi-from-sun-pharmaceutical-industries"
MONO = "https://www.drugs.com/monograph/deuruxolitinib-phosphate.html"
DRORACLE = "https://www.droracle.ai/articles/474550/what-tests-and-vaccinations-are-required-before-starting-tofacitinib"

# rule id, facts where it fires, facts where it does not, source URL
ROWS = [
    ("baricitinib.hepatic.severe", {"hepatic_class": "C"}, {"hepatic_class": "B"}, MIMS),
    ("baricitinib.interaction.oat3", {"concomitant": [med("probenecid", "strong_oat3_inhibitor")]}, {"concomitant": [med("methotrexate")]}, MIMS),
    ("baricitinib.interaction.immunosuppressants", {"concomitant": [med("cyclosporine")]}, {"concomitant": [med("prednisone")]}, DERMADV),
    ("baricitinib.interaction.immunosuppressants", {"concomitant": [med("tofacitinib", "jak_inhibitor")]}, {"concomitant": [med("baricitinib", "jak_inhibitor")]}, DERMADV),
    ("baricitinib.start.tb", {"tb_status": "latent"}, {"tb_status": "latent_treated"}, OLU_DRUGS),
    ("baricitinib.start.tb", {"tb_status": "active"}, {"tb_status": "negative"}, OLU_DRUGS),
    ("baricitinib.start.hbv_core", {"hbv_status": "anti_hbc_positive"}, {"hbv_status": "negative"}, OLU_HCP),
    ("baricitinib.start.hepatitis", {"hcv_status": "positive"}, {"hcv_status": "negative"}, OLU_DRUGS),
    ("baricitinib.start.hepatitis", {"hbv_status": "hbsag_positive"}, {"hbv_status": "anti_hbc_positive"}, OLU_DRUGS),
    ("baricitinib.caution.active_infection", {"active_infection": True}, {"active_infection": False}, BOXED),
    ("baricitinib.caution.pregnancy", {"pregnant": True, "sex": "female"}, {"pregnant": False, "sex": "female"}, AAFP),
    ("baricitinib.caution.lactation", {"lactating": True, "sex": "female"}, {"lactating": False}, AAFP),
    ("baricitinib.caution.vte", {"vte_risk_factors": ["prior_vte"]}, {"vte_risk_factors": []}, MIMSDEV),
    ("baricitinib.caution.vte", {"vte_risk_factors": ["obesity"]}, {"vte_risk_factors": []}, MIMSDEV),
    ("baricitinib.caution.malignancy", {"malignancy_history": True}, {"malignancy_history": False}, BOXED),
    ("ritlecitinib.start.tb_active", {"tb_status": "active"}, {"tb_status": "latent"}, PFIZER_MI),
    ("ritlecitinib.start.tb_latent", {"tb_status": "latent"}, {"tb_status": "negative"}, PFIZER_MI),
    ("ritlecitinib.start.hepatitis", {"hbv_status": "hbsag_positive"}, {"hbv_status": "negative"}, PFIZER_MI),
    ("ritlecitinib.start.hepatitis", {"hcv_status": "positive"}, {"hcv_status": "negative"}, PFIZER_MI),
    ("ritlecitinib.caution.hbv_core", {"hbv_status": "anti_hbc_positive"}, {"hbv_status": "negative"}, PFIZER_MI),
    ("ritlecitinib.hepatic.severe", {"hepatic_class": "C"}, {"hepatic_class": "A"}, PFIZER_MI),
    ("ritlecitinib.renal.esrd", {"esrd_or_renal_transplant": True}, {"esrd_or_renal_transplant": False}, PFIZER_UK),
    ("ritlecitinib.interaction.cyp3a_inducer", {"concomitant": [med("rifampin", "strong_cyp3a_inducer")]}, {"concomitant": []}, PFIZER_DDI),
    ("ritlecitinib.caution.active_infection", {"active_infection": True}, {"active_infection": False}, OPENFDA),
    ("ritlecitinib.caution.malignancy", {"malignancy_history": True}, {"malignancy_history": False}, OPENFDA),
    ("ritlecitinib.caution.vte", {"vte_risk_factors": ["inherited_coagulation_disorder"]}, {"vte_risk_factors": ["obesity"]}, OPENFDA),
    ("deuruxolitinib.renal.esrd", {"esrd_or_renal_transplant": True}, {"esrd_or_renal_transplant": False}, DRUGS_DEU),
    ("deuruxolitinib.hepatic.severe", {"hepatic_class": "C"}, {"hepatic_class": "B"}, DRUGS_DEU),
    ("deuruxolitinib.interaction.immunosuppressants", {"concomitant": [med("upadacitinib", "jak_inhibitor")]}, {"concomitant": [med("methotrexate")]}, DRUGS_DEU),
    ("deuruxolitinib.start.cyp2c9_poor", {"cyp2c9_poor_metabolizer": True}, {"cyp2c9_poor_metabolizer": False}, MEDILIB),
    ("deuruxolitinib.interaction.cyp2c9_inhibitor", {"concomitant": [med("x", "moderate_or_strong_cyp2c9_inhibitor")]}, {"concomitant": []}, PT),
    ("deuruxolitinib.caution.active_infection", {"active_infection": True}, {"active_infection": False}, MONO),
    ("deuruxolitinib.caution.malignancy", {"malignancy_history": True}, {"malignancy_history": False}, MONO),
    ("deuruxolitinib.caution.vte", {"vte_risk_factors": ["prior_vte"]}, {"vte_risk_factors": []}, MONO),
    ("class.caution.zoster_unvaccinated", {"zoster_vaccinated": False}, {"zoster_vaccinated": True}, DRORACLE),
]


def _rule(rule_id):
    return next(r for r in default_kb().rules if r.id == rule_id)


@pytest.mark.parametrize("rule_id,fires,quiet,source", ROWS, ids=[r[0] for r in ROWS])
def test_rule_fires_and_stays_quiet(rule_id, fires, quiet, source):
    rule = _rule(rule_id)
    assert str(rule.source.url) == source
    drug = rule.drugs[0]
    assert evaluate_rule(rule, healthy_facts(**fires), drug) is True
    assert evaluate_rule(rule, healthy_facts(**quiet), drug) is False
    d = evaluate(healthy_facts(**fires), drug)
    assert rule_id in {r.rule_id for r in d.reasons} | {a.rule_id for a in (d.dose.adjustments if d.dose else [])}
    unknown = {f: None for f in rule.condition.facts}
    assert evaluate_rule(rule, healthy_facts(**unknown), drug) is None, "unknown fact is never read as normal"


def test_every_condition_rule_has_a_row():
    kb = default_kb()
    conditional = {r.id for r in kb.rules if r.condition is not None and r.threshold is None and r.kind != "screening"}
    assert conditional == {r[0] for r in ROWS}


@pytest.mark.parametrize("drug", ["baricitinib", "ritlecitinib", "deuruxolitinib"])
def test_healthy_adult_with_complete_record_may_start(drug):
    d = evaluate(healthy_facts(), drug)
    assert d.decision == "start", [r.rule_id for r in d.reasons] + [n.fact for n in d.not_assessed]
    assert d.missing_screening == [] and d.not_assessed == []
    assert d.disclaimer == "This supports, and does not replace, the clinician's judgement."


def test_unknown_facts_downgrade_to_cautions_and_are_listed():
    d = evaluate(healthy_facts(hepatic_class=None, malignancy_history=None), "baricitinib")
    assert d.decision == "start-with-cautions"
    assert {n.fact for n in d.not_assessed} == {"hepatic_class", "malignancy_history"}


def test_missing_screening_listed_with_sources():
    d = evaluate(healthy_facts(tb_status=None, hbv_status=None, zoster_vaccinated=None), "ritlecitinib")
    ids = {m.rule_id for m in d.missing_screening}
    assert {"ritlecitinib.screen.tb", "ritlecitinib.screen.hepatitis", "class.screen.zoster_vaccine"} <= ids
    assert d.decision == "start-with-cautions"
    assert "class.screen.zoster_vaccine" in d.partially_verified_rules  # [P] source is flagged


def test_pregnancy_screening_only_when_relevant_by_sex():
    male = evaluate(healthy_facts(sex="male", pregnant=None), "baricitinib")
    female = evaluate(healthy_facts(sex="female", pregnant=None), "baricitinib")
    assert "class.screen.pregnancy" not in {m.rule_id for m in male.missing_screening}
    assert "class.screen.pregnancy" in {m.rule_id for m in female.missing_screening}


def test_on_treatment_uses_interrupt_and_discontinue():
    from follicle.cds.facts import LabValue
    d = evaluate(healthy_facts(lymphocytes=LabValue.of("lymphocytes", 400, "cells/mm3")), "baricitinib", mode="on_treatment")
    assert [r.action for r in d.reasons] == ["interrupt"] and d.decision == "do-not-start"
    d = evaluate(healthy_facts(platelets=LabValue.of("platelets", 40_000, "cells/mm3")), "ritlecitinib", mode="on_treatment")
    assert d.reasons[0].action == "discontinue" and d.reasons[0].severity == "critical"
    # the start-only platelet rule (<100k) does not fire on treatment at 80k; the stop rule (<50k) does not either
    d = evaluate(healthy_facts(platelets=LabValue.of("platelets", 80_000, "cells/mm3")), "ritlecitinib", mode="on_treatment")
    assert d.reasons == []


def test_off_label_drug_never_plain_start_and_unknown_drug_is_an_error():
    from follicle.errors import InputError
    d = evaluate(healthy_facts(), "tofacitinib")
    assert d.decision == "start-with-cautions" and not d.approved_for_aa
    assert all(r.status == "P" for r in d.missing_screening)
    with pytest.raises(InputError, match="no sourced rules for 'upadacitinib'"):
        evaluate(healthy_facts(), "upadacitinib")
