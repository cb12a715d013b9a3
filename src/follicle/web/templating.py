"""Jinja templates of the web app and the number formats every page shares.

Pages are rendered on the server; a request made by HTMX (``HX-Request`` header) gets the
fragment named by the route, a normal request the whole page.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from follicle import __version__
from follicle.privacy import suppress_count
from follicle.web.security import CSRF_FIELD, csrf_token

#: the pages of the main navigation: (path, label)
NAV = (
    ("/data", "Data"),
    ("/concepts", "Concepts"),
    ("/studies", "Studies & cohorts"),
    ("/runs", "Runs"),
    ("/meta", "Meta-analysis"),
    ("/nma", "Network MA"),
    ("/cds", "Decision support"),
)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fmt_count(v: Any, min_cell_count: int | None = None) -> str:
    """A count for display: ``"<10"`` text as it is, numbers with thousands separators, None as "-"."""
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if min_cell_count is not None:
        v = suppress_count(v, min_cell_count)
        if isinstance(v, str):
            return v
    return f"{int(v):,}" if _finite(v) else "–"


def fmt_num(v: Any, digits: int = 2) -> str:
    return f"{v:.{digits}f}" if _finite(v) else "–"


def fmt_p(v: Any) -> str:
    if not _finite(v):
        return "–"
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def fmt_ci(est: Any, lo: Any, hi: Any, digits: int = 2) -> str:
    if not all(_finite(x) for x in (est, lo, hi)):
        return "–"
    return f"{est:.{digits}f} ({lo:.{digits}f} to {hi:.{digits}f})"


def label(name: Any) -> str:
    """A snake_case name as words."""
    return str(name).replace("_", " ")


_env = Environment(
    loader=PackageLoader("follicle.web", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(count=fmt_count, num=fmt_num, p=fmt_p, label=label)
_env.globals.update(ci=fmt_ci, nav=NAV, version=__version__, csrf_field=CSRF_FIELD)


def environment() -> Environment:
    return _env


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render *template* with the page context (CSRF token, active page, CDM name)."""
    settings = request.app.state.settings
    from follicle.cdm.connect import redact

    base = {
        "request_path": request.url.path,
        "csrf": csrf_token(request),
        "db_name": redact(settings.db),
        "min_cell_count": settings.min_cell_count,
        "htmx": is_htmx(request),
    }
    html = _env.get_template(template).render(**(base | context))
    return HTMLResponse(html, status_code=status_code)
