"""All SQL about budgets and their audit trail."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Text, cast, delete, or_, select, text, update
from sqlalchemy.orm import Session

from costguard.budgets.models import BudgetAudit, BudgetRow
from costguard.budgets.schemas import ALL, BudgetSpec


def row_to_spec(row: Any) -> BudgetSpec:
    """A ``BudgetRow`` or a plain row of its columns."""
    return BudgetSpec(
        id=row.id,
        tenant=row.tenant,
        pipeline=row.pipeline,
        model=row.model,
        period=row.period,
        timezone=row.timezone,
        amount=row.amount,
        currency=row.currency,
        thresholds=tuple(row.thresholds),
        forecast=row.forecast,
        labels=dict(row.labels),
        runbook_url=row.runbook_url,
        description=row.description,
    )


def _columns(spec: BudgetSpec) -> dict[str, Any]:
    return {
        "tenant": spec.tenant,
        "pipeline": spec.pipeline,
        "model": spec.model,
        "period": spec.period,
        "timezone": spec.timezone,
        "amount": spec.amount,
        "currency": spec.currency,
        "thresholds": list(spec.thresholds),
        "forecast": spec.forecast,
        "labels": dict(spec.labels),
        "runbook_url": spec.runbook_url,
        "description": spec.description,
    }


def get(session: Session, budget_id: str) -> BudgetRow | None:
    return session.get(BudgetRow, budget_id)


def list_rows(session: Session, *, tenant: str | None = None) -> Sequence[BudgetRow]:
    query = select(BudgetRow).order_by(BudgetRow.id)
    if tenant is not None:
        # A tenant-bound reader sees its own budgets and the every-tenant templates.
        query = query.where(or_(BudgetRow.tenant == tenant, BudgetRow.tenant == ALL))
    return session.scalars(query).all()


def plain_rows(session: Session) -> Sequence[Any]:
    """Every budget as a plain row, its JSON columns as unparsed text (``thresholds_json``, ``labels_json``).

    The evaluation cycle reads all budgets each time, never changes them and parses only the ones
    it has not seen yet: loading 5,000 ORM objects, or parsing 10,000 JSON documents, cost more
    than evaluating them. ``plain_spec`` turns one into a spec.
    """
    columns = [c for c in BudgetRow.__table__.columns if c.name not in ("thresholds", "labels")]
    json_text = [
        cast(BudgetRow.thresholds, Text).label("thresholds_json"),
        cast(BudgetRow.labels, Text).label("labels_json"),
    ]
    return session.execute(select(*columns, *json_text).order_by(BudgetRow.id)).all()


def row_versions(session: Session) -> tuple[Any, ...] | None:
    """Every budget's id and row version: equal between two reads exactly when no budget was
    created, changed (by any means, a manual SQL edit included) or deleted in between.

    PostgreSQL's ``xmin`` changes with every new version of a row; other databases have no such
    column, and there the answer is None (read the budgets again).
    """
    if session.get_bind().dialect.name != "postgresql":
        return None
    return tuple(session.execute(text("SELECT id, xmin::text FROM budgets ORDER BY id")).all())


def plain_spec(row: Any) -> BudgetSpec:
    """The spec of a ``plain_rows`` row."""
    return row_to_spec(
        SimpleNamespace(**row._mapping, thresholds=json.loads(row.thresholds_json), labels=json.loads(row.labels_json))
    )


def insert(session: Session, spec: BudgetSpec, *, now: datetime, managed_by_file: str | None) -> BudgetRow:
    row = BudgetRow(
        id=spec.id, version=1, managed_by_file=managed_by_file, created_at=now, updated_at=now, **_columns(spec)
    )
    session.add(row)
    session.flush()
    return row


def update_if_version(
    session: Session, spec: BudgetSpec, *, expected_version: int, now: datetime, managed_by_file: str | None
) -> bool:
    """Compare-and-set on the version: False when someone else changed the budget first."""
    result = session.execute(
        update(BudgetRow)
        .where(BudgetRow.id == spec.id, BudgetRow.version == expected_version)
        .values(version=BudgetRow.version + 1, updated_at=now, managed_by_file=managed_by_file, **_columns(spec))
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def delete_if_version(session: Session, budget_id: str, *, expected_version: int) -> bool:
    result = session.execute(
        delete(BudgetRow)
        .where(BudgetRow.id == budget_id, BudgetRow.version == expected_version)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def add_audit(
    session: Session,
    *,
    budget_id: str,
    action: str,
    actor: str,
    source: str,
    at: datetime,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    session.add(
        BudgetAudit(budget_id=budget_id, action=action, actor=actor, source=source, at=at, before=before, after=after)
    )


def audit_entries(session: Session, *, budget_id: str | None = None, limit: int = 500) -> Sequence[BudgetAudit]:
    query = select(BudgetAudit).order_by(BudgetAudit.at.desc(), BudgetAudit.id.desc()).limit(limit)
    if budget_id is not None:
        query = query.where(BudgetAudit.budget_id == budget_id)
    return session.scalars(query).all()
