"""SQL to read and write evaluated statuses, the alerts a cycle judges, and the cycle's bookkeeping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, text, tuple_
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from costguard.alerts.logic import FIRING
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
    """Write every evaluated scope set-based: COPY and one upsert on PostgreSQL, one prepared statement elsewhere."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        _upsert_statuses_postgres(session, rows)
        return
    statement = sqlite.insert(BudgetStatusRow)
    statement = statement.on_conflict_do_update(
        index_elements=["budget_id", "tenant"],
        set_={name: statement.excluded[name] for name in STATUS_COLUMNS[2:]},
    )
    session.execute(statement, list(rows))


def _upsert_statuses_postgres(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    columns = ", ".join(STATUS_COLUMNS)
    session.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS cycle_status (LIKE budget_status) ON COMMIT DROP"))
    session.execute(text("TRUNCATE cycle_status"))
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY cycle_status ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(tuple(row[name] for name in STATUS_COLUMNS))
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in STATUS_COLUMNS[2:])
    session.execute(
        text(
            f"INSERT INTO budget_status ({columns}) SELECT {columns} FROM cycle_status"
            f" ON CONFLICT (budget_id, tenant) DO UPDATE SET {updates}"
        )
    )


def delete_statuses(session: Session, keys: Sequence[ScopeKey]) -> None:
    for start in range(0, len(keys), _CHUNK):
        chunk = list(keys[start : start + _CHUNK])
        session.execute(
            delete(BudgetStatusRow).where(tuple_(BudgetStatusRow.budget_id, BudgetStatusRow.tenant).in_(chunk))
        )


@dataclass(frozen=True, slots=True)
class AlertState:
    """The few columns of an alert a cycle judges; the full row is loaded only when it changes."""

    id: int
    fingerprint: str
    budget_id: str
    tenant: str
    period: str
    alertname: str
    threshold: str
    status: str
    pending_flips: int
    value: float
    starts_at: datetime


def alerts_of_periods_ending_after(session: Session, at: datetime) -> list[AlertState]:
    """Alerts whose period is still open at ``at``: the only ones a cycle as of ``at`` can move."""
    query = select(*(getattr(AlertRow, name) for name in AlertState.__slots__)).where(AlertRow.period_end > at)
    return [AlertState(*row) for row in session.execute(query.order_by(AlertRow.id))]


def firing_alerts_of_periods_ended_by(session: Session, at: datetime) -> Sequence[AlertRow]:
    return session.scalars(
        select(AlertRow).where(AlertRow.status == FIRING, AlertRow.period_end <= at).order_by(AlertRow.id)
    ).all()


def evaluation_state(session: Session, name: str = "evaluation") -> EvaluationState | None:
    return session.get(EvaluationState, name)
