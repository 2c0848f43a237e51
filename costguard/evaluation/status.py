"""The contract's status object, shared by ``GET /v1/status``, ``costguard status`` and the console."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from costguard.evaluation import repository
from costguard.evaluation.models import BudgetStatusRow
from costguard.money import money_text


def _ratio(value: float) -> float:
    return round(value, 6)


def status_document(row: BudgetStatusRow) -> dict[str, Any]:
    return {
        "budget": row.budget_id,
        "tenant": row.tenant,
        "pipeline": row.pipeline,
        "model": row.model,
        "period": row.period,
        "period_start": row.period_start.isoformat(),
        "period_end": row.period_end.isoformat(),
        "currency": row.currency,
        "amount": money_text(row.amount),
        "spend": money_text(row.spend),
        "utilization": _ratio(row.utilization),
        "forecast_spend": money_text(row.forecast_spend),
        "forecast_utilization": _ratio(row.forecast_utilization),
        "burn_rate_short": _ratio(row.burn_rate_short),
        "burn_rate_long": _ratio(row.burn_rate_long),
        "state": row.state,
        "evaluated_at": row.evaluated_at.isoformat(),
    }


def list_status(session: Session, *, tenant: str | None = None, budget_id: str | None = None) -> list[dict[str, Any]]:
    return [status_document(row) for row in repository.statuses(session, tenant=tenant, budget_id=budget_id)]
