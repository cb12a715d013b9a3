"""JWT bearer verification per CDS Hooks 2.0 Security (clinical.md §4): asymmetric only, issuer allow-list
with JWKS, aud = endpoint URL, exp, jti replay protection."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from follicle.service.settings import TrustedIssuer
from service_helpers import BASE, ISS, make_app, order_request, token

DISC = "/cds-services"
ORDER = "/cds-services/aa-jaki-order-check"


def _get(client, tok, path=DISC):
    return client.get(path, headers={"Authorization": f"Bearer {tok}"})


def _is_401(r):
    assert r.status_code == 401, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert r.headers["www-authenticate"].startswith("Bearer")
    return r.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_valid_asymmetric_tokens_accepted(secure_client, keys, alg):
    assert _get(secure_client, token(keys, DISC, alg=alg)).status_code == 200
    r = secure_client.post(ORDER, json=order_request(), headers={"Authorization": f"Bearer {token(keys, ORDER, alg=alg)}"})
    assert r.status_code == 200 and r.json()["cards"]


def test_unsigned_token_rejected(secure_client, keys):
    now = int(time.time())
    tok = jwt.encode({"iss": ISS, "aud": BASE + DISC, "exp": now + 60, "iat": now, "jti": "u1"}, None, algorithm="none")
    assert "'none' is not allowed" in _is_401(_get(secure_client, tok))


def test_hs256_rejected(secure_client, keys):
    now = int(time.time())
    tok = jwt.encode({"iss": ISS, "aud": BASE + DISC, "exp": now + 60, "iat": now, "jti": "h1"}, "a-shared-secret-of-32-bytes-len!", algorithm="HS256")
    assert "'HS256' is not allowed" in _is_401(_get(secure_client, tok))


def test_expired_rejected(secure_client, keys):
    assert "expired" in _is_401(_get(secure_client, token(keys, DISC, exp_in=-30)))


def test_wrong_audience_rejected(secure_client, keys):
    assert "aud must be" in _is_401(_get(secure_client, token(keys, DISC, aud=BASE + ORDER)))
    # a token for the discovery endpoint cannot be replayed against a service endpoint
    r = secure_client.post(ORDER, json=order_request(), headers={"Authorization": f"Bearer {token(keys, DISC)}"})
    _is_401(r)


def test_unknown_issuer_rejected(secure_client, keys):
    assert "not on the allow-list" in _is_401(_get(secure_client, token(keys, DISC, iss="https://evil.example.org")))


def test_replayed_jti_rejected(secure_client, keys):
    tok = token(keys, DISC, jti=str(uuid.uuid4()))
    assert _get(secure_client, tok).status_code == 200
    assert "replay" in _is_401(_get(secure_client, tok))


def test_missing_or_broken_tokens_rejected(secure_client, keys):
    _is_401(secure_client.get(DISC))
    _is_401(_get(secure_client, "not.a.jwt"))
    other = ec.generate_private_key(ec.SECP384R1())
    _is_401(_get(secure_client, token(keys, DISC, key=other)))  # signed by a key not in the JWKS
    _is_401(_get(secure_client, token(keys, DISC, kid="nope")))
    _is_401(_get(secure_client, token(keys, DISC, alg="ES384", kid="rsa1")))  # key type does not match alg
    now = int(time.time())
    no_jti = jwt.encode({"iss": ISS, "aud": BASE + DISC, "exp": now + 60, "iat": now}, keys["ec"], algorithm="ES384", headers={"kid": "ec1"})
    _is_401(_get(secure_client, no_jti))
    jku = jwt.encode({"iss": ISS, "aud": BASE + DISC, "exp": now + 60, "iat": now, "jti": "j"}, keys["ec"], algorithm="ES384",
                     headers={"kid": "ec1", "jku": "https://evil.example.org/jwks"})
    assert "jku" in _is_401(_get(secure_client, jku))


def test_public_base_url_sets_audience(keys):
    app = make_app(auth_enabled=True, public_base_url="https://cds.example.org/",
                   trusted_issuers=[TrustedIssuer(iss=ISS, jwks=keys["jwks"])])
    c = TestClient(app, raise_server_exceptions=False)
    assert _get(c, token(keys, DISC, aud="https://cds.example.org/cds-services")).status_code == 200
    assert _get(c, token(keys, DISC)).status_code == 401  # the internal URL is not the audience


def test_issuers_from_file(tmp_path, keys):
    import json
    f = tmp_path / "issuers.json"
    f.write_text(json.dumps([{"iss": ISS, "jwks": keys["jwks"]}]))
    c = TestClient(make_app(auth_enabled=True, trusted_issuers_file=f), raise_server_exceptions=False)
    assert _get(c, token(keys, DISC, alg="RS384")).status_code == 200
