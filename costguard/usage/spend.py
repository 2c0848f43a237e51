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
from costguard.usage.models import UsageRollup, UsageRollupPending

CostTable = type[UsageRollup] | type[UsageRollupPending]


@dataclass(frozen=True, slots=True)
class Scope:
    """A budget scope (tenant None or "*" = every tenant) over ``[start, end)``."""

    tenant: str | None
    pipeline: str
    model: str
    start: datetime
    end: datetime

    def conditions(self, table: CostTable = UsageRollup) -> list[ColumnElement[bool]]:
        conditions = [table.bucket_start >= self.start, table.bucket_start < self.end]
        if self.tenant not in (None, ALL):
            conditions.append(table.tenant == self.tenant)
        if self.pipeline != ALL:
            conditions.append(table.pipeline == self.pipeline)
        if self.model != ALL:
            conditions.append(table.model == self.model)
        return conditions


def grouped_cost(
    session: Session,
    keys: Sequence[Any],
    conditions: Sequence[ColumnElement[bool]],
    table: CostTable = UsageRollup,
) -> list[tuple[tuple[Any, ...], Decimal]]:
    """SUM(cost) of ``table`` grouped by ``keys``: in SQL on PostgreSQL, exactly in Python on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(select(*keys, func.sum(table.cost)).where(*conditions).group_by(*keys))
        return [(tuple(row[:-1]), Decimal(row[-1] or 0)) for row in rows]
    sums: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    for row in session.execute(select(*keys, table.cost).where(*conditions)):
        sums[tuple(row[:-1])] += row[-1]
    return list(sums.items())


def scope_cost(session: Session, scope: Scope, *, include_pending: bool = False) -> Decimal:
    """Total cost of a scope; with ``include_pending``, also the deltas the worker has not folded yet."""
    tables: tuple[CostTable, ...] = (UsageRollup, UsageRollupPending) if include_pending else (UsageRollup,)
    return sum(
        (cost for table in tables for _, cost in grouped_cost(session, [], scope.conditions(table), table)),
        Decimal(0),
    )
