"""CDS Hooks 2.0 behaviour (clinical.md §4): discovery, cards, prefetch and 412, feedback."""

from __future__ import annotations

import httpx

from follicle.service.routers.services import get_fhir_transport
from service_helpers import make_app, med_request, order_request, patient_view_request, bundle_resources

DISCLAIMER = "This supports, and does not replace, the clinician's judgement."
ORDER = "/cds-services/aa-jaki-order-check"
VIEW = "/cds-services/aa-jaki-monitoring"


def _check_cards(cards):
    for c in cards:
        assert len(c["summary"]) < 140
        assert c["indicator"] in ("info", "warning", "critical")
        assert c["source"]["label"]
        assert DISCLAIMER in c["detail"]
        if c.get("suggestions"):
            assert c["selectionBehavior"] in ("at-most-one", "any")


def test_discovery(client):
    r = client.get("/cds-services")
    assert r.status_code == 200
    services = r.json()["services"]
    assert {(s["hook"], s["id"]) for s in services} == {
        ("patient-view", "aa-jaki-monitoring"), ("order-sign", "aa-jaki-order-check"), ("order-select", "aa-jaki-order-check")}
    for s in services:
        assert s["description"] and s["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert "http://loinc.org|731-0" in s["prefetch"]["labs"]


def test_order_sign_cards(client):
    r = client.post(ORDER, json=order_request())
    assert r.status_code == 200, r.text
    cards = r.json()["cards"]
    _check_cards(cards)
    summaries = " | ".join(c["summary"] for c in cards)
    assert "reduce dose" in summaries and "ordered 4 mg" in summaries  # eGFR 52 -> step-down
    step = next(c for c in cards if "reduce dose" in c["summary"])
    assert "partially verified" in step["detail"] and "medscape" in step["source"]["url"]


def test_order_sign_do_not_start_with_critical_card(client):
    labs = [r for r in bundle_resources() if r["resourceType"] == "Observation" and r["id"] != "bmi"]
    for r in labs:
        if r["id"] == "alc":
            r["valueQuantity"] = {"value": 450, "unit": "cells/mm3"}
    r = client.post(ORDER, json=order_request(labs=labs))
    cards = r.json()["cards"]
    crit = [c for c in cards if c["indicator"] == "critical"]
    assert len(crit) == 2 and all("do not start" in c["summary"] and c["overrideReasons"] for c in crit)
    assert crit[0]["summary"] == "Baricitinib (US): do not start"  # the lead decision card
    assert "Rule `baricitinib.us.lymphocytes`" in crit[1]["detail"] and 'Label text: "In patients with' in crit[1]["detail"]


def test_missing_cbc_suggests_cbc_order(client):
    labs = [r for r in bundle_resources() if r["resourceType"] == "Observation" and r["id"] in ("egfr", "igra")]
    cards = client.post(ORDER, json=order_request(labs=labs)).json()["cards"]
    screen = next(c for c in cards if c["summary"].startswith("Screening missing"))
    action = screen["suggestions"][0]["actions"][0]
    assert action["resource"]["code"]["coding"][0]["code"] == "58410-2"


def test_concomitant_draft_order_counts(client):
    orders = [med_request(), med_request("mr2", "3008", "cyclosporine")]
    cards = client.post(ORDER, json=order_request(orders=orders)).json()["cards"]
    assert any(c["indicator"] == "critical" and "cyclosporine" in c["detail"] for c in cards)


def test_order_select_only_selected(client):
    orders = [med_request("a"), med_request("b", "0", "ritlecitinib 50 MG Oral Capsule")]
    body = order_request(hook="order-select", orders=orders)
    body["context"]["selections"] = ["MedicationRequest/b"]
    cards = client.post(ORDER, json=body).json()["cards"]
    assert cards and all("aricitinib" not in c["summary"] for c in cards)
    assert any("matched to ritlecitinib by name" in c["detail"] for c in cards)


def test_no_jak_inhibitor_no_cards(client):
    r = client.post(ORDER, json=order_request(orders=[med_request(code="6851", display="methotrexate")], drop=("labs",)))
    assert r.status_code == 200 and r.json() == {"cards": []}


def test_unsourced_drug_gets_info_card(client):
    r = client.post(ORDER, json=order_request(orders=[med_request(code="0", display="upadacitinib 15 MG")]))
    cards = r.json()["cards"]
    assert len(cards) == 1 and cards[0]["indicator"] == "info" and "nothing was checked" in cards[0]["summary"]
    assert "label not encoded" in cards[0]["summary"]


def test_tofacitinib_and_eu_deuruxolitinib_are_refused_with_the_reason():
    from fastapi.testclient import TestClient
    c = TestClient(make_app(), raise_server_exceptions=False)
    cards = c.post(ORDER, json=order_request(orders=[med_request(code="1357536", display="tofacitinib 5 MG")])).json()["cards"]
    assert len(cards) == 1 and "not approved for alopecia areata" in cards[0]["detail"]
    eu = TestClient(make_app(region="EU"), raise_server_exceptions=False)
    cards = eu.post(ORDER, json=order_request(orders=[med_request(code="0", display="Leqselvi 8 MG")])).json()["cards"]
    assert len(cards) == 1 and "No EU SmPC" in cards[0]["detail"]


def test_region_setting_picks_the_label_and_the_card_says_where_they_differ():
    from fastapi.testclient import TestClient
    body = order_request()
    body["prefetch"]["patient"] = dict(body["prefetch"]["patient"], gender="female")
    body["prefetch"]["labs"]["entry"].append({"resource": {
        "resourceType": "Observation", "id": "hcg", "status": "final", "valueString": "Positive", "effectiveDateTime": "2026-01-30",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2106-3"}]}}})
    eu = TestClient(make_app(region="EU"), raise_server_exceptions=False).post(ORDER, json=body).json()["cards"]
    us = TestClient(make_app(region="US"), raise_server_exceptions=False).post(ORDER, json=body).json()["cards"]
    assert eu[0]["summary"].startswith("Baricitinib (EU): do not start") and "EU SmPC" in eu[0]["detail"]
    assert "Rule `baricitinib.eu.pregnancy`" in "".join(c["detail"] for c in eu)
    assert "Rule `baricitinib.us.pregnancy`" in "".join(c["detail"] for c in us)
    assert "pregnancy: EU SmPC 4.3 Contraindications: do not start; US prescribing information 8.1 Pregnancy: caution" in eu[0]["detail"]


def test_conditions_and_medication_statements_are_read(client):
    body = order_request(orders=[med_request(code="0", display="Leqselvi 8 MG Oral Tablet")])
    body["prefetch"]["conditions"] = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
        "resourceType": "Condition", "id": "tb", "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "A15.0"}]}}}]}
    body["prefetch"]["medication_statements"] = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
        "resourceType": "MedicationStatement", "id": "flu", "status": "active", "medicationCodeableConcept": {"text": "fluconazole 150 MG"}}}]}
    cards = client.post(ORDER, json=body).json()["cards"]
    text = "".join(c["detail"] for c in cards)
    assert cards[1]["summary"] == "Deuruxolitinib (US): do not start"  # after the no-AA-diagnosis note
    assert "Rule `deuruxolitinib.us.tb_active`" in text and "Rule `deuruxolitinib.us.cyp2c9_inhibitor`" in text
    assert "Condition/tb: tb_status = 'active' (no clinicalStatus: read as current)" in text


