"""The console's pages: sign-in, overview, budget pages and forms, alerts and audit.

Every read and write goes through the services the API uses (budgets.service, auth.service,
evaluation.status, alerts.service); only read queries the API has no use for live in ui.queries.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from math import ceil
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from costguard.alerts.service import list_alerts
from costguard.api.deps import context
from costguard.auth.service import authenticate
from costguard.budgets import service
from costguard.budgets.periods import period_containing
from costguard.db import transaction, utcnow
from costguard.errors import Conflict, Unauthorized
from costguard.evaluation.status import list_status
from costguard.ui import forms, queries, views
from costguard.ui.chart import ChartInput, spend_chart
from costguard.ui.session import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    issue,
    new_login_csrf,
    same_secret,
)
from costguard.ui.web import HERE, ConsoleRoute, current_viewer, posted, redirect, render, signed_in

log = logging.getLogger(__name__)
router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
PAGE_SIZE = 50
STATES = ("ok", "approaching", "exceeded", queries.NOT_EVALUATED)
STYLESHEET = (HERE / "static" / "console.css").read_bytes()


@router.get("/ui/console.css")
def stylesheet() -> Response:
    return Response(STYLESHEET, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    if current_viewer(request, context(request)) is not None:
        return redirect(views.safe_next(next))
    return _login_page(request, next=next)


def _login_page(request: Request, *, next: str, error: str | None = None, status: int = 200) -> Response:
    secret = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_csrf()
    response = render(
        request, "login.html", None, status=status, login_csrf=secret, next=views.safe_next(next), error=error
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, secret, httponly=True, samesite="strict", path="/login", secure=_secure(request)
    )
    return response


def _secure(request: Request) -> bool:
    return context(request).settings.external_url.startswith("https://")


@router.post("/login")
async def login(request: Request) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    next_path = form.get("next", "/")
    if not same_secret(form.get(CSRF_FIELD), request.cookies.get(LOGIN_CSRF_COOKIE)):
        return _login_page(
            request,
            next=next_path,
            status=403,
            error="the sign-in form expired; it has been reloaded, please sign in again",
        )
    ctx = context(request)

    def check() -> tuple[str, str, str, str]:
        with transaction(ctx.factory) as session:
            who = authenticate(session, form.get("token", "").strip())
            row = queries.token_by_id(session, who.token_id)
            assert row is not None
            return who.token_id, who.name, who.role, row.secret_hash

    try:
        token_id, name, role, key = await run_in_threadpool(check)
    except Unauthorized:
        log.info("console.sign_in_refused", extra={"reason": "unknown token"})
        return _login_page(
            request,
            next=next_path,
            status=401,
            error="token: unknown or revoked; paste a token from costguard tokens create",
        )
    if role == "ingest":
        message = "token: ingest tokens may only post usage; sign in with a viewer, finance or admin token"
        return _login_page(request, next=next_path, status=403, error=message)
    cookie = issue(token_id, key, utcnow())
    log.info("console.signed_in", extra={"token": name, "role": role})
    response = redirect(views.safe_next(next_path))
    response.set_cookie(
        SESSION_COOKIE,
        cookie.value(),
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="strict",
        path="/",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    viewer, _form = await posted(request)
    log.info("console.signed_out", extra={"token": viewer.principal.name})
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _choice(value: str | None, allowed: tuple[str, ...]) -> str | None:
    return value if value in allowed else None


@router.get("/")
def overview(
    request: Request, tenant: str | None = None, state: str | None = None, sort: str = "utilization", page: str = "1"
) -> Response:
    viewer = signed_in(request)
    ctx = context(request)
    who = viewer.principal
    chosen = queries.OverviewFilter(
        viewer_tenant=who.tenant,
        tenant=tenant or None,
        state=_choice(state, STATES),
        sort=_choice(sort, queries.SORTS) or "utilization",
    )
    current = max(int(page), 1) if page.isdigit() else 1  # a hand-edited URL gets page 1, not an error
    now = utcnow()
    month = period_containing("monthly", ctx.settings.default_zone, now)
    with transaction(ctx.factory) as session:
        rows, total = queries.overview_page(session, chosen, offset=(current - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        tenants = queries.known_tenants(session, viewer_tenant=who.tenant)
        glance = queries.tenants_at_a_glance(session, since=month.start, tenant=chosen.tenant or who.tenant)
    pages = max(ceil(total / PAGE_SIZE), 1)
    params = {k: v for k, v in (("tenant", chosen.tenant), ("state", chosen.state), ("sort", chosen.sort)) if v}

    def page_url(number: int) -> str:
        return "/?" + urlencode({**params, "page": number})

    return render(
        request,
        "overview.html",
        viewer,
        rows=rows,
        total=total,
        page=current,
        pages=pages,
        page_url=page_url,
        filter=chosen,
        tenants=tenants,
        states=STATES,
        sorts=queries.SORTS,
        glance=glance,
        month=month,
        done=request.query_params.get("done"),
    )


@router.get("/budgets/{budget_id}")
def budget_page(request: Request, budget_id: str, tenant: str | None = None) -> Response:
    viewer = signed_in(request)
    ctx = context(request)
    who = viewer.principal
    now = utcnow()
    with transaction(ctx.factory) as session:
        stored = service.get_budget(session, budget_id, tenant=who.tenant)
        spec = stored.spec
        scopes = sorted(
            list_status(session, budget_id=budget_id, tenant=who.tenant), key=lambda s: (-s["utilization"], s["tenant"])
        )
        status = next((s for s in scopes if s["tenant"] == tenant), scopes[0] if scopes else None)
        if status is not None:
            start, end = datetime.fromisoformat(status["period_start"]), datetime.fromisoformat(status["period_end"])
            scope_tenant: str | None = status["tenant"]
        else:
            period = period_containing(spec.period, ZoneInfo(spec.timezone or ctx.settings.timezone), now)
            start, end = period.start, period.end
            scope_tenant = None if spec.is_template else spec.tenant
        scope = queries.Scope(scope_tenant or who.tenant, spec.pipeline, spec.model, start, end)
        buckets = queries.spend_per_bucket(session, scope)
        parts = queries.breakdown(session, scope)
        alerts = list_alerts(session, budget_id=budget_id, tenant=who.tenant, limit=50)
        history = service.audit_trail(session, budget_id=budget_id, tenant=who.tenant, limit=100)
    chart = spend_chart(
        ChartInput(
            start=start,
            end=end,
            now=now,
            buckets=buckets,
            amount=spec.amount,
            thresholds=spec.thresholds,
            forecast_spend=Decimal(status["forecast_spend"]) if status else None,
            currency=spec.currency,
            zone=ZoneInfo(spec.timezone or ctx.settings.timezone),
        )
    )
    return render(
        request,
        "budget.html",
        viewer,
        stored=stored,
        spec=spec,
        scopes=scopes,
        scope_status=status,
        chart=chart,
        breakdown=parts,
        alerts=alerts,
        history=[(e, views.changes(e["before"], e["after"])) for e in history],
        period_start=start,
        period_end=end,
        done=request.query_params.get("done"),
    )


@router.get("/new-budget")
def new_budget_form(request: Request) -> Response:
    viewer = signed_in(request)
    viewer.principal.require("finance")
    defaults: dict[str, Any] = {
        "tenant": viewer.principal.tenant or "",
        "period": "monthly",
        "currency": context(request).settings.currency,
        "thresholds": [0.8],
    }
    return render(
        request,
        "form.html",
        viewer,
        mode="create",
        values=views.form_values(defaults),
        errors=views.FormErrors(),
        version=None,
    )


@router.post("/new-budget")
async def create_budget(request: Request) -> Response:
    viewer, form = await posted(request, role="finance")
    outcome = await run_in_threadpool(forms.create, context(request), viewer.principal, form)
    if outcome.errors:
        return render(
            request,
            "form.html",
            viewer,
            status=outcome.status,
            mode="create",
            values=views.submitted_values(form),
            errors=outcome.errors,
            version=None,
        )
    return redirect(f"/budgets/{outcome.budget_id}?done=created")


@router.get("/budgets/{budget_id}/edit")
def edit_budget_form(request: Request, budget_id: str) -> Response:
    viewer = signed_in(request)
    viewer.principal.require("finance")
    with transaction(context(request).factory) as session:
        stored = service.get_budget(session, budget_id, tenant=viewer.principal.tenant)
    if stored.managed_by_file:
        raise Conflict(f"budget {budget_id!r} is managed by the file {stored.managed_by_file}; edit that file instead")
    return render(
        request,
        "form.html",
        viewer,
        mode="edit",
        values=views.form_values(stored.spec.document()),
        errors=views.FormErrors(),
        version=stored.version,
        budget_id=budget_id,
    )


@router.post("/budgets/{budget_id}/edit")
async def edit_budget(request: Request, budget_id: str) -> Response:
    viewer, form = await posted(request, role="finance")
    form["id"] = budget_id
    outcome = await run_in_threadpool(forms.update, context(request), viewer.principal, budget_id, form)
    if outcome.conflict is not None:
        current = outcome.conflict
        yours, _ = views.form_document(form)
        return render(
            request,
            "conflict.html",
            viewer,
            status=412,
            budget_id=budget_id,
            current=current,
            rows=views.changes(current.spec.document(), yours),
            values=views.submitted_values(form),
            version=current.version,
            errors=views.FormErrors(),
            mode="edit",
        )
    if outcome.errors:
        return render(
            request,
            "form.html",
            viewer,
            status=outcome.status,
            mode="edit",
            values=views.submitted_values(form),
            errors=outcome.errors,
            version=form.get("version"),
            budget_id=budget_id,
        )
    return redirect(f"/budgets/{budget_id}?done=updated")


@router.post("/budgets/{budget_id}/delete")
async def delete_budget(request: Request, budget_id: str) -> Response:
    viewer, form = await posted(request, role="finance")
    await run_in_threadpool(forms.delete, context(request), viewer.principal, budget_id, form)
    return redirect("/?done=deleted")


@router.get("/alerts")
def alerts_page(request: Request) -> Response:
    viewer = signed_in(request)
    with transaction(context(request).factory) as session:
        firing = list_alerts(session, status="firing", tenant=viewer.principal.tenant, limit=200)
        recent = list_alerts(session, status="resolved", tenant=viewer.principal.tenant, limit=50)
    return render(request, "alerts.html", viewer, firing=firing, recent=recent)


@router.get("/audit")
def audit_page(request: Request) -> Response:
    viewer = signed_in(request)
    with transaction(context(request).factory) as session:
        entries = service.audit_trail(session, tenant=viewer.principal.tenant, limit=200)
    return render(request, "audit.html", viewer, entries=[(e, views.changes(e["before"], e["after"])) for e in entries])
