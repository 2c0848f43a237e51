"""Column-only reads for the /metrics scrape.

A scrape reads every budget and budget scope; building ORM instances for thousands of rows costs more
than the rest of the scrape together, so these return plain rows of just the columns the exporter needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from costguard.budgets.models import BudgetRow
from costguard.evaluation.models import BudgetStatusRow
from costguard.usage.models import UsageTotal


def budget_settings(session: Session) -> dict[str, Any]:
    """``{budget id: (id, labels, thresholds, forecast)}``."""
    rows = session.execute(select(BudgetRow.id, BudgetRow.labels, BudgetRow.thresholds, BudgetRow.forecast))
    return {row.id: row for row in rows}


def scope_statuses(session: Session) -> Sequence[Any]:
    s = BudgetStatusRow
    return session.execute(
        select(
            s.budget_id,
            s.tenant,
            s.pipeline,
            s.model,
            s.period,
            s.currency,
            s.spend,
            s.amount,
            s.utilization,
            s.forecast_utilization,
            s.burn_rate_short,
            s.burn_rate_long,
            s.state,
            s.period_start,
            s.period_end,
        ).order_by(s.budget_id, s.tenant)
    ).all()


def usage_totals(session: Session) -> Sequence[Any]:
    t = UsageTotal
    return session.execute(select(t.tenant, t.pipeline, t.model, t.kind, t.cost, t.records, t.last_timestamp)).all()
