"""Hypothesis fuzzing of FHIR content inside CDS Hooks requests: prefetch labs and draft orders.
Every response is 200 or a 4xx OperationOutcome, never a 5xx."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parents[1] / "cds"))
from fhir_strategies import bundles, json_values, observations, resources  # noqa: E402
from service_helpers import make_app, med_request, order_request, searchset  # noqa: E402

ORDER = "/cds-services/aa-jaki-order-check"
client = TestClient(make_app(), raise_server_exceptions=False)


def _post(body):
    """POST *body* as a client could write it: NaN and Infinity (which httpx's strict encoder refuses)
    go over the wire as Python's json writes them, and the service must still answer 200 or 4xx."""
    return client.post(ORDER, content=json.dumps(body, allow_nan=True), headers={"content-type": "application/json"})


def _ok(r):
    assert r.status_code == 200 or (400 <= r.status_code < 500), r.text
    if r.status_code != 200:
        assert r.json()["resourceType"] == "OperationOutcome"
    else:
        assert all(len(c["summary"]) < 140 for c in r.json()["cards"])


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(labs=st.lists(observations, max_size=5), extra=st.lists(resources, max_size=2))
def test_fuzzed_labs(labs, extra):
    body = order_request()
    body["prefetch"]["labs"] = searchset(labs + extra)
    _ok(_post(body))


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(drafts=bundles | json_values, patient=resources | json_values)
def test_fuzzed_draft_orders_and_patient(drafts, patient):
    body = order_request(orders=[med_request()])
    body["context"]["draftOrders"] = drafts
    _ok(_post(body))
    body = order_request()
    body["prefetch"]["patient"] = patient
    _ok(_post(body))
