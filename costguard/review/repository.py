"""SQL for the review: alerts fired in a window and a scope's exact spend over a past period."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from costguard.alerts.models import AlertRow
from costguard.budgets.schemas import ALL
from costguard.usage.models import UsageRollup


def alerts_fired_since(session: Session, since: datetime) -> Sequence[AlertRow]:
    return session.scalars(select(AlertRow).where(AlertRow.starts_at >= since).order_by(AlertRow.starts_at)).all()


def period_spend(
    session: Session, *, tenant: str, pipeline: str, model: str, start: datetime, end: datetime
) -> Decimal:
    conditions = [UsageRollup.tenant == tenant, UsageRollup.bucket_start >= start, UsageRollup.bucket_start < end]
    if pipeline != ALL:
        conditions.append(UsageRollup.pipeline == pipeline)
    if model != ALL:
        conditions.append(UsageRollup.model == model)
    if session.get_bind().dialect.name == "postgresql":
        return Decimal(session.scalar(select(func.coalesce(func.sum(UsageRollup.cost), 0)).where(*conditions)) or 0)
    # SQLite stores money as exact text; add it up in Python.
    return sum(session.scalars(select(UsageRollup.cost).where(*conditions)), Decimal(0))
