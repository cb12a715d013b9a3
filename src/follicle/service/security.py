"""JWT bearer verification as CDS Hooks 2.0 requires (clinical.md §4, Security).

* asymmetric algorithms only: ``none`` and HMAC (``HS*``) are refused before anything else;
* ``iss`` must be on the allow-list; its public keys come from the configured JWK Set
  (no network: a ``jku`` header must equal the configured one when given);
* ``aud`` must be the exact URL of the endpoint called; ``exp``, ``iat`` and ``jti`` are required;
* a ``jti`` seen before (per issuer, until the token expires) is a replay and is refused.

Every failure is a 401 with an OperationOutcome body. Verification can be switched off with
``FOLLICLE_CDS_AUTH_ENABLED=false`` for a local demo.

:class:`GuardMiddleware` does this before any byte of the body is read: the token is checked from
the headers, then the body is read up to ``max_body_bytes`` (413 beyond it, from Content-Length
or while streaming), and only then handed to the app to parse. It also hides /docs, /redoc and
/openapi.json unless ``docs_enabled``. :class:`NoStoreMiddleware` adds ``Cache-Control: no-store``
to every answer (patient data must not sit in caches) and turns an unexpected error into a 500
OperationOutcome without a traceback.
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
import time
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from follicle.service.settings import CdsSettings, get_settings, load_settings

log = logging.getLogger("follicle.service")
DOC_PATHS = ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect")

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
    """FastAPI dependency: the verified claims, or None when verification is switched off.

    :class:`GuardMiddleware` has normally verified the token already (before the body was read)
    and left the claims in ``request.state``; verifying again would count the jti as a replay.
    """
    if not settings.auth_enabled:
        return None
    claims = getattr(request.state, "cds_claims", None)
    if claims is not None:
        return claims
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise AuthError("missing bearer token")
    return verify_token(credentials.credentials, audience=endpoint_url(request, settings),
                        settings=settings, jti_cache=request.app.state.jti_cache)


Client = Annotated[dict[str, Any] | None, Depends(require_client)]


async def app_settings(app: Any) -> CdsSettings:
    """The settings the app's dependency resolves to (honours ``dependency_overrides`` in tests)."""
    fn = getattr(app, "dependency_overrides", {}).get(get_settings)
    value = fn() if fn is not None else load_settings()
    return await value if inspect.isawaitable(value) else value


async def _send_outcome(send: Send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    from follicle.service.errors import outcome

    response = outcome(status, [message], headers=headers)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


class GuardMiddleware:
    """Authentication, then a bounded body read, before the app parses anything (see module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = await app_settings(scope["app"])
        path = scope.get("path", "")
        if path in DOC_PATHS:
            if not settings.docs_enabled:
                await _send_outcome(send, 404, "Not Found")
                return
            await self.app(scope, receive, send)
            return
        if scope.get("method") == "OPTIONS":  # CORS preflight: no body, no token
            await self.app(scope, receive, send)
            return
        if settings.auth_enabled:
            request = Request(scope)
            header = request.headers.get("authorization", "")
            scheme, _, credentials = header.partition(" ")
            try:
                if scheme.lower() != "bearer" or not credentials.strip():
                    raise AuthError("missing bearer token")
                claims = verify_token(credentials.strip(), audience=endpoint_url(request, settings),
                                      settings=settings, jti_cache=scope["app"].state.jti_cache)
            except AuthError as exc:
                await _send_outcome(send, 401, str(exc.detail), headers=exc.headers)
                return
            scope.setdefault("state", {})["cds_claims"] = claims
        limit = settings.max_body_bytes
        length = Request(scope).headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _send_outcome(send, 413 if length.isdigit() else 400,
                                f"request body larger than {limit} bytes" if length.isdigit() else "bad Content-Length")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if size > limit:
                await _send_outcome(send, 413, f"request body larger than {limit} bytes")
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class NoStoreMiddleware:
    """``Cache-Control: no-store`` on every answer; an unexpected error becomes a bare 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_no_store(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in (b"cache-control", b"pragma")]
                message = {**message, "headers": headers + [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]}
            await send(message)

        try:
            await self.app(scope, receive, send_no_store)
        except Exception:
            log.exception("unexpected error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await _send_outcome(send_no_store, 500, "internal error")
