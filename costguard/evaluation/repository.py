"""SQL to read and write evaluated statuses, the alerts a cycle judges, and the cycle's bookkeeping."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from costguard.alerts.models import AlertRow
from costguard.evaluation.models import BudgetStatusRow, EvaluationState
from costguard.evaluation.scopes import ScopeKey

STATUS_COLUMNS = (
    "budget_id",
    "tenant",
    "pipeline",
    "model",
    "period",
    "period_start",
    "period_end",
    "currency",
    "amount",
    "spend",
    "utilization",
    "forecast_spend",
    "forecast_utilization",
    "burn_rate_short",
    "burn_rate_long",
    "state",
    "evaluated_at",
)
_CHUNK = 500


def statuses(session: Session, *, tenant: str | None = None, budget_id: str | None = None) -> Sequence[BudgetStatusRow]:
    query = select(BudgetStatusRow).order_by(BudgetStatusRow.budget_id, BudgetStatusRow.tenant)
    if tenant is not None:
        query = query.where(BudgetStatusRow.tenant == tenant)
    if budget_id is not None:
        query = query.where(or_(BudgetStatusRow.budget_id == budget_id))
    return session.scalars(query).all()


def status_keys(session: Session) -> set[ScopeKey]:
    return {(b, t) for b, t in session.execute(select(BudgetStatusRow.budget_id, BudgetStatusRow.tenant))}


def upsert_statuses(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Write every evaluated scope in a few multi-row statements rather than one round trip each."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    factory = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for start in range(0, len(rows), _CHUNK):
        statement = factory(BudgetStatusRow).values(list(rows[start : start + _CHUNK]))
        statement = statement.on_conflict_do_update(
            index_elements=["budget_id", "tenant"],
            set_={name: statement.excluded[name] for name in STATUS_COLUMNS[2:]},
        )
        session.execute(statement)


def delete_statuses(session: Session, keys: Sequence[ScopeKey]) -> None:
    for start in range(0, len(keys), _CHUNK):
        chunk = list(keys[start : start + _CHUNK])
        session.execute(
            delete(BudgetStatusRow).where(tuple_(BudgetStatusRow.budget_id, BudgetStatusRow.tenant).in_(chunk))
        )


def alerts_of_periods_ending_after(session: Session, at: datetime) -> Sequence[AlertRow]:
    """Alerts whose period is still open at ``at``: the only ones a cycle as of ``at`` can move."""
    return session.scalars(select(AlertRow).where(AlertRow.period_end > at).order_by(AlertRow.id)).all()


def evaluation_state(session: Session, name: str = "evaluation") -> EvaluationState | None:
    return session.get(EvaluationState, name)
