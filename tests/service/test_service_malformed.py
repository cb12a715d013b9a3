"""Malformed requests get a 4xx OperationOutcome naming the problem, never a 500."""

from __future__ import annotations

import pytest

from service_helpers import bundle_resources, order_request

ORDER = "/cds-services/aa-jaki-order-check"


def _outcome(r, status):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["diagnostics"]
    return " ".join(i["diagnostics"] for i in body["issue"])


def _labs_with(extra):
    return [r for r in bundle_resources() if r["resourceType"] == "Observation" and r["id"] != "bmi"] + [extra]


def test_not_json(client):
    assert "not valid JSON" in _outcome(client.post(ORDER, content=b"{nope", headers={"content-type": "application/json"}), 400)


def test_unknown_hook(client):
    assert "hook" in _outcome(client.post(ORDER, json=order_request(hook="encounter-start")), 422)


def test_bundle_without_patient(client):
    body = order_request(patient=bundle_resources()[1])  # an Observation where the Patient should be
    assert "no Patient" in _outcome(client.post(ORDER, json=body), 422)


def test_patient_id_mismatch(client):
    pt = dict(bundle_resources()[0], id="someone-else")
    assert "context.patientId" in _outcome(client.post(ORDER, json=order_request(patient=pt)), 422)


def test_lab_without_unit(client):
    obs = {"resourceType": "Observation", "id": "nounit", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "731-0"}]}, "valueQuantity": {"value": 450}}
    assert "Observation/nounit" in _outcome(client.post(ORDER, json=order_request(labs=_labs_with(obs))), 422)


def test_unknown_loinc(client):
    obs = {"resourceType": "Observation", "id": "bmi", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "39156-5"}]}, "valueQuantity": {"value": 24, "unit": "kg/m2"}}
    assert "39156-5" in _outcome(client.post(ORDER, json=order_request(labs=_labs_with(obs))), 422)


@pytest.mark.parametrize("mutate", [
    lambda b: b["context"].__setitem__("patientId", 17),
    lambda b: b.__setitem__("hookInstance", "not-a-uuid"),
    lambda b: b["context"].__setitem__("draftOrders", "a string"),
    lambda b: b["context"].__setitem__("draftOrders", {"resourceType": "Bundle", "entry": "x"}),
    lambda b: b["context"].__setitem__("draftOrders", {"resourceType": "Bundle", "entry": [{"resource": 5}]}),
    lambda b: b["prefetch"].__setitem__("labs", [1, 2]),
    lambda b: b["prefetch"]["labs"]["entry"].append({"resource": {"resourceType": "Observation", "id": "q",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]}, "valueQuantity": {"value": "eight", "unit": "g/dL"}}}),
    lambda b: b.pop("context"),
    lambda b: b.__setitem__("fhirAuthorization", {"access_token": "x", "token_type": "Bearer", "expires_in": 1, "scope": "s", "subject": "c"}),
])
def test_wrong_types(client, mutate):
    body = order_request()
    mutate(body)
    r = client.post(ORDER, json=body)
    assert 400 <= r.status_code < 500
    _outcome(r, r.status_code)


def test_unknown_service_and_method(client):
    _outcome(client.post("/cds-services/does-not-exist", json={}), 404)
    _outcome(client.get(ORDER), 405)