def test_412_when_prefetch_missing_and_no_fhir_server(client):
    r = client.post(ORDER, json=order_request(drop=("labs",)))
    assert r.status_code == 412
    assert r.json()["resourceType"] == "OperationOutcome" and "labs" in r.json()["issue"][0]["diagnostics"]
    body = order_request()
    body["prefetch"]["patient"] = None
    assert client.post(ORDER, json=body).status_code == 412


def test_fetches_missing_prefetch_from_fhir_server():
    from fastapi.testclient import TestClient

    seen = []
    body = order_request(drop=("labs",))
    labs = body  # placeholder to keep names short
    lab_bundle = order_request()["prefetch"]["labs"]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        if request.url.path.endswith("/Observation"):
            return httpx.Response(200, json=lab_bundle)
        return httpx.Response(404)

    app = make_app()
    app.dependency_overrides[get_fhir_transport] = lambda: httpx.MockTransport(handler)
    c = TestClient(app, raise_server_exceptions=False)
    body["fhirServer"] = "https://ehr.example.org/fhir"
    body["fhirAuthorization"] = {"access_token": "abc", "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read", "subject": "cds"}
    r = c.post(ORDER, json=body)
    assert r.status_code == 200, r.text
    assert seen and "patient=pt1" in seen[0][0] and seen[0][1] == "Bearer abc"
    # a failing server for a required key -> 412
    app.dependency_overrides[get_fhir_transport] = lambda: httpx.MockTransport(lambda req: httpx.Response(500))
    assert c.post(ORDER, json=body).status_code == 412
    del labs


