"""Schemathesis against the app's OpenAPI schema: positive and negative (schema-violating) requests,
a bounded number per operation. No input may produce a 5xx, and responses must match the schema."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from service_helpers import make_app

schema = schemathesis.openapi.from_asgi("/openapi.json", make_app(docs_enabled=True))
schema.config.generation.update(modes=["positive", "negative"], max_examples=40, deterministic=True)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_never_5xx(case):
    response = case.call()
    assert response.status_code < 500, response.text
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance, content_type_conformance])
    if response.status_code >= 400:
        body = response.json()
        assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["diagnostics"]
