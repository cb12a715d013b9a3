"""The web app: assembles the routers, the guards, the static files and the error pages. Nothing else."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from follicle import __version__
from follicle.errors import FollicleError
from follicle.web.jobs import RunManager
from follicle.web.routers import ROUTERS
from follicle.web.security import WebGuard, verify_csrf
from follicle.web.settings import WebSettings
from follicle.web.templating import is_htmx, render

log = logging.getLogger("follicle.web")
STATIC = Path(__file__).parent / "static"


def create_app(settings: WebSettings) -> FastAPI:
    """A fresh app serving *settings.db*, keeping drafts and runs under *settings.runs*."""
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.runs.shutdown()  # a stopping server stops its workers

    app = FastAPI(title="Follicle", version=__version__, docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(verify_csrf)], lifespan=lifespan)
    settings.runs.mkdir(parents=True, exist_ok=True)
    app.state.settings = settings
    app.state.cache = {}
    app.state.runs = RunManager(settings)
    app.mount("/static", StaticFiles(directory=STATIC, follow_symlink=False), name="static")
    for router in ROUTERS:
        app.include_router(router)
    _install_errors(app)
    app.add_middleware(WebGuard, settings=settings)
    return app


def _error(request: Request, status: int, title: str, message: str, problems: list[str] | None = None) -> HTMLResponse:
    template = "fragments/error.html.j2" if is_htmx(request) else "error.html.j2"
    return render(request, template, status_code=status, title=title, message=message, problems=problems or [])


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        if exc.status_code == 404:
            return _error(request, 404, "Not found", "There is no page at this address.")
        if exc.status_code == 405:
            return _error(request, 405, "Not allowed", "This address does not accept that kind of request.")
        return _error(request, exc.status_code, "Request refused", str(exc.detail))

    @app.exception_handler(FollicleError)
    async def user_error(request: Request, exc: FollicleError) -> HTMLResponse:
        return _error(request, 400, "Cannot do that", str(exc), exc.problems)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> HTMLResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in exc.errors()]
        return _error(request, 422, "Bad request", "Some fields could not be read.", problems)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> HTMLResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error(request, 500, "Internal error", "Something went wrong on the server; the details are in "
                      "the server log.")
