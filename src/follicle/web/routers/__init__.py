"""One router per page or resource; :data:`ROUTERS` is what the app includes."""

from __future__ import annotations

from follicle.web.routers import auth, cds, cohorts, concepts, data, home, meta, nma, runs, studies

ROUTERS = [home.router, auth.router, data.router, concepts.router, studies.router, cohorts.router, runs.router,
           meta.router, nma.router, cds.router]
