"""Transport hardening of the CDS service (issue 14, point 3): body limit and authentication before
parsing, fhirServer default-deny and address checks after DNS resolution, no upstream details
in errors, docs off by default, ``Cache-Control: no-store`` on every answer."""

from __future__ import annotations

import time

import httpx
import pytest
from fastapi.testclient import TestClient

from follicle.service.prefetch import address_allowed
from follicle.service.routers.services import get_fhir_transport, get_resolver
from follicle.service.settings import TrustedIssuer
from service_helpers import ISS, make_app, order_request, token

ORDER = "/cds-services/aa-jaki-order-check"
DISC = "/cds-services"


def _app_with_fetch(allowed, resolver=None, **settings):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500, text="internal upstream detail")

    app = make_app(allowed_fhir_servers=allowed, **settings)
    app.dependency_overrides[get_fhir_transport] = lambda: httpx.MockTransport(handler)
    if resolver is not None:
        app.dependency_overrides[get_resolver] = lambda: resolver
    return TestClient(app, raise_server_exceptions=False), seen


def _order_needing_fetch(server: str) -> dict:
    body = order_request(drop=("labs",))
    body["fhirServer"] = server
    body["fhirAuthorization"] = {"access_token": "ehr-secret", "token_type": "Bearer", "expires_in": 300,
                                 "scope": "patient/*.read", "subject": "cds"}
    return body


def test_unauthenticated_huge_body_is_refused_before_it_is_read(keys):
    app = make_app(auth_enabled=True, trusted_issuers=[TrustedIssuer(iss=ISS, jwks=keys["jwks"])])
    c = TestClient(app, raise_server_exceptions=False)
    read = 0

    def body():
        nonlocal read
        for _ in range(200):  # 200 MB if read to the end
            read += 1
            yield b"[" * 1_000_000

    t0 = time.perf_counter()
    r = c.post(ORDER, content=body(), headers={"Content-Type": "application/json"})
    assert r.status_code == 401 and r.json()["resourceType"] == "OperationOutcome"
    assert time.perf_counter() - t0 < 5 and read <= 2
    assert r.headers["cache-control"] == "no-store"


