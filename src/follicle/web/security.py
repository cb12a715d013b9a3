"""Guards of the web app: host pinning, body limits, access token, CSRF and security headers.

* **Host**: on a loopback bind only loopback Host headers are served (DNS rebinding).
* **Body size**: a request body over ``max_upload_bytes`` gets 413 before it is parsed.
* **Access token**: when a token is set, every page but ``/login`` and ``/static`` needs it, as a
  bearer header or as the cookie the login form sets (an HMAC of the token, never the token).
* **CSRF**: a random token in a ``SameSite=Strict`` cookie; every state-changing request must echo
  it in the ``X-CSRF-Token`` header (HTMX sends it) or a ``csrf_token`` form field, and a request
  whose ``Origin`` is another site is refused (OWASP double-submit cookie pattern).
* **Headers**: a strict Content-Security-Policy (scripts and styles from this server only, no
  inline script, no eval), no framing, no sniffing, no referrer to other sites, no caching of pages.

References
----------
OWASP Cross-Site Request Forgery Prevention Cheat Sheet (double submit cookie; verifying origin
with standard headers).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import HTTPException, Request

from follicle.web.settings import WebSettings

CSRF_COOKIE = "follicle_csrf"
AUTH_COOKIE = "follicle_auth"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class BodyTooLarge(Exception):
    """The request body passed the limit while it was being read."""


def auth_value(token: str) -> str:
    """The cookie value proving the token was given (an HMAC of it, so the cookie is not the token)."""
    return hmac.new(token.encode(), b"follicle-web-session", hashlib.sha256).hexdigest()


def _cookies(scope: dict[str, Any]) -> dict[str, str]:
    raw = b"; ".join(v for k, v in scope.get("headers", []) if k == b"cookie").decode("latin-1")
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # noqa: BLE001 - a malformed cookie header is treated as no cookies
        return {}
    return {k: m.value for k, m in jar.items()}


def _hostname(host: str) -> str:
    """The name part of a Host header (``[::1]:8000`` -> ``[::1]``, ``localhost:8000`` -> ``localhost``)."""
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0]


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k == name:
            return v.decode("latin-1")
    return None


async def _plain(send: Any, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"), *HEADERS, *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


class WebGuard:
    """Pure ASGI middleware applying the guards of the module docstring to every HTTP request."""

    def __init__(self, app: Any, settings: WebSettings) -> None:
        self.app = app
        self.settings = settings
        self.allowed = settings.allowed_hosts()
        self.auth = auth_value(settings.token) if settings.token else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if self.allowed is not None and _hostname(_header(scope, b"host") or "") not in self.allowed:
            await _plain(send, 400, "unknown Host header: this server answers to localhost only")
            return
        limit = self.settings.max_upload_bytes
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _plain(send, 413, f"request body larger than the limit of {limit:,} bytes")
            return
        cookies = _cookies(scope)
        if self.auth is not None and not self._authorised(scope, cookies, path):
            if scope["method"] == "GET" and not path.startswith("/static/"):
                await _plain(send, 303, "login needed", [(b"location", b"/login?next=" + quote(path).encode())])
            else:
                await _plain(send, 401, "access token needed")
            return
        csrf = cookies.get(CSRF_COOKIE)
        fresh = csrf is None or not _TOKEN_RE.match(csrf)
        if fresh:
            csrf = secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf_token"] = csrf
        received = 0

        async def limited_receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        started = False

        async def guarded_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [h for h in message.get("headers", []) if h[0] not in {k for k, _ in HEADERS}]
                headers += HEADERS
                if not any(k == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                if fresh:
                    headers.append((b"set-cookie", f"{CSRF_COOKIE}={csrf}; Path=/; HttpOnly; SameSite=Strict".encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if not started:
                await _plain(send, 413, f"request body larger than the limit of {limit:,} bytes")

    def _authorised(self, scope: dict[str, Any], cookies: dict[str, str], path: str) -> bool:
        if path == "/login" or path.startswith("/static/"):
            return True
        assert self.auth is not None and self.settings.token is not None
        bearer = _header(scope, b"authorization") or ""
        if bearer.lower().startswith("bearer ") and hmac.compare_digest(bearer[7:].strip().encode(),
                                                                        self.settings.token.encode()):
            return True
        return hmac.compare_digest(cookies.get(AUTH_COOKIE, "").encode(), self.auth.encode())


def csrf_token(request: Request) -> str:
    """The CSRF token of this browser (set by :class:`WebGuard`)."""
    return request.scope.get("state", {}).get("csrf_token", "")


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:  # not sent by every browser on same-origin requests; the token still decides
        return True
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


async def verify_csrf(request: Request) -> None:
    """Dependency of every route: a state-changing request must carry this browser's CSRF token."""
    if request.method in SAFE_METHODS:
        return
    expected = request.cookies.get(CSRF_COOKIE)
    if not _same_origin(request):
        raise HTTPException(403, "request from another site refused (Origin does not match)")
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await read_form(request)
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


async def read_form(request: Request) -> Any:
    """The request's form, parsed once with strict limits (fields, files, part size)."""
    settings: WebSettings = request.app.state.settings
    try:
        return await request.form(max_files=2, max_fields=400, max_part_size=settings.max_upload_bytes)
    except HTTPException:
        raise
    except BodyTooLarge:
        raise
    except Exception as exc:  # noqa: BLE001 - multipart errors: one clear 400
        raise HTTPException(400, f"the form could not be read: {exc}") from None
