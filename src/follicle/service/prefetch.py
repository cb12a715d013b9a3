"""Prefetch templates, and getting their data: from the request, else from ``fhirServer``, else 412.

The lab query lists the LOINC codes of clinical.md §5 with the comma (OR) syntax, as the
reference's example does; a client limited to the spec's recommended subset (token equality and
``:in``) may not support the comma (clinical.md §4 notes this reading as unverified).
"""

from __future__ import annotations

from typing import Any

from urllib.parse import quote

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
) -> dict[str, list[dict] | None]:
    """Resources for each key (``None`` = not available and not required).

    ``allowed_servers`` (when given) lists the FHIR base URLs the service may fetch from; another
    ``fhirServer`` is treated as absent, so nothing is fetched from an unknown host.
    """
    prefetch = prefetch or {}
    if fhir_server and allowed_servers is not None and fhir_server.rstrip("/") not in {u.rstrip("/") for u in allowed_servers}:
        need = [k for k in keys if k not in prefetch and k in required]
        if need:
            raise PreconditionFailed(f"required prefetch {', '.join(need)} missing and fhirServer {fhir_server!r} is not on the allow-list")
        fhir_server = None
    missing = [k for k in keys if k not in prefetch]
    if missing and not fhir_server:
        need = [k for k in missing if k in required]
        if need:
            raise PreconditionFailed(
                f"required prefetch {', '.join(need)} missing and no fhirServer given to fetch it "
                f"(templates: {', '.join(TEMPLATES[k] for k in need)})"
            )
    data: dict[str, Any] = {k: prefetch[k] for k in keys if k in prefetch}
    if missing and fhir_server:
        headers = {"Accept": "application/fhir+json"}
        if access_token:
            headers["Authorization"] = f"Bearer {access_token}"
        async with httpx.AsyncClient(transport=transport, timeout=timeout, headers=headers) as client:
            for k in missing:
                url = fhir_server.rstrip("/") + "/" + render(TEMPLATES[k], context)
                try:
                    resp = await client.get(url)
                    resp.raise_for_status()
                    data[k] = resp.json()
                except (httpx.HTTPError, ValueError) as exc:
                    if k in required:
                        raise PreconditionFailed(f"could not fetch prefetch {k!r} from fhirServer: {exc}") from None
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
