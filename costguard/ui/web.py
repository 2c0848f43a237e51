"""Console plumbing: who is signed in, CSRF checks, HTML rendering and HTML error pages."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from costguard.api.deps import AppContext, context
from costguard.auth.service import GRANTS, Principal
from costguard.db import transaction, utcnow
from costguard.errors import CostguardError, Forbidden, Unauthorized
from costguard.ui import queries, views
from costguard.ui.chart import utilization_bar
from costguard.ui.session import CSRF_FIELD, SESSION_COOKIE, parse, same_secret

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters.update(money=views.money, percent=views.percent, shown=views.shown)
templates.env.globals.update(utilization_bar=utilization_bar, time_left=views.time_left)
SECURITY_HEADERS = {
    # No script at all, styles from our own stylesheet only, never framed.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class Viewer:
    principal: Principal
    csrf: str

    @property
    def can_edit(self) -> bool:
        return "finance" in GRANTS[self.principal.role]


class SignInRequired(Unauthorized):
    """A page was asked for without a valid session: send the browser to /login."""


def current_viewer(request: Request, ctx: AppContext) -> Viewer | None:
    cookie = parse(request.cookies.get(SESSION_COOKIE))
    if cookie is None:
        return None
    with transaction(ctx.factory) as session:
        row = queries.token_by_id(session, cookie.token_id)
        if row is None or row.revoked_at is not None or not cookie.valid(row.secret_hash, utcnow()):
            return None
        return Viewer(Principal(row.id, row.name, row.role, row.tenant), cookie.csrf_token(row.secret_hash))


def signed_in(request: Request) -> Viewer:
    viewer = current_viewer(request, context(request))
    if viewer is None:
        raise SignInRequired("your session has ended or you have not signed in; sign in with your token")
    viewer.principal.require("viewer")
    return viewer


async def posted(request: Request, *, role: str = "viewer") -> tuple[Viewer, dict[str, str]]:
    """The signed-in viewer and the form, after checking the form's CSRF token and the role."""
    viewer = signed_in(request)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if not same_secret(form.get(CSRF_FIELD), viewer.csrf):
        log.warning("console.csrf_refused", extra={"path": request.url.path, "token": viewer.principal.name})
        raise Forbidden("this form's security token is missing or stale; reload the page and submit it again")
    viewer.principal.require(role)
    return viewer, form


def render(request: Request, name: str, viewer: Viewer | None, *, status: int = 200, **values: Any) -> Response:
    values.update(viewer=viewer, csrf=viewer.csrf if viewer else "", now=utcnow(), path=request.url.path)
    response = templates.TemplateResponse(request, name, values, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


class ConsoleRoute(APIRoute):
    """Expected failures become HTML pages (or a trip to /login), not the API's JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except Unauthorized as exc:
                if request.method == "GET":
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return redirect(f"/login?next={quote(target, safe='')}")
                return render(request, "error.html", None, status=exc.status_code, message=exc.message)
            except CostguardError as exc:
                viewer = current_viewer(request, context(request))
                return render(request, "error.html", viewer, status=exc.status_code, message=exc.message)

        return guarded