def test_patient_view_overdue_and_abnormal(client):
    meds = [med_request("rit", "0", "ritlecitinib 50 MG Oral Capsule", status="active", authored="2025-12-01")]
    labs = [r for r in bundle_resources() if r["resourceType"] == "Observation" and r["id"] != "bmi"]
    labs.append({"resourceType": "Observation", "id": "plt", "status": "final",
                 "code": {"coding": [{"system": "http://loinc.org", "code": "777-3"}]},
                 "effectiveDateTime": "2025-11-20", "valueQuantity": {"value": 45, "unit": "10*3/uL"}})
    r = client.post(VIEW, json=patient_view_request(meds, labs=labs))
    assert r.status_code == 200, r.text
    cards = r.json()["cards"]
    _check_cards(cards)
    assert any(c["indicator"] == "critical" and "discontinue" in c["summary"] for c in cards)  # platelets < 50k
    overdue = next(c for c in cards if "monitoring overdue" in c["summary"])  # no platelets since start: week 4 overdue
    assert "Lymphocytes and platelets (4 weeks)" in overdue["summary"] and "missing: platelets" in overdue["detail"]
    assert overdue["suggestions"][0]["actions"][0]["resource"]["resourceType"] == "ServiceRequest"


def test_patient_view_not_on_therapy_no_cards(client):
    r = client.post(VIEW, json=patient_view_request([med_request(code="6851", display="methotrexate", status="active")]))
    assert r.status_code == 200 and r.json()["cards"] == []


def test_patient_view_requires_medications(client):
    r = client.post(VIEW, json=patient_view_request([], drop=("medications",)))
    assert r.status_code == 412


def test_feedback(client):
    body = {"feedback": [{"card": "abc", "outcome": "overridden", "overrideReason": {"reason": {"code": "clinician-judgement"}},
                          "outcomeTimestamp": "2026-02-01T10:00:00Z"}]}
    r = client.post("/cds-services/aa-jaki-order-check/feedback", json=body)
    assert r.status_code == 200 and r.json() == {"received": 1}
    assert client.post("/cds-services/nope/feedback", json=body).status_code == 404
    assert client.post("/cds-services/aa-jaki-order-check/feedback", json={"feedback": []}).status_code == 422


def test_no_aa_diagnosis_info_card(client):
    body = order_request()
    body["prefetch"]["conditions"] = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
        "resourceType": "Condition", "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F41.1"}]}}}]}
    cards = client.post(ORDER, json=body).json()["cards"]
    assert any("No alopecia areata diagnosis" in c["summary"] for c in cards)
    body["prefetch"]["conditions"]["entry"][0]["resource"]["code"]["coding"][0]["code"] = "L63.9"
    cards = client.post(ORDER, json=body).json()["cards"]
    assert not any("No alopecia areata diagnosis" in c["summary"] for c in cards)


def test_patient_view_shows_lab_reasons_not_start_cautions(client):
    pt = dict(bundle_resources()[0], birthDate="1950-01-01")  # age >= 65: a start-time caution only
    body = patient_view_request([med_request(status="active", authored="2026-01-20")])
    body["prefetch"]["patient"] = pt
    cards = client.post(VIEW, json=body).json()["cards"]
    assert not any("65" in c["summary"] for c in cards)
    assert any("reduce dose" in c["summary"] for c in cards)  # eGFR 52 on therapy: step-down [P]


def test_fhir_server_allow_list_and_id_escaping():
    from fastapi.testclient import TestClient

    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "entry": []})

    app = make_app(allowed_fhir_servers=["https://ehr.example.org/fhir"])
    app.dependency_overrides[get_fhir_transport] = lambda: httpx.MockTransport(handler)
    c = TestClient(app, raise_server_exceptions=False)
    body = order_request(drop=("labs",))
    body["fhirServer"] = "https://elsewhere.example.org/fhir"
    r = c.post(ORDER, json=body)
    assert r.status_code == 412 and "allow-list" in r.text and not seen
    body["fhirServer"] = "https://ehr.example.org/fhir"
    body["context"]["patientId"] = "../Patient/x"
    body["prefetch"]["patient"] = dict(body["prefetch"]["patient"], id="../Patient/x")
    c.post(ORDER, json=body)
    assert seen and "patient=..%2FPatient%2Fx" in seen[0]


def test_patient_view_renal_limit_on_treatment_reads_not_recommended(client):
    labs = [r for r in bundle_resources() if r["resourceType"] == "Observation" and r["id"] != "bmi"]
    for r in labs:
        if r["id"] == "egfr":
            r["valueQuantity"] = {"value": 25, "unit": "mL/min/{1.73_m2}"}
    body = patient_view_request([med_request(status="active", authored="2026-01-20")], labs=labs)
    cards = client.post(VIEW, json=body).json()["cards"]
    crit = [c for c in cards if c["indicator"] == "critical"]
    assert crit and "not recommended" in crit[0]["summary"] and "do not start" not in crit[0]["summary"]


def test_discovery_has_no_null_fields(client):
    assert "null" not in client.get("/cds-services").text


