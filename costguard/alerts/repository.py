"""All SQL about alerts, the notification outbox and receiver health."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.orm import Session

from costguard.alerts.logic import FIRING, RESOLVED
from costguard.alerts.models import AlertNotification, AlertRow, ReceiverState

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"


def firing(session: Session) -> Sequence[AlertRow]:
    return session.scalars(select(AlertRow).where(AlertRow.status == FIRING).order_by(AlertRow.id)).all()


def insert_alerts(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert new alerts in one batched statement; returns each fingerprint's id."""
    if not rows:
        return {}
    inserted = session.execute(insert(AlertRow).returning(AlertRow.fingerprint, AlertRow.id), list(rows))
    return {fingerprint: alert_id for fingerprint, alert_id in inserted}


def update_alerts(session: Session, changes: Sequence[dict[str, Any]]) -> None:
    """Apply per-alert column changes (each dict holds the ``id``): one batched UPDATE per set of columns.

    The ORM batches only consecutive rows that change the same columns; interleaved (a value
    refreshed here, a status changed there) it sent one statement per alert.
    """
    by_columns: dict[frozenset[str], list[dict[str, Any]]] = {}
    for change in changes:
        by_columns.setdefault(frozenset(change), []).append(change)
    for group in by_columns.values():
        session.execute(update(AlertRow), group)


def resolve_alerts(session: Session, ids: Sequence[int], *, now: datetime) -> list[AlertRow]:
    """Resolve the given alerts at ``now`` (never after their period's end); returns them as they are now."""
    if not ids:
        return []
    resolved = session.scalars(
        update(AlertRow)
        .where(AlertRow.id.in_(ids))
        .values(
            status=RESOLVED,
            pending_flips=0,
            updated_at=now,
            ends_at=case((AlertRow.period_end < now, AlertRow.period_end), else_=now),
        )
        .returning(AlertRow),
        execution_options={"synchronize_session": False, "populate_existing": True},
    )
    return sorted(resolved, key=lambda row: row.id)


def enqueue(
    session: Session,
    transitions: Sequence[tuple[int, str, dict[str, Any]]],
    *,
    receivers: Sequence[str],
    now: datetime,
) -> None:
    """Queue one notification per (alert id, event, payload) and receiver, in the transaction that changed them."""
    rows = [
        {
            "alert_id": alert_id,
            "receiver": receiver,
            "event": event,
            "status": PENDING,
            "payload": payload,
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        }
        for alert_id, event, payload in transitions
        for receiver in receivers
    ]
    if rows:
        session.execute(insert(AlertNotification), rows)


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
