"""All SQL about alerts, the notification outbox and receiver health."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from costguard.alerts.logic import FIRING
from costguard.alerts.models import AlertNotification, AlertRow, ReceiverState

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"


def firing(session: Session) -> Sequence[AlertRow]:
    return session.scalars(select(AlertRow).where(AlertRow.status == FIRING).order_by(AlertRow.id)).all()


def add(session: Session, row: AlertRow) -> AlertRow:
    session.add(row)
    session.flush()
    return row


def enqueue(
    session: Session,
    alert: AlertRow,
    *,
    event: str,
    receivers: Sequence[str],
    now: datetime,
    payload: dict[str, Any] | None = None,
) -> None:
    """Queue one notification per receiver, in the transaction that changed the alert."""
    for receiver in receivers:
        session.add(
            AlertNotification(
                alert_id=alert.id,
                receiver=receiver,
                event=event,
                status=PENDING,
                payload=payload,
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
        )


def next_batch(session: Session, receiver: str, *, now: datetime, limit: int) -> list[AlertNotification]:
    """The oldest pending notifications of a receiver, if the oldest is due: order is kept per receiver."""
    rows = session.scalars(
        select(AlertNotification)
        .where(AlertNotification.receiver == receiver, AlertNotification.status == PENDING)
        .order_by(AlertNotification.id)
        .limit(limit)
    ).all()
    if not rows or rows[0].next_attempt_at > now:
        return []
    return list(rows)


def pending_receivers(session: Session) -> list[str]:
    return list(
        session.scalars(select(AlertNotification.receiver).where(AlertNotification.status == PENDING).distinct())
    )


def pending_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(AlertNotification.receiver, func.count())
        .where(AlertNotification.status == PENDING)
        .group_by(AlertNotification.receiver)
    )
    return {receiver: int(count) for receiver, count in rows}


def dead_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(AlertNotification.receiver, func.count())
        .where(AlertNotification.status == DEAD)
        .group_by(AlertNotification.receiver)
    )
    return {receiver: int(count) for receiver, count in rows}


def mark_delivered(session: Session, rows: Sequence[AlertNotification], *, now: datetime) -> None:
    for row in rows:
        row.status = DELIVERED
        row.delivered_at = now
        row.attempts += 1
        row.last_error = None


def receiver_state(session: Session, receiver: str) -> ReceiverState:
    state = session.get(ReceiverState, receiver)
    if state is None:
        state = ReceiverState(receiver=receiver, consecutive_failures=0, notifications_total=0, failures_total=0)
        session.add(state)
        session.flush()  # session.get() does not see pending rows: the next lookup must find this one
    return state


def receiver_states(session: Session) -> Sequence[ReceiverState]:
    return session.scalars(select(ReceiverState).order_by(ReceiverState.receiver)).all()


def list_alerts(
    session: Session,
    *,
    status: str | None = None,
    tenant: str | None = None,
    budget_id: str | None = None,
    limit: int = 500,
) -> Sequence[AlertRow]:
    query = select(AlertRow).order_by(AlertRow.updated_at.desc(), AlertRow.id.desc()).limit(limit)
    if status is not None:
        query = query.where(AlertRow.status == status)
    if tenant is not None:
        query = query.where(AlertRow.tenant == tenant)
    if budget_id is not None:
        query = query.where(AlertRow.budget_id == budget_id)
    return session.scalars(query).all()


def notifications_of(session: Session, alert_ids: Sequence[int]) -> dict[int, list[AlertNotification]]:
    found: dict[int, list[AlertNotification]] = {}
    if not alert_ids:
        return found
    rows = session.scalars(
        select(AlertNotification).where(AlertNotification.alert_id.in_(alert_ids)).order_by(AlertNotification.id)
    )
    for row in rows:
        found.setdefault(row.alert_id, []).append(row)
    return found


def last_notification_id(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.max(AlertNotification.id), 0))) or 0)


def stamp_queued_after(session: Session, last_id: int, *, queued_at: datetime) -> None:
    """Give notifications queued after ``last_id`` the wall-clock time they were really queued at."""
    session.flush()
    session.execute(
        update(AlertNotification)
        .where(AlertNotification.id > last_id, AlertNotification.status == PENDING)
        .values(created_at=queued_at, next_attempt_at=queued_at)
        .execution_options(synchronize_session=False)
    )
