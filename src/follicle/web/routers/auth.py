"""``/login``: the access-token form of a server that has a token (see :mod:`follicle.web.security`)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from follicle.web.security import AUTH_COOKIE, auth_value, read_form
from follicle.web.templating import render

router = APIRouter()


def _next(value: object) -> str:
    """A local path to go back to (never another site)."""
    text = value if isinstance(value, str) else "/"
    return text if text.startswith("/") and not text.startswith("//") and "\\" not in text else "/"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html.j2", next=_next(next), failed=False,
                  needed=request.app.state.settings.token is not None)


@router.post("/login")
async def login(request: Request) -> Response:
    settings = request.app.state.settings
    form = await read_form(request)
    token, target = form.get("token"), _next(form.get("next"))
    if settings.token is None:
        return RedirectResponse(target, status_code=303)
    if not isinstance(token, str) or not hmac.compare_digest(token.encode(), settings.token.encode()):
        return render(request, "login.html.j2", status_code=401, next=target, failed=True, needed=True)
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(AUTH_COOKIE, auth_value(settings.token), httponly=True, samesite="strict",
                    secure=request.url.scheme == "https")
    return resp
