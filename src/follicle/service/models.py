"""CDS Hooks 2.0 request and response models (inputs and outputs kept apart).

Field names follow the specification (clinical.md §4): camelCase as on the wire.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

# ---------------------------------------------------------------- inputs


class FhirAuthorization(BaseModel):
    model_config = ConfigDict(extra="allow")
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str
    subject: str
    patient: str | None = None


class _HookRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    hookInstance: UUID
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    prefetch: dict[str, dict[str, Any] | None] | None = None

    @model_validator(mode="after")
    def _server_with_auth(self) -> _HookRequest:
        if self.fhirAuthorization is not None and not self.fhirServer:
            raise ValueError("fhirServer is required when fhirAuthorization is given")
        if self.fhirServer is not None and not self.fhirServer.startswith(("http://", "https://")):
            raise ValueError(f"fhirServer must be an http(s) URL, got {self.fhirServer!r}")
        return self


class PatientViewContext(BaseModel):
    model_config = ConfigDict(extra="allow")
    userId: str = Field(min_length=1)
    patientId: str = Field(min_length=1)
    encounterId: str | None = None


class OrderContext(BaseModel):
    model_config = ConfigDict(extra="allow")
    userId: str = Field(min_length=1)
    patientId: str = Field(min_length=1)
    encounterId: str | None = None
    draftOrders: dict[str, Any]
    selections: list[str] | None = None


class PatientViewRequest(_HookRequest):
    """Body of a ``patient-view`` call."""

    hook: Literal["patient-view"]
    context: PatientViewContext


class OrderRequest(_HookRequest):
    """Body of an ``order-sign`` or ``order-select`` call."""

    hook: Literal["order-sign", "order-select"]
    context: OrderContext

    @model_validator(mode="after")
    def _selections(self) -> OrderRequest:
        if self.hook == "order-select" and not self.context.selections:
            raise ValueError("context.selections is required for order-select")
        return self


class Coding(BaseModel):
    model_config = ConfigDict(extra="allow")
    system: str | None = None
    code: str | None = None
    display: str | None = None


class OverrideReason(BaseModel):
    reason: Coding | None = None
    userComment: str | None = None


class AcceptedSuggestion(BaseModel):
    id: str


class FeedbackItem(BaseModel):
    card: str = Field(min_length=1)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: str


class FeedbackRequest(BaseModel):
    feedback: list[FeedbackItem] = Field(min_length=1)


# ---------------------------------------------------------------- outputs


class ServiceDescriptor(BaseModel):
    hook: str
    id: str
    title: str
    description: str
    prefetch: dict[str, str]
    usageRequirements: str | None = None


class DiscoveryResponse(BaseModel):
    services: list[ServiceDescriptor]


class CardSource(BaseModel):
    label: str
    url: str | None = None
    topic: Coding | None = None


class Action(BaseModel):
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None


class Suggestion(BaseModel):
    label: str
    uuid: str
    isRecommended: bool | None = None
    actions: list[Action] = []


class Card(BaseModel):
    uuid: str
    summary: str = Field(max_length=139)
    detail: str
    indicator: Literal["info", "warning", "critical"]
    source: CardSource
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] | None = None


class CdsResponse(BaseModel):
    cards: list[Card]


class Issue(BaseModel):
    severity: Literal["fatal", "error", "warning", "information"]
    code: str
    diagnostics: str
    expression: list[str] | None = None


class OperationOutcome(BaseModel):
    resourceType: Literal["OperationOutcome"] = "OperationOutcome"
    issue: list[Issue]


class FeedbackResponse(BaseModel):
    received: int
