"""Fixtures for the CDS Hooks service tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from follicle.service.settings import TrustedIssuer  # noqa: E402
from service_helpers import ISS, make_app  # noqa: E402


@pytest.fixture(scope="session")
def keys():
    ec_key = ec.generate_private_key(ec.SECP384R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())) | {"kid": "ec1", "use": "sig"}
    rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())) | {"kid": "rsa1", "use": "sig"}
    return {"ec": ec_key, "rsa": rsa_key, "jwks": {"keys": [ec_jwk, rsa_jwk]}}


@pytest.fixture
def client():
    return TestClient(make_app(), raise_server_exceptions=False)


@pytest.fixture
def secure_client(keys):
    app = make_app(auth_enabled=True, trusted_issuers=[TrustedIssuer(iss=ISS, jwks=keys["jwks"])])
    return TestClient(app, raise_server_exceptions=False)
