"""JWT bearer verification as CDS Hooks 2.0 requires (clinical.md §4, Security).

* asymmetric algorithms only: ``none`` and HMAC (``HS*``) are refused before anything else;
* ``iss`` must be on the allow-list; its public keys come from the configured JWK Set
  (no network: a ``jku`` header must equal the configured one when given);
* ``aud`` must be the exact URL of the endpoint called; ``exp``, ``iat`` and ``jti`` are required;
* a ``jti`` seen before (per issuer, until the token expires) is a replay and is refused.

Every failure is a 401 with an OperationOutcome body. Verification can be switched off with
``FOLLICLE_CDS_AUTH_ENABLED=false`` for a local demo.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from follicle.service.settings import CdsSettings, get_settings

ALLOWED_ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")

_bearer = HTTPBearer(auto_error=False, description="JWT signed by the CDS client (ES384 or RS384 recommended).")


class AuthError(HTTPException):
    """401 with the reason; rendered as an OperationOutcome."""

    def __init__(self, reason: str) -> None:
        super().__init__(status_code=401, detail=f"authorization: {reason}",
                         headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class JtiCache:
    """Seen ``(iss, jti)`` pairs, each kept until its token's ``exp``."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def check_and_add(self, iss: str, jti: str, exp: float) -> bool:
        """True if new (and now remembered), False if replayed."""
        now = time.time()
        with self._lock:
            if len(self._seen) >= self.max_entries:
                self._seen = {k: v for k, v in self._seen.items() if v >= now}
                if len(self._seen) >= self.max_entries:
                    raise AuthError("too many live tokens; try again later")
            key = (iss, jti)
            if key in self._seen and self._seen[key] >= now:
                return False
            self._seen[key] = exp
            return True


_KEYS: dict[str, jwt.PyJWK] = {}


def _public_key(jwk: dict[str, Any], alg: str) -> jwt.PyJWK:
    """The parsed public key for a JWK and algorithm, cached (parsing costs more than verifying)."""
    cache_key = alg + json.dumps(jwk, sort_keys=True)
    key = _KEYS.get(cache_key)
    if key is None:
        key = jwt.PyJWK(jwk, algorithm=alg)
        if len(_KEYS) < 1024:
            _KEYS[cache_key] = key
    return key


def endpoint_url(request: Request, settings: CdsSettings) -> str:
    """The URL the client called, which ``aud`` must equal."""
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/") + request.url.path
    return str(request.url.replace(query=""))


def verify_token(token: str, *, audience: str, settings: CdsSettings, jti_cache: JtiCache) -> dict[str, Any]:
    """Check a CDS client's JWT; return its claims or raise :class:`AuthError`."""
    try:
        unverified_full = jwt.api_jwt.decode_complete(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AuthError(f"malformed token ({exc})") from None
    header, unverified = unverified_full["header"], unverified_full["payload"]
    alg = header.get("alg")
    if alg not in ALLOWED_ALGORITHMS:
        raise AuthError(f"algorithm {alg!r} is not allowed; use an asymmetric algorithm such as ES384 or RS384")
    iss = unverified.get("iss")
    issuer = settings.issuers().get(iss) if isinstance(iss, str) else None
    if issuer is None:
        raise AuthError(f"issuer {iss!r} is not on the allow-list")
    if header.get("jku") is not None and header.get("jku") != issuer.jku:
        raise AuthError(f"jku {header.get('jku')!r} is not the one configured for issuer {iss!r}")
    keys = [k for k in issuer.jwks.get("keys", []) if isinstance(k, dict)]
    kid = header.get("kid")
    if kid is not None:
        keys = [k for k in keys if k.get("kid") == kid]
    if len(keys) != 1:
        raise AuthError(f"no unique key {kid!r} in the JWK Set of issuer {iss!r}")
    try:
        key = _public_key(keys[0], alg)
        claims = jwt.decode(
            token, key=key, algorithms=[alg], audience=audience, issuer=iss, leeway=settings.leeway_seconds,
            options={"require": ["iss", "aud", "exp", "iat", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("token has expired") from None
    except jwt.InvalidAudienceError:
        raise AuthError(f"aud must be the endpoint URL {audience!r}") from None
    except jwt.PyJWTError as exc:
        raise AuthError(f"token rejected ({type(exc).__name__}: {exc})") from None
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise AuthError("jti must be a non-empty string")
    if not jti_cache.check_and_add(iss, claims["jti"], float(claims["exp"]) + settings.leeway_seconds):
        raise AuthError("jti has been used before (replay)")
    return claims


async def require_client(
    request: Request,
    settings: Annotated[CdsSettings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> dict[str, Any] | None:
    """FastAPI dependency: the verified claims, or None when verification is switched off."""
    if not settings.auth_enabled:
        return None
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise AuthError("missing bearer token")
    return verify_token(credentials.credentials, audience=endpoint_url(request, settings),
                        settings=settings, jti_cache=request.app.state.jti_cache)


Client = Annotated[dict[str, Any] | None, Depends(require_client)]
