"""The alert writes a cycle batches: each change lands, in few statements."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event, select

from costguard.alerts import repository as alerts_repo
from costguard.alerts.models import AlertRow
from costguard.db import transaction

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def _alert(n: int) -> dict[str, object]:
    return {
        "fingerprint": f"fp{n}",
        "alertname": "CostBudgetApproaching",
        "budget_id": "b",
        "tenant": f"t{n}",
        "pipeline": "*",
        "model": "*",
        "period": "2026-11",
        "threshold": "0.8",
        "severity": "warning",
        "status": "firing",
        "labels": {},
        "annotations": {},
        "generator_url": "http://x/budgets/b",
        "value": 0.8,
        "pending_flips": 0,
        "starts_at": NOW,
        "ends_at": None,
        "period_end": datetime(2026, 12, 1, tzinfo=UTC),
        "updated_at": NOW,
    }


def test_interleaved_alert_changes_land_in_one_statement_per_column_set(db):
    with transaction(db.factory) as session:
        ids = alerts_repo.insert_alerts(session, [_alert(n) for n in range(6)])
    # Value refreshes and resolutions alternate, as a cycle's moves come out budget by budget.
    changes = [
        {"id": ids[f"fp{n}"], "value": 0.9, "updated_at": NOW}
        if n % 2 == 0
        else {"id": ids[f"fp{n}"], "status": "resolved", "ends_at": NOW, "updated_at": NOW}
        for n in range(6)
    ]
    updates: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE ALERTS"):
            updates.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with transaction(db.factory) as session:
            alerts_repo.update_alerts(session, changes)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(updates) == 2
    with transaction(db.factory) as session:
        rows = {row.fingerprint: row for row in session.scalars(select(AlertRow))}
    for n in range(6):
        row = rows[f"fp{n}"]
        if n % 2 == 0:
            assert (row.value, row.status, row.ends_at) == (0.9, "firing", None)
        else:
            assert (row.value, row.status, row.ends_at) == (0.8, "resolved", NOW)
