"""``POST /cds-services/{id}/feedback``: what the clinician did with the cards."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from follicle.service.models import FeedbackRequest, FeedbackResponse, OperationOutcome
from follicle.service.security import Client
from follicle.service.catalog import SERVICE_IDS

router = APIRouter(tags=["feedback"])
_ERR = {c: {"model": OperationOutcome} for c in (400, 401, 404, 422)}


@router.post("/cds-services/{service_id}/feedback", response_model=FeedbackResponse, responses=_ERR)
async def feedback(service_id: str, body: FeedbackRequest, request: Request, client: Client) -> FeedbackResponse:
    """Record card outcomes (kept in memory: counts per service and outcome, no patient data)."""
    if service_id not in SERVICE_IDS:
        raise HTTPException(404, f"service {service_id!r} is not offered here")
    counts = request.app.state.feedback
    for item in body.feedback:
        key = (service_id, item.outcome)
        counts[key] = counts.get(key, 0) + 1
    return FeedbackResponse(received=len(body.feedback))
