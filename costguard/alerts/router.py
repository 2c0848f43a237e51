"""``GET /v1/alerts``: alerts, active and past, with their delivery state per receiver."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from costguard.alerts.service import list_alerts
from costguard.api.deps import AppContext, context, requires
from costguard.auth.service import Principal
from costguard.db import transaction
from costguard.errors import InvalidInput

router = APIRouter(tags=["alerts"])


@router.get("/v1/alerts", summary="Alerts, firing and resolved, newest first")
def get_alerts(
    state: str | None = Query(default=None, description="firing or resolved"),
    who: Principal = Depends(requires("viewer")),
    ctx: AppContext = Depends(context),
) -> list[dict[str, Any]]:
    if state not in (None, "firing", "resolved"):
        raise InvalidInput(f"state: {state!r} is not an alert state; use firing or resolved")
    with transaction(ctx.factory) as session:
        return list_alerts(session, status=state, tenant=who.tenant)
