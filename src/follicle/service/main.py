"""The CDS Hooks 2.0 app: assembles the routers, the error handlers, the guard and CORS. Nothing else.

Middleware, outermost first: no-store (every answer, errors included), CORS (so a 401 or 413
still carries CORS headers), guard (token, then body size, before anything is parsed).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from follicle import __version__
from follicle.cds.kb import default_kb
from follicle.service import errors
from follicle.service.routers import discovery, feedback, services
from follicle.service.security import GuardMiddleware, JtiCache, NoStoreMiddleware


def create_app() -> FastAPI:
    """A fresh app (its own replay cache and feedback counts)."""
    app = FastAPI(
        title="Follicle CDS Hooks service",
        version=__version__,
        description="JAK inhibitors in alopecia areata: sourced checks at the point of ordering. "
        "Supports, and does not replace, the clinician's judgement.",
        # served only when FOLLICLE_CDS_DOCS_ENABLED (the guard answers 404 otherwise)
    )
    default_kb()  # load and validate the knowledge base now, not on the first request
    app.state.jti_cache = JtiCache()
    app.state.feedback = {}
    errors.install(app)
    app.add_middleware(GuardMiddleware)
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST", "OPTIONS"],
                       allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(NoStoreMiddleware)
    app.include_router(discovery.router)
    app.include_router(services.router)
    app.include_router(feedback.router)
    return app
