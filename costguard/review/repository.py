"""SQL for the review: alerts fired in a window and a scope's exact spend over a past period."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from costguard.alerts.models import AlertRow
from costguard.usage.repository import Delta
from costguard.usage.spend import Scope, scope_cost


def alerts_fired_since(session: Session, since: datetime) -> Sequence[AlertRow]:
    return session.scalars(select(AlertRow).where(AlertRow.starts_at >= since).order_by(AlertRow.starts_at)).all()


def period_spend(
    session: Session,
    *,
    tenant: str,
    pipeline: str,
    model: str,
    start: datetime,
    end: datetime,
    unfolded: Sequence[Delta],
) -> Decimal:
    """Exact spend of a scope over ``[start, end)``: folded rollups plus the ``unfolded`` usage it covers."""
    return scope_cost(session, Scope(tenant, pipeline, model, start, end), unfolded=unfolded)
