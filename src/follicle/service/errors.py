"""Every error leaves the service as a 4xx OperationOutcome (never a stack trace)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from follicle.errors import FollicleError
from follicle.service.models import Issue, OperationOutcome

_CODES = {400: "invalid", 401: "security", 403: "forbidden", 404: "not-found", 405: "not-supported",
          412: "processing", 413: "too-costly", 415: "invalid", 422: "invalid"}
MEDIA = "application/json"


def outcome(status: int, messages: list[str], headers: dict[str, str] | None = None,
            expressions: list[list[str] | None] | None = None) -> JSONResponse:
    expressions = expressions or [None] * len(messages)
    body = OperationOutcome(issue=[
        Issue(severity="error", code=_CODES.get(status, "exception"), diagnostics=m, expression=e)
        for m, e in zip(messages, expressions)
    ])
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers, media_type=MEDIA)


def install(app: FastAPI) -> None:
    """Register the handlers on *app*."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return outcome(400, ["request body is not valid JSON"])
        msgs, exprs = [], []
        for e in errors[:50]:
            loc = [str(x) for x in e.get("loc", ())]
            where = ".".join(loc[1:] if loc and loc[0] == "body" else loc) or "(body)"
            msgs.append(f"{where}: {e.get('msg')}")
            exprs.append([where])
        return outcome(422, msgs, expressions=exprs)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return outcome(exc.status_code, [detail], headers=getattr(exc, "headers", None))

    @app.exception_handler(ValidationError)
    async def _pydantic(request: Request, exc: ValidationError) -> JSONResponse:
        return outcome(422, [f"{'.'.join(map(str, e['loc'])) or '(input)'}: {e['msg']}" for e in exc.errors()[:50]])

    @app.exception_handler(FollicleError)
    async def _follicle(request: Request, exc: FollicleError) -> JSONResponse:
        return outcome(422, [str(exc)] + exc.problems)
