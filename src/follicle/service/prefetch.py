"""Prefetch templates, and getting their data: from the request, else from ``fhirServer``, else 412.

The lab query lists the LOINC codes of clinical.md §5 with the comma (OR) syntax, as the
reference's example does; a client limited to the spec's recommended subset (token equality and
``:in``) may not support the comma (clinical.md §4 notes this reading as unverified).

``fhirServer`` comes from the caller, and the EHR's access token goes with the fetch, so the
service fetches only from an allow-listed base URL (default: none), over http(s), without user
info in the URL, and only when every address the host resolves to is public (or private, when
``allow_private_fhir_servers`` is set for an on-premise EHR; loopback, link-local, multicast and
reserved addresses never). The connection goes to the address that was checked (the host name
is kept for the Host header and TLS), so a second DNS answer cannot redirect it; redirects are
not followed, and responses are read up to a size limit. Errors name the prefetch key only:
neither the upstream status nor the URL is echoed (the service must not become a port scanner).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from fastapi import HTTPException

from follicle.cds.fhir import LOINC_SYSTEM, PREFETCH_LOINC, resources_of
from follicle.errors import InputError

TEMPLATES: dict[str, str] = {
    "patient": "Patient/{{context.patientId}}",
    "labs": "Observation?patient={{context.patientId}}&code="
    + ",".join(f"{LOINC_SYSTEM}|{c}" for c in PREFETCH_LOINC) + "&_sort=-date",
    "conditions": "Condition?patient={{context.patientId}}",
    "medications": "MedicationRequest?patient={{context.patientId}}",
    "medication_statements": "MedicationStatement?patient={{context.patientId}}",
    "immunizations": "Immunization?patient={{context.patientId}}",
}


class PreconditionFailed(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(status_code=412, detail=detail)


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    """Every IP address *host* resolves to (the system resolver, off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def address_allowed(ip: str, *, allow_private: bool) -> bool:
    """False for loopback, link-local, multicast, unspecified, reserved and (unless allowed) private."""
    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_loopback or addr.is_link_local or addr.is_multicast or addr.is_unspecified or addr.is_reserved:
        return False
    if addr.is_global:
        return True
    return allow_private and addr.is_private


def _normal(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{(parts.netloc or '').lower()}{parts.path.rstrip('/')}"


async def vet_fhir_server(
    fhir_server: str, allowed: list[str], *, allow_private: bool, resolver: Resolver,
) -> tuple[str, str, str]:
    """(base URL with the checked IP, host name, Host header) for a permitted *fhir_server*;
    :class:`PreconditionFailed` (naming no address) otherwise."""
    parts = urlsplit(fhir_server.strip())
    refuse = PreconditionFailed("fhirServer is not an allowed FHIR server for this service")
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise refuse
    if _normal(fhir_server) not in {_normal(u) for u in allowed}:
        raise PreconditionFailed("fhirServer is not on the allow-list of this service")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        addresses = await resolver(parts.hostname, port)
    except (OSError, ValueError, UnicodeError):
        raise PreconditionFailed("fhirServer could not be resolved") from None
    if not addresses or not all(address_allowed(a, allow_private=allow_private) for a in addresses):
        raise refuse
    ip = addresses[0]
    host_ip = f"[{ip}]" if ":" in ip else ip
    base = f"{parts.scheme.lower()}://{host_ip}:{port}{parts.path.rstrip('/')}"
    return base, parts.hostname, parts.netloc.rsplit("@", 1)[-1]


async def _fetch(client: httpx.AsyncClient, url: str, headers: dict[str, str], host: str, limit: int) -> Any:
    """GET *url* (pinned IP) with the Host header and TLS name of *host*; at most *limit* bytes."""
    async with client.stream("GET", url, headers=headers, extensions={"sni_hostname": host}) as resp:
        resp.raise_for_status()
        chunks, size = [], 0
        async for chunk in resp.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise ValueError("response too large")
            chunks.append(chunk)
    import json

    return json.loads(b"".join(chunks))


def render(template: str, context: dict[str, Any]) -> str:
    """Fill ``{{context.x}}`` tokens from root-level primitive context fields."""
    out = template
    for k, v in context.items():
        if isinstance(v, (str, int)) and not isinstance(v, bool):
            out = out.replace("{{context." + k + "}}", quote(str(v), safe=""))  # an id cannot change the path
    if "{{" in out:
        raise PreconditionFailed(f"cannot fill prefetch template {template!r} from the context")
    return out


async def gather(
    *,
    keys: list[str],
    required: set[str],
    prefetch: dict[str, Any] | None,
    context: dict[str, Any],
    fhir_server: str | None,
    access_token: str | None,
    transport: httpx.AsyncBaseTransport | None,
    timeout: float,
    allowed_servers: list[str] | None = None,
    allow_private: bool = False,
    resolver: Resolver | None = None,
    max_response_bytes: int = 10_000_000,
) -> dict[str, list[dict] | None]:
    """Resources for each key (``None`` = not available and not required).

    ``allowed_servers`` lists the FHIR base URLs the service may fetch from (none by default);
    see the module docstring for the checks made before anything is fetched.
    """
    prefetch = prefetch or {}
    missing = [k for k in keys if k not in prefetch]
    target: tuple[str, str, str] | None = None
    if missing and fhir_server:
        try:
            target = await vet_fhir_server(fhir_server, list(allowed_servers or []), allow_private=allow_private,
                                           resolver=resolver or resolve)
        except PreconditionFailed as exc:
            need = [k for k in missing if k in required]
            if need:
                raise PreconditionFailed(f"required prefetch {', '.join(need)} missing and {exc.detail}") from None
            fhir_server = None
    if missing and not fhir_server:
        need = [k for k in missing if k in required]
        if need:
            raise PreconditionFailed(
                f"required prefetch {', '.join(need)} missing and no fhirServer given to fetch it "
                f"(templates: {', '.join(TEMPLATES[k] for k in need)})"
            )
    data: dict[str, Any] = {k: prefetch[k] for k in keys if k in prefetch}
    if missing and fhir_server and target is not None:
        base, host, host_header = target
        headers = {"Accept": "application/fhir+json", "Host": host_header}
        if access_token:
            headers["Authorization"] = f"Bearer {access_token}"
        async with httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False) as client:
            for k in missing:
                url = base + "/" + render(TEMPLATES[k], context)
                try:
                    data[k] = await _fetch(client, url, headers, host, max_response_bytes)
                except (httpx.HTTPError, ValueError):
                    if k in required:  # the upstream status and URL are not echoed
                        raise PreconditionFailed(f"could not fetch required prefetch {k!r} from fhirServer") from None
                    data[k] = None
    out: dict[str, list[dict] | None] = {}
    for k in keys:
        v = data.get(k)
        if v is None:
            if k == "patient" and k in data:
                raise PreconditionFailed("prefetch patient is null: the Patient is needed for the checks")
            out[k] = None if k not in data else []
            continue
        try:
            out[k] = resources_of(v, where=f"prefetch.{k}")
        except InputError:
            raise
    return out
