"""The aggregation of ``rollup`` for SQLite, in Python: its NUMERIC is a float, so sums happen here.

Same results as the PostgreSQL statements, computed from the exact text values; fine for the
embedded database's sizes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from costguard.evaluation.models import BudgetSpend
from costguard.evaluation.scopes import BudgetWindow, RecentSpend, ScopeKey
from costguard.usage.models import UsageRollup, UsageRollupPending, UsageTotal


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


def _add_spend(session: Session, sums: dict[ScopeKey, Decimal]) -> None:
    for (budget_id, tenant), cost in sums.items():
        row = session.get(BudgetSpend, (budget_id, tenant))
        if row is None:
            session.add(BudgetSpend(budget_id=budget_id, tenant=tenant, spend=cost))
        else:
            row.spend += cost


def rebuild(session: Session, stale: Sequence[BudgetWindow]) -> None:
    """Sum the rollups of each stale budget's period afresh (its old rows are already deleted)."""
    sums: dict[ScopeKey, Decimal] = defaultdict(Decimal)
    for window in stale:
        query = select(UsageRollup.tenant, UsageRollup.pipeline, UsageRollup.model, UsageRollup.cost).where(
            UsageRollup.bucket_start >= window.period_start, UsageRollup.bucket_start < window.period_end
        )
        if window.tenant != "*":
            query = query.where(UsageRollup.tenant == window.tenant)
        for tenant, pipeline, model, cost in session.execute(query):
            if window.covers(tenant, pipeline, model):
                sums[(window.budget_id, tenant)] += cost
    _add_spend(session, sums)
    session.flush()


def fold(session: Session, windows: Sequence[BudgetWindow]) -> int:
    """Move every pending delta into rollups, totals and the spend of each budget it falls in."""
    pending = session.execute(select(UsageRollupPending)).scalars().all()
    if not pending:
        return 0
    buckets: dict[tuple[str, datetime, str, str, str], _Sum] = defaultdict(_Sum)
    scopes: dict[tuple[str, str, str, str], _Sum] = defaultdict(_Sum)
    spend: dict[ScopeKey, Decimal] = defaultdict(Decimal)
    for delta in pending:
        buckets[(delta.tenant, delta.bucket_start, delta.pipeline, delta.model, delta.kind)].add(delta)
        scopes[(delta.tenant, delta.pipeline, delta.model, delta.kind)].add(delta)
        for window in windows:
            if window.in_period(delta.bucket_start) and window.covers(delta.tenant, delta.pipeline, delta.model):
                spend[(window.budget_id, delta.tenant)] += delta.cost
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
    _add_spend(session, spend)
    session.execute(delete(UsageRollupPending).where(UsageRollupPending.id.in_([d.id for d in pending])))
    session.flush()
    return sum(d.records for d in pending)


def recent(
    session: Session, windows: Sequence[BudgetWindow], *, short_start: datetime, long_start: datetime, now: datetime
) -> dict[ScopeKey, RecentSpend]:
    query = select(
        UsageRollup.tenant, UsageRollup.pipeline, UsageRollup.model, UsageRollup.bucket_start, UsageRollup.cost
    ).where(UsageRollup.bucket_start >= long_start, UsageRollup.bucket_start < now)
    result: dict[ScopeKey, RecentSpend] = {}
    for tenant, pipeline, model, bucket, cost in session.execute(query):
        for window in windows:
            if window.covers(tenant, pipeline, model):
                entry = result.setdefault((window.budget_id, tenant), RecentSpend(Decimal(0), Decimal(0)))
                entry.long_window += cost
                if bucket >= short_start:
                    entry.short_window += cost
    return result