def test_renewal_is_noted(client):
    body = order_request()
    body["prefetch"]["medications"]["entry"].append({"resource": med_request("old", status="active", authored="2025-06-01")})
    cards = client.post(ORDER, json=body).json()["cards"]
    assert any("already has an active baricitinib order" in c["detail"] for c in cards)


def test_draft_order_by_medication_reference_is_checked(client):
    """Second review: a draft order naming its drug by medicationReference (contained Medication) was not
    recognised as a JAK inhibitor, so no card came back at all."""
    draft = med_request()
    draft.pop("medicationCodeableConcept")
    draft["medicationReference"] = {"reference": "#olu"}
    draft["contained"] = [{"resourceType": "Medication", "id": "olu", "code": {"coding": [
        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "2047232", "display": "baricitinib"}]}}]
    cards = client.post(ORDER, json=order_request(orders=[draft])).json()["cards"]
    assert cards and cards[0]["summary"].startswith("Baricitinib (US)")


def test_stale_labs_and_recent_live_vaccination_in_the_service():
    """Second review: results older than the window are not current (setting ``max_result_age_days``), and a
    live vaccination in the immunizations prefetch counts."""
    from fastapi.testclient import TestClient
    late = TestClient(make_app(today="2026-09-01"), raise_server_exceptions=False)
    cards = late.post(ORDER, json=order_request()).json()["cards"]
    assert cards[0]["summary"].startswith("Baricitinib (US): cannot decide") and "lymphocytes" in cards[0]["detail"]
    assert any("older than 90 days" in c["detail"] for c in cards)
    lenient = TestClient(make_app(today="2026-09-01", max_result_age_days=365), raise_server_exceptions=False)
    assert "older than" not in " ".join(c["detail"] for c in lenient.post(ORDER, json=order_request()).json()["cards"])
    body = order_request()
    body["prefetch"]["immunizations"] = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
        "resourceType": "Immunization", "id": "yf", "status": "completed", "occurrenceDateTime": "2026-01-20",
        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "21"}]}, "patient": {"reference": "Patient/pt1"}}}]}
    eu = TestClient(make_app(region="EU"), raise_server_exceptions=False).post(ORDER, json=body).json()["cards"]
    assert eu[0]["summary"].startswith("Baricitinib (EU): do not start") and "Rule `baricitinib.eu.live_vaccine`" in " ".join(c["detail"] for c in eu)


def test_other_draft_orders_do_not_make_an_unknown_medication_list_known(client):
    """Second review: without the medications prefetch the medication list is unknown; another draft order
    made it "known" (just the drafts), so the combination rule read "none" and the decision could be start."""
    orders = [med_request(), med_request("mr2", "6851", "methotrexate")]
    body = order_request(orders=orders, drop=("medications",))
    cards = client.post(ORDER, json=body).json()["cards"]
    assert cards[0]["summary"].startswith("Baricitinib (US): cannot decide") and "concomitant" in cards[0]["detail"]
    orders = [med_request(), med_request("mr2", "3008", "cyclosporine")]  # a draft that fires still fires
    cards = client.post(ORDER, json=order_request(orders=orders, drop=("medications",))).json()["cards"]
    assert cards[0]["summary"] == "Baricitinib (US): do not start"


def test_patient_view_shows_a_contraindication_arising_on_treatment():
    """Second review: on treatment only lab-driven reasons became cards, so a new pregnancy on baricitinib
    (EU: contraindicated) or fluconazole started on deuruxolitinib (contraindicated) gave no card at all."""
    from fastapi.testclient import TestClient
    body = patient_view_request([med_request(status="active", authored="2026-01-10")])
    body["prefetch"]["labs"]["entry"].append({"resource": {
        "resourceType": "Observation", "id": "hcg", "status": "final", "valueString": "Positive", "effectiveDateTime": "2026-01-30",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2106-3"}]}}})
    cards = TestClient(make_app(region="EU"), raise_server_exceptions=False).post(VIEW, json=body).json()["cards"]
    preg = [c for c in cards if "Rule `baricitinib.eu.pregnancy`" in c["detail"]]
    assert preg and preg[0]["indicator"] == "critical" and "not recommended" in preg[0]["summary"]
    meds = [med_request("leq", "0", "Leqselvi 8 MG Oral Tablet", status="active", authored="2026-01-10"),
            med_request("flu", "0", "fluconazole 150 MG Oral Tablet", status="active")]
    cards = TestClient(make_app(region="US"), raise_server_exceptions=False).post(VIEW, json=patient_view_request(meds)).json()["cards"]
    assert any(c["indicator"] == "critical" and "Rule `deuruxolitinib.us.cyp2c9_inhibitor`" in c["detail"] for c in cards)
