"""All SQL of the worker's aggregation: fold pending deltas into rollups and read spend from them.

PostgreSQL does everything set-based in SQL. SQLite cannot add decimals exactly (its NUMERIC is
a float), so there the same results are computed in Python from the exact text values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import and_, case, delete, func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from costguard.budgets.schemas import ALL
from costguard.usage.models import UsageRollup, UsageRollupPending, UsageTotal

_FOLD_POSTGRES = text(
    """
    WITH moved AS (
        DELETE FROM usage_rollup_pending
        RETURNING tenant, pipeline, model, bucket_start, kind, cost, records
    ), rollups AS (
        INSERT INTO usage_rollups AS r (tenant, bucket_start, pipeline, model, kind, cost, records)
        SELECT tenant, bucket_start, pipeline, model, kind, SUM(cost), SUM(records)
        FROM moved GROUP BY tenant, bucket_start, pipeline, model, kind
        ON CONFLICT (tenant, bucket_start, pipeline, model, kind)
        DO UPDATE SET cost = r.cost + EXCLUDED.cost, records = r.records + EXCLUDED.records
        RETURNING 1
    ), totals AS (
        INSERT INTO usage_totals AS t (tenant, pipeline, model, kind, cost, records, last_timestamp)
        SELECT tenant, pipeline, model, kind, SUM(cost), SUM(records), MAX(bucket_start)
        FROM moved GROUP BY tenant, pipeline, model, kind
        ON CONFLICT (tenant, pipeline, model, kind)
        DO UPDATE SET cost = t.cost + EXCLUDED.cost, records = t.records + EXCLUDED.records,
                      last_timestamp = GREATEST(t.last_timestamp, EXCLUDED.last_timestamp)
        RETURNING 1
    )
    SELECT (SELECT COUNT(*) FROM moved), (SELECT COALESCE(SUM(records), 0) FROM moved)
    """
)


def fold_pending(session: Session) -> int:
    """Move every committed pending delta into the rollups and totals; returns the records folded."""
    if session.get_bind().dialect.name == "postgresql":
        _deltas, records = session.execute(_FOLD_POSTGRES).one()
        return int(records)
    return _fold_in_python(session)


@dataclass(slots=True)
class _Sum:
    cost: Decimal = Decimal(0)
    records: int = 0
    last_bucket: datetime | None = None

    def add(self, delta: UsageRollupPending) -> None:
        self.cost += delta.cost
        self.records += delta.records
        if self.last_bucket is None or delta.bucket_start > self.last_bucket:
            self.last_bucket = delta.bucket_start


def _fold_in_python(session: Session) -> int:
    pending = session.execute(select(UsageRollupPending)).scalars().all()
    if not pending:
        return 0
    buckets: dict[tuple[str, datetime, str, str, str], _Sum] = defaultdict(_Sum)
    scopes: dict[tuple[str, str, str, str], _Sum] = defaultdict(_Sum)
    for delta in pending:
        buckets[(delta.tenant, delta.bucket_start, delta.pipeline, delta.model, delta.kind)].add(delta)
        scopes[(delta.tenant, delta.pipeline, delta.model, delta.kind)].add(delta)
    for (tenant, bucket, pipeline, model, kind), total in buckets.items():
        row = session.get(UsageRollup, (tenant, bucket, pipeline, model, kind))
        if row is None:
            session.add(
                UsageRollup(
                    tenant=tenant,
                    bucket_start=bucket,
                    pipeline=pipeline,
                    model=model,
                    kind=kind,
                    cost=total.cost,
                    records=total.records,
                )
            )
        else:
            row.cost += total.cost
            row.records += total.records
    for (tenant, pipeline, model, kind), total in scopes.items():
        assert total.last_bucket is not None
        scope_row = session.get(UsageTotal, (tenant, pipeline, model, kind))
        if scope_row is None:
            session.add(
                UsageTotal(
                    tenant=tenant,
                    pipeline=pipeline,
                    model=model,
                    kind=kind,
                    cost=total.cost,
                    records=total.records,
                    last_timestamp=total.last_bucket,
                )
            )
        else:
            scope_row.cost += total.cost
            scope_row.records += total.records
            scope_row.last_timestamp = max(scope_row.last_timestamp, total.last_bucket)
    session.execute(delete(UsageRollupPending).where(UsageRollupPending.id.in_([d.id for d in pending])))
    session.flush()
    return sum(d.records for d in pending)


@dataclass(frozen=True, slots=True)
class Windows:
    """The instants that bound what one budget scope needs: its period and the burn-rate windows."""

    period_start: datetime
    period_end: datetime
    short_start: datetime
    long_start: datetime
    now: datetime


@dataclass(slots=True)
class ScopeSpend:
    spend: Decimal
    short_window: Decimal
    long_window: Decimal


def scope_spend(session: Session, *, tenant: str, pipeline: str, model: str, windows: Windows) -> dict[str, ScopeSpend]:
    """Spend per tenant of one budget scope (``tenant="*"``: every tenant separately)."""
    earliest = min(windows.period_start, windows.long_start)
    latest = max(windows.period_end, windows.now)
    conditions: list[ColumnElement[bool]] = [UsageRollup.bucket_start >= earliest, UsageRollup.bucket_start < latest]
    if tenant != ALL:
        conditions.append(UsageRollup.tenant == tenant)
    if pipeline != ALL:
        conditions.append(UsageRollup.pipeline == pipeline)
    if model != ALL:
        conditions.append(UsageRollup.model == model)
    if session.get_bind().dialect.name == "postgresql":
        return _scope_spend_sql(session, conditions, windows)
    return _scope_spend_python(session, conditions, windows)


def _in(start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(UsageRollup.bucket_start >= start, UsageRollup.bucket_start < end)


def _scope_spend_sql(session: Session, conditions: Sequence[ColumnElement[bool]], w: Windows) -> dict[str, ScopeSpend]:
    query = (
        select(
            UsageRollup.tenant,
            func.sum(case((_in(w.period_start, w.period_end), UsageRollup.cost), else_=0)),
            func.sum(case((_in(w.short_start, w.now), UsageRollup.cost), else_=0)),
            func.sum(case((_in(w.long_start, w.now), UsageRollup.cost), else_=0)),
        )
        .where(*conditions)
        .group_by(UsageRollup.tenant)
    )
    return {
        tenant: ScopeSpend(Decimal(spend or 0), Decimal(short or 0), Decimal(long or 0))
        for tenant, spend, short, long in session.execute(query)
    }


def _scope_spend_python(
    session: Session, conditions: Sequence[ColumnElement[bool]], w: Windows
) -> dict[str, ScopeSpend]:
    query = select(UsageRollup.tenant, UsageRollup.bucket_start, UsageRollup.cost).where(*conditions)
    result: dict[str, ScopeSpend] = {}
    for tenant, bucket, cost in session.execute(query):
        entry = result.setdefault(tenant, ScopeSpend(Decimal(0), Decimal(0), Decimal(0)))
        if w.period_start <= bucket < w.period_end:
            entry.spend += cost
        if w.short_start <= bucket < w.now:
            entry.short_window += cost
        if w.long_start <= bucket < w.now:
            entry.long_window += cost
    return result


def totals(session: Session) -> Iterable[UsageTotal]:
    return session.scalars(select(UsageTotal)).all()
