"""Exact cost sums of a scope over rollup buckets, for readers outside the evaluation cycle.

PostgreSQL sums money in SQL; SQLite stores money as text (its NUMERIC is a float), so there the
rows are summed exactly in Python.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from costguard.budgets.schemas import ALL
from costguard.usage.models import UsageRollup
from costguard.usage.repository import Delta


@dataclass(frozen=True, slots=True)
class Scope:
    """A budget scope (tenant None or "*" = every tenant) over ``[start, end)``."""

    tenant: str | None
    pipeline: str
    model: str
    start: datetime
    end: datetime

    def conditions(self) -> list[ColumnElement[bool]]:
        table = UsageRollup
        conditions = [table.bucket_start >= self.start, table.bucket_start < self.end]
        if self.tenant not in (None, ALL):
            conditions.append(table.tenant == self.tenant)
        if self.pipeline != ALL:
            conditions.append(table.pipeline == self.pipeline)
        if self.model != ALL:
            conditions.append(table.model == self.model)
        return conditions

    def covers(self, delta: Delta) -> bool:
        tenant, pipeline, model, bucket_start = delta[:4]
        return (
            self.start <= bucket_start < self.end
            and self.tenant in (None, ALL, tenant)
            and self.pipeline in (ALL, pipeline)
            and self.model in (ALL, model)
        )


def grouped_cost(
    session: Session,
    keys: Sequence[Any],
    conditions: Sequence[ColumnElement[bool]],
) -> list[tuple[tuple[Any, ...], Decimal]]:
    """SUM(cost) of the rollups grouped by ``keys``: in SQL on PostgreSQL, exactly in Python on SQLite."""
    table = UsageRollup
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(select(*keys, func.sum(table.cost)).where(*conditions).group_by(*keys))
        return [(tuple(row[:-1]), Decimal(row[-1] or 0)) for row in rows]
    sums: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    for row in session.execute(select(*keys, table.cost).where(*conditions)):
        sums[tuple(row[:-1])] += row[-1]
    return list(sums.items())


def scope_cost(session: Session, scope: Scope, *, unfolded: Sequence[Delta] = ()) -> Decimal:
    """Total cost of a scope in the rollups, plus what of ``unfolded`` (``unfolded_deltas``) it covers.

    The caller reads the unfolded usage once for all the scopes it sums: it is what arrived since
    the last cycle, or everything since the worker stopped.
    """
    folded = sum((cost for _, cost in grouped_cost(session, [], scope.conditions())), Decimal(0))
    return folded + sum((delta[5] for delta in unfolded if scope.covers(delta)), Decimal(0))
