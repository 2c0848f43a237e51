"""``/v1/budgets``: CRUD with ETag / If-Match optimistic concurrency, history and audit."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from costguard.api.deps import AppContext, actor_of, context, requires
from costguard.auth.service import Principal
from costguard.budgets import service
from costguard.budgets.schemas import ALL
from costguard.db import transaction, utcnow
from costguard.errors import InvalidInput, PreconditionFailed, PreconditionRequired

router = APIRouter(tags=["budgets"])


async def _document(request: Request) -> Any:
    try:
        return json.loads(await request.body(), parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not valid JSON ({exc}); send a budget document") from None


def _version_from(if_match: str | None, budget_id: str) -> int:
    if not if_match:
        raise PreconditionRequired("If-Match is required; send the ETag from GET /v1/budgets/{id} so no edit is lost")
    tag = if_match.strip().removeprefix("W/").strip('"')
    prefix = f"{budget_id}-v"
    if not tag.startswith(prefix) or not tag[len(prefix) :].isdigit():
        raise PreconditionFailed("If-Match does not match this budget's ETag; GET it again and retry")
    return int(tag[len(prefix) :])


def _check_scope(who: Principal, tenant: str) -> None:
    if who.tenant is not None and tenant != who.tenant:
        who.require_tenant(tenant if tenant != ALL else "*")


def _take_over(request: Request) -> bool:
    return request.query_params.get("take_over", "").lower() in ("1", "true", "yes")


@router.get("/v1/budgets", summary="List budgets")
def list_budgets(
    who: Principal = Depends(requires("viewer")), ctx: AppContext = Depends(context)
) -> list[dict[str, Any]]:
    with transaction(ctx.factory) as session:
        return [b.document() for b in service.list_budgets(session, tenant=who.tenant)]


@router.get("/v1/budgets/{budget_id}", summary="Read one budget (with its ETag)")
def get_budget(
    budget_id: str, who: Principal = Depends(requires("viewer")), ctx: AppContext = Depends(context)
) -> JSONResponse:
    with transaction(ctx.factory) as session:
        stored = service.get_budget(session, budget_id, tenant=who.tenant)
    return JSONResponse(stored.document(), headers={"ETag": stored.etag})


@router.post("/v1/budgets", status_code=201, summary="Create a budget")
async def create_budget(
    request: Request, who: Principal = Depends(requires("finance")), ctx: AppContext = Depends(context)
) -> JSONResponse:
    spec = service.parse_spec(await _document(request), currency=ctx.settings.currency)
    _check_scope(who, spec.tenant)
    with transaction(ctx.factory) as session:
        stored = service.create_budget(session, spec, actor=actor_of(who), now=utcnow())
    return JSONResponse(
        stored.document(), status_code=201, headers={"ETag": stored.etag, "Location": f"/v1/budgets/{spec.id}"}
    )


@router.put("/v1/budgets/{budget_id}", summary="Replace a budget (If-Match required)")
async def put_budget(
    budget_id: str, request: Request, who: Principal = Depends(requires("finance")), ctx: AppContext = Depends(context)
) -> JSONResponse:
    version = _version_from(request.headers.get("if-match"), budget_id)
    document = await _document(request)
    if isinstance(document, dict):
        document.setdefault("id", budget_id)
        document.pop("version", None)
        document.pop("managed_by_file", None)
        document.pop("updated_at", None)
    spec = service.parse_spec(document, currency=ctx.settings.currency)
    if spec.id != budget_id:
        raise InvalidInput(f"id: {spec.id!r} differs from the URL's {budget_id!r}; ids cannot be renamed")
    with transaction(ctx.factory) as session:
        current = service.get_budget(session, budget_id, tenant=who.tenant)
        _check_scope(who, current.spec.tenant)
        _check_scope(who, spec.tenant)
        stored = service.update_budget(
            session, spec, expected_version=version, actor=actor_of(who), now=utcnow(), take_over=_take_over(request)
        )
    return JSONResponse(stored.document(), headers={"ETag": stored.etag})


@router.delete("/v1/budgets/{budget_id}", status_code=204, summary="Delete a budget (If-Match required)")
def delete_budget(
    budget_id: str, request: Request, who: Principal = Depends(requires("finance")), ctx: AppContext = Depends(context)
) -> Response:
    version = _version_from(request.headers.get("if-match"), budget_id)
    with transaction(ctx.factory) as session:
        current = service.get_budget(session, budget_id, tenant=who.tenant)
        _check_scope(who, current.spec.tenant)
        service.delete_budget(
            session,
            budget_id,
            expected_version=version,
            actor=actor_of(who),
            now=utcnow(),
            take_over=_take_over(request),
        )
    return Response(status_code=204)


@router.get("/v1/budgets/{budget_id}/history", summary="Every change of one budget, newest first")
def budget_history(
    budget_id: str, who: Principal = Depends(requires("viewer")), ctx: AppContext = Depends(context)
) -> list[dict[str, Any]]:
    with transaction(ctx.factory) as session:
        return service.audit_trail(session, budget_id=budget_id, tenant=who.tenant)


@router.get("/v1/audit", summary="Every budget change, newest first")
def audit(who: Principal = Depends(requires("viewer")), ctx: AppContext = Depends(context)) -> list[dict[str, Any]]:
    with transaction(ctx.factory) as session:
        return service.audit_trail(session, tenant=who.tenant)
