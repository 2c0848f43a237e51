"""SQL for the review: alerts fired in a window and a scope's exact spend over a past period."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from costguard.alerts.models import AlertRow
from costguard.budgets.schemas import ALL
from costguard.usage.models import UsageRollup, UsageRollupPending


def alerts_fired_since(session: Session, since: datetime) -> Sequence[AlertRow]:
    return session.scalars(select(AlertRow).where(AlertRow.starts_at >= since).order_by(AlertRow.starts_at)).all()


def period_spend(
    session: Session, *, tenant: str, pipeline: str, model: str, start: datetime, end: datetime
) -> Decimal:
    """Exact spend of a scope over ``[start, end)``: folded rollups plus deltas the worker has not folded yet."""
    total = Decimal(0)
    for table in (UsageRollup, UsageRollupPending):
        conditions = [table.tenant == tenant, table.bucket_start >= start, table.bucket_start < end]
        if pipeline != ALL:
            conditions.append(table.pipeline == pipeline)
        if model != ALL:
            conditions.append(table.model == model)
        if session.get_bind().dialect.name == "postgresql":
            total += Decimal(session.scalar(select(func.coalesce(func.sum(table.cost), 0)).where(*conditions)) or 0)
        else:  # SQLite stores money as exact text; add it up in Python.
            total += sum(session.scalars(select(table.cost).where(*conditions)), Decimal(0))
    return total
