"""Service settings (environment variables ``FOLLICLE_CDS_*``), read once behind a cached getter.

``load_settings()`` is the cached getter; ``get_settings`` is the FastAPI dependency over it, which
tests swap with ``app.dependency_overrides[get_settings]``.
"""

from __future__ import annotations

import functools
import json
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TrustedIssuer(BaseModel):
    """A CDS client allowed to call: its ``iss``, its public keys (a JWK Set) and, optionally, its ``jku``."""

    model_config = ConfigDict(extra="forbid")
    iss: str
    jwks: dict[str, Any]
    jku: str | None = None


class CdsSettings(BaseSettings):
    """Runtime settings of the CDS Hooks service."""

    model_config = SettingsConfigDict(env_prefix="FOLLICLE_CDS_", extra="ignore")

    auth_enabled: bool = Field(True, description="Verify the client's JWT bearer token (turn off only for a local demo).")
    public_base_url: str | None = Field(None, description="Base URL clients call (e.g. https://cds.example.org); the JWT aud must equal it plus the endpoint path. Default: the URL of the request.")
    trusted_issuers: list[TrustedIssuer] = Field(default_factory=list, description="Allow-list of issuers with their JWK Sets.")
    trusted_issuers_file: Path | None = Field(None, description="JSON file holding a list of trusted issuers (added to trusted_issuers).")
    leeway_seconds: int = Field(0, ge=0, le=300, description="Clock skew allowed on exp/iat.")
    fhir_timeout_seconds: float = Field(5.0, gt=0, le=60)
    allowed_fhir_servers: list[str] | None = Field(None, description="FHIR base URLs the service may fetch missing prefetch from; unset = any.")
    today: date | None = Field(None, description="Fix the evaluation date (tests, demos); default: today's date.")
    region: Literal["EU", "US"] = Field("EU", description="Which label the checks apply: EU (SmPC) or US (prescribing information).")
    max_result_age_days: int = Field(90, ge=0, le=3650, description="Results older than this many days are not taken as current; "
                                     "live vaccinations within it count as recent (a practice setting, not a label statement).")

    def issuers(self) -> dict[str, TrustedIssuer]:
        out = {i.iss: i for i in self.trusted_issuers}
        if self.trusted_issuers_file is not None:
            for raw in json.loads(self.trusted_issuers_file.read_text()):
                i = TrustedIssuer.model_validate(raw)
                out[i.iss] = i
        return out

    def evaluation_date(self) -> date:
        return self.today or date.today()


@functools.lru_cache(maxsize=1)
def load_settings() -> CdsSettings:
    """The settings from the environment, read once (the cached getter)."""
    return CdsSettings()


async def get_settings() -> CdsSettings:
    """FastAPI dependency (async, so no thread hop per request); tests override it."""
    return load_settings()
