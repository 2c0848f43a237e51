"""Reading alerts for the API and the console."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from costguard.alerts import repository
from costguard.alerts.models import AlertNotification, AlertRow


def _delivery(row: AlertNotification) -> dict[str, Any]:
    return {
        "receiver": row.receiver,
        "event": row.event,
        "status": row.status,
        "attempts": row.attempts,
        "created_at": row.created_at.isoformat(),
        "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None,
        "next_attempt_at": row.next_attempt_at.isoformat() if row.status == repository.PENDING else None,
        "last_error": row.last_error,
    }


def alert_document(row: AlertRow, deliveries: list[AlertNotification]) -> dict[str, Any]:
    return {
        "fingerprint": row.fingerprint,
        "alertname": row.alertname,
        "status": row.status,
        "severity": row.severity,
        "budget": row.budget_id,
        "tenant": row.tenant,
        "pipeline": row.pipeline,
        "model": row.model,
        "period": row.period,
        "threshold": row.threshold or None,
        "value": row.value,
        "labels": row.labels,
        "annotations": row.annotations,
        "generatorURL": row.generator_url,
        "startsAt": row.starts_at.isoformat(),
        "endsAt": row.ends_at.isoformat() if row.ends_at else None,
        "deliveries": [_delivery(d) for d in deliveries],
    }


def list_alerts(
    session: Session,
    *,
    status: str | None = None,
    tenant: str | None = None,
    budget_id: str | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    rows = repository.list_alerts(session, status=status, tenant=tenant, budget_id=budget_id, limit=limit)
    deliveries = repository.notifications_of(session, [row.id for row in rows])
    return [alert_document(row, deliveries.get(row.id, [])) for row in rows]
