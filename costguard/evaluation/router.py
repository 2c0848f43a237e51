"""``GET /v1/status``: every budget scope in its current period."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from costguard.api.deps import AppContext, context, requires
from costguard.auth.service import Principal
from costguard.db import transaction
from costguard.evaluation.status import list_status

router = APIRouter(tags=["status"])


@router.get("/v1/status", summary="Status of every budget scope in its current period")
def get_status(
    tenant: str | None = Query(default=None, description="only this tenant's scopes"),
    who: Principal = Depends(requires("viewer")),
    ctx: AppContext = Depends(context),
) -> list[dict[str, Any]]:
    if who.tenant is not None:
        if tenant is not None:
            who.require_tenant(tenant)
        tenant = who.tenant
    with transaction(ctx.factory) as session:
        return list_status(session, tenant=tenant)
