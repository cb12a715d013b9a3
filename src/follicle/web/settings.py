"""Settings of the web app: the CDM, the runs folder, the access token and the limits.

Execution settings only (no science): they come from ``follicle web`` options and live on
``app.state.settings``; routers read them through :func:`get_settings`.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request

from follicle.errors import InputError

TOKEN_ENV = "FOLLICLE_WEB_TOKEN"
#: host names that mean this machine only
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """True when *host* names a loopback interface (127.0.0.0/8, ::1, localhost)."""
    if host.strip("[]") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class WebSettings:
    """What the app serves and how.

    Attributes
    ----------
    db : the CDM, a DuckDB file or a ``postgresql://`` URL (opened read-only).
    runs : folder holding study drafts (``studies/``) and runs (``runs/``); created if absent.
    token : access token; when set, every page needs it (login form, cookie or bearer header).
    host : the interface served, used to pin the Host header on loopback (DNS rebinding).
    min_cell_count : counts from 1 to this minus 1 are shown as ``"<n"`` (pages not tied to a spec).
    max_upload_bytes : largest request body accepted (uploads included).
    """

    db: str
    runs: Path
    token: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    min_cell_count: int = 10
    max_upload_bytes: int = 2_000_000
    max_concurrent_runs: int = 1
    extra_hosts: tuple[str, ...] = field(default_factory=tuple)

    def allowed_hosts(self) -> list[str] | None:
        """Host header values accepted, or None for any (a token guards a non-loopback bind)."""
        if not is_loopback(self.host):
            return None
        return [*LOOPBACK_NAMES, "[::1]", "testserver", *self.extra_hosts]


def resolve_token(option: str | None) -> str | None:
    """The token from ``--token`` or else ``FOLLICLE_WEB_TOKEN``; a short token is refused."""
    token = option if option is not None else os.environ.get(TOKEN_ENV)
    if token is None or token == "":
        return None
    if len(token) < 16:
        raise InputError(f"--token / {TOKEN_ENV}: use at least 16 characters (got {len(token)})")
    return token


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve a non-loopback interface without a token."""
    if not is_loopback(host) and not token:
        raise InputError(
            f"--host {host}: serving beyond this machine needs an access token "
            f"(--token or {TOKEN_ENV}); without one only a loopback host (127.0.0.1, localhost, ::1) is allowed")


def get_settings(request: Request) -> WebSettings:
    """FastAPI dependency: the app's settings."""
    return request.app.state.settings
