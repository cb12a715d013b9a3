"""``GET /cds-services``: the services this server offers."""

from __future__ import annotations

from fastapi import APIRouter

from follicle.service.models import DiscoveryResponse, OperationOutcome
from follicle.service.security import Client
from follicle.service.catalog import SERVICES

router = APIRouter(tags=["discovery"])


@router.get("/cds-services", response_model=DiscoveryResponse, response_model_exclude_none=True, responses={401: {"model": OperationOutcome}})
async def discovery(client: Client) -> DiscoveryResponse:
    """List the services (a service id may appear under several hooks)."""
    return DiscoveryResponse(services=SERVICES)