def test_body_over_the_limit_is_413_by_length_and_by_stream(keys):
    c = TestClient(make_app(max_body_bytes=10_000), raise_server_exceptions=False)
    big = b'{"hook": "order-sign", "x": "' + b"a" * 20_000 + b'"}'
    r = c.post(ORDER, content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "10000 bytes" in r.json()["issue"][0]["diagnostics"]

    def chunks():  # no Content-Length: counted while streaming
        yield big[:8000]
        yield big[8000:]

    r = c.post(ORDER, content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert c.post(ORDER, json=order_request()).status_code == 200  # a normal body still passes


def test_default_limit_is_one_megabyte():
    c = TestClient(make_app(), raise_server_exceptions=False)
    r = c.post(ORDER, content=b" " * 1_000_001, headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_docs_and_schema_are_off_unless_enabled():
    c = TestClient(make_app(), raise_server_exceptions=False)
    for path in ("/docs", "/redoc", "/openapi.json"):
        r = c.get(path)
        assert r.status_code == 404 and r.headers["cache-control"] == "no-store"
    on = TestClient(make_app(docs_enabled=True), raise_server_exceptions=False)
    assert on.get("/openapi.json").status_code == 200


@pytest.mark.parametrize("request_", [
    ("GET", DISC, None), ("POST", ORDER, "ok"), ("POST", ORDER, "bad"), ("GET", "/nowhere", None),
    ("DELETE", DISC, None), ("OPTIONS", DISC, None),
])
def test_every_answer_is_no_store(request_):
    method, path, body = request_
    c = TestClient(make_app(), raise_server_exceptions=False)
    kwargs = {}
    if body == "ok":
        kwargs["json"] = order_request()
    elif body == "bad":
        kwargs["content"] = b"{not json"
    headers = {"Origin": "https://ehr.example.org", "Access-Control-Request-Method": "POST"} if method == "OPTIONS" else {}
    r = c.request(method, path, headers=headers, **kwargs)
    assert r.headers.get("cache-control") == "no-store", (method, path, r.status_code)


def test_401_is_no_store(secure_client):
    r = secure_client.get(DISC)
    assert r.status_code == 401 and r.headers["cache-control"] == "no-store"


async def _public(host: str, port: int) -> list[str]:
    return ["93.184.215.14"]


def test_fhir_server_is_denied_when_no_allow_list_is_set():
    c, seen = _app_with_fetch([], _public)
    r = c.post(ORDER, json=_order_needing_fetch("https://ehr.example.org/fhir"))
    assert r.status_code == 412 and not seen
    assert "allow-list" in r.text and "ehr.example.org" not in r.text


@pytest.mark.parametrize("server", [
    "http://127.0.0.1/fhir", "http://2130706433/fhir", "http://evil@127.0.0.1/fhir", "http://169.254.169.254/fhir",
    "http://[::1]/fhir", "http://0.0.0.0/fhir", "http://10.1.2.3/fhir", "http://192.168.0.10/fhir",
    "http://[::ffff:127.0.0.1]/fhir", "file:///etc/passwd", "gopher://127.0.0.1/fhir", "http://localhost/fhir",
])
def test_special_addresses_and_schemes_are_refused_even_when_listed(server):
    c, seen = _app_with_fetch([server])  # the real resolver: IP literals and localhost need no network
    r = c.post(ORDER, json=_order_needing_fetch(server))
    assert r.status_code in (412, 422), r.text  # 422: the request model already refuses non-http(s)
    assert not seen, "nothing may be fetched"
    if r.status_code == 412:
        assert "127.0.0.1" not in r.text and "169.254" not in r.text


def test_a_listed_name_that_resolves_to_loopback_is_refused():
    async def rebinding(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "127.0.0.1"]

    c, seen = _app_with_fetch(["https://ehr.example.org/fhir"], rebinding)
    assert c.post(ORDER, json=_order_needing_fetch("https://ehr.example.org/fhir")).status_code == 412 and not seen


def test_private_address_needs_the_explicit_setting():
    async def on_premise(host: str, port: int) -> list[str]:
        return ["10.20.30.40"]

    c, seen = _app_with_fetch(["https://ehr.local/fhir"], on_premise)
    assert c.post(ORDER, json=_order_needing_fetch("https://ehr.local/fhir")).status_code == 412 and not seen
    c, seen = _app_with_fetch(["https://ehr.local/fhir"], on_premise, allow_private_fhir_servers=True)
    c.post(ORDER, json=_order_needing_fetch("https://ehr.local/fhir"))
    assert seen and seen[0].url.host == "10.20.30.40"


def test_fetch_is_pinned_to_the_checked_address_and_errors_echo_nothing():
    c, seen = _app_with_fetch(["https://ehr.example.org:8443/fhir"], _public)
    r = c.post(ORDER, json=_order_needing_fetch("https://ehr.example.org:8443/fhir"))
    assert r.status_code == 412
    assert seen and seen[0].url.host == "93.184.215.14" and seen[0].url.port == 8443
    assert seen[0].headers["host"] == "ehr.example.org:8443" and seen[0].headers["authorization"] == "Bearer ehr-secret"
    assert seen[0].extensions.get("sni_hostname") == "ehr.example.org"
    diag = r.json()["issue"][0]["diagnostics"]
    assert "500" not in diag and "ehr.example.org" not in diag and "93.184" not in diag and "upstream" not in diag


@pytest.mark.parametrize("ip,ok", [("8.8.8.8", True), ("127.0.0.5", False), ("169.254.169.254", False),
                                   ("10.0.0.1", False), ("172.16.5.4", False), ("100.64.0.1", False),
                                   ("fe80::1", False), ("::1", False), ("224.0.0.1", False), ("2606:4700::1111", True)])
def test_address_rules(ip, ok):
    assert address_allowed(ip, allow_private=False) is ok


def test_token_checked_once_so_a_valid_post_is_not_a_replay(keys):
    app = make_app(auth_enabled=True, trusted_issuers=[TrustedIssuer(iss=ISS, jwks=keys["jwks"])])
    c = TestClient(app, raise_server_exceptions=False)
    tok = token(keys, ORDER)
    assert c.post(ORDER, json=order_request(), headers={"Authorization": f"Bearer {tok}"}).status_code == 200
    assert c.post(ORDER, json=order_request(), headers={"Authorization": f"Bearer {tok}"}).status_code == 401
