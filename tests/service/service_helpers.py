"""Builders for the CDS Hooks service tests (keys, tokens, requests)."""

from __future__ import annotations

import copy
import json
import time
import uuid
from pathlib import Path

import jwt

from follicle.service.main import create_app
from follicle.service.settings import CdsSettings, get_settings

BUNDLE = Path(__file__).parents[1] / "cds" / "data" / "patient_bundle.json"
ISS = "https://ehr.example.org"
BASE = "http://testserver"


def make_app(**settings):
    app = create_app()
    s = CdsSettings(**({"auth_enabled": False, "today": "2026-02-01", "region": "US"} | settings))
    app.dependency_overrides[get_settings] = lambda: s
    return app


def token(keys, path, *, alg="ES384", kid=None, iss=ISS, aud=None, exp_in=300, jti=None, key=None, **extra_claims):
    now = int(time.time())
    claims = {"iss": iss, "aud": aud or BASE + path, "exp": now + exp_in, "iat": now, "jti": jti or str(uuid.uuid4())} | extra_claims
    if key is None:
        key = keys["ec"] if alg.startswith("ES") else keys["rsa"]
    kid = kid or ("ec1" if alg.startswith("ES") else "rsa1")
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def bundle_resources():
    b = json.loads(BUNDLE.read_text())
    return [e["resource"] for e in b["entry"]]


def searchset(resources):
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def med_request(id_="mr1", code="2047232", display="baricitinib", status="draft", mg=None, authored=None):
    r = {"resourceType": "MedicationRequest", "id": id_, "status": status, "intent": "order",
         "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code, "display": display}]},
         "subject": {"reference": "Patient/pt1"}}
    if mg is not None:
        r["dosageInstruction"] = [{"doseAndRate": [{"doseQuantity": {"value": mg, "unit": "mg"}}]}]
    if authored:
        r["authoredOn"] = authored
    return r


def order_request(hook="order-sign", orders=None, labs=None, patient=None, drop=(), **extra):
    res = bundle_resources()
    pt = patient if patient is not None else res[0]
    lab = labs if labs is not None else [r for r in res if r["resourceType"] == "Observation" and r["id"] != "bmi"]
    meds = [r for r in res if r["resourceType"] == "MedicationRequest"]
    body = {
        "hook": hook, "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/p1", "patientId": "pt1",
                    "draftOrders": searchset(orders if orders is not None else [med_request(mg=4)])},
        "prefetch": {"patient": pt, "labs": searchset(lab), "medications": searchset(meds)},
    }
    for k in drop:
        body["prefetch"].pop(k)
    body.update(extra)
    return copy.deepcopy(body)


def patient_view_request(meds, labs=None, drop=()):
    res = bundle_resources()
    lab = labs if labs is not None else [r for r in res if r["resourceType"] == "Observation" and r["id"] != "bmi"]
    body = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/p1", "patientId": "pt1"},
            "prefetch": {"patient": res[0], "labs": searchset(lab), "medications": searchset(meds)}}
    for k in drop:
        body["prefetch"].pop(k)
    return body
