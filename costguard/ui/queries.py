"""Read queries only the console needs: the paginated overview, spend per bucket, breakdowns."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, union
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from costguard.auth.models import ApiToken
from costguard.budgets.models import BudgetRow
from costguard.budgets.schemas import ALL
from costguard.evaluation.models import BudgetStatusRow
from costguard.usage.models import UsageRollup
from costguard.usage.spend import Scope, grouped_cost

SORTS = ("utilization", "forecast", "budget")
NOT_EVALUATED = "pending"
# Usage without a pipeline or model is rolled up under "" (NO_SCOPE); shown as this.
NONE_LABEL = "(none)"


@dataclass(frozen=True, slots=True)
class OverviewRow:
    budget: BudgetRow
    status: BudgetStatusRow | None

    @property
    def tenant(self) -> str:
        return self.status.tenant if self.status else self.budget.tenant


@dataclass(frozen=True, slots=True)
class OverviewFilter:
    viewer_tenant: str | None = None  # the token's binding
    tenant: str | None = None
    state: str | None = None
    sort: str = "utilization"


def token_by_id(session: Session, token_id: str) -> ApiToken | None:
    return session.get(ApiToken, token_id)


def _conditions(f: OverviewFilter) -> list[ColumnElement[bool]]:
    scope_tenant = func.coalesce(BudgetStatusRow.tenant, BudgetRow.tenant)
    conditions: list[ColumnElement[bool]] = []
    for tenant in (f.viewer_tenant, f.tenant):
        if tenant is not None:
            conditions.append(scope_tenant == tenant)
    if f.state == NOT_EVALUATED:
        conditions.append(BudgetStatusRow.budget_id.is_(None))
    elif f.state is not None:
        conditions.append(BudgetStatusRow.state == f.state)
    return conditions


def _joined() -> ColumnElement[bool]:
    return BudgetStatusRow.budget_id == BudgetRow.id


def overview_page(session: Session, f: OverviewFilter, *, offset: int, limit: int) -> tuple[list[OverviewRow], int]:
    """One page of budget scopes (a template budget has one per tenant) and the total count."""
    conditions = _conditions(f)
    total = session.scalar(
        select(func.count()).select_from(BudgetRow).outerjoin(BudgetStatusRow, _joined()).where(*conditions)
    )
    order: list[Any]
    if f.sort == "budget":
        order = [BudgetRow.id, BudgetStatusRow.tenant]
    else:
        column = BudgetStatusRow.forecast_utilization if f.sort == "forecast" else BudgetStatusRow.utilization
        order = [column.desc().nulls_last(), BudgetRow.id, BudgetStatusRow.tenant]
    query = (
        select(BudgetRow, BudgetStatusRow)
        .outerjoin(BudgetStatusRow, _joined())
        .where(*conditions)
        .order_by(*order)
        .offset(offset)
        .limit(limit)
    )
    return [OverviewRow(b, s) for b, s in session.execute(query).all()], int(total or 0)


def known_tenants(session: Session, *, viewer_tenant: str | None = None) -> list[str]:
    query = union(
        select(BudgetStatusRow.tenant.label("t")),
        select(BudgetRow.tenant.label("t")).where(BudgetRow.tenant != ALL),
    )
    tenants = sorted(t for (t,) in session.execute(query))
    return [t for t in tenants if viewer_tenant is None or t == viewer_tenant]


def spend_per_bucket(session: Session, scope: Scope) -> list[tuple[datetime, Decimal]]:
    """Spend of a scope per 15-minute bucket, oldest first: the chart's data."""
    rows = grouped_cost(session, [UsageRollup.bucket_start], scope.conditions())
    return sorted((key[0], cost) for key, cost in rows)


def breakdown(session: Session, scope: Scope) -> list[tuple[str, str, Decimal]]:
    """Spend of a scope by (pipeline, model), largest first."""
    rows = grouped_cost(session, [UsageRollup.pipeline, UsageRollup.model], scope.conditions())
    named = [(str(k[0]) or NONE_LABEL, str(k[1]) or NONE_LABEL, cost) for k, cost in rows]
    return sorted(named, key=lambda r: (-r[2], r[0], r[1]))


@dataclass(slots=True)
class TenantGlance:
    tenant: str
    spend: Decimal = Decimal(0)
    pipelines: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    models: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    def top(self, which: str, n: int = 3) -> list[tuple[str, Decimal]]:
        sums = self.pipelines if which == "pipelines" else self.models
        return sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def tenants_at_a_glance(
    session: Session, *, since: datetime, tenant: str | None = None, limit: int = 8
) -> list[TenantGlance]:
    """Spend since ``since`` per tenant with its pipelines and models; the biggest spenders first."""
    conditions: list[ColumnElement[bool]] = [UsageRollup.bucket_start >= since]
    if tenant is not None:
        conditions.append(UsageRollup.tenant == tenant)
    keys = [UsageRollup.tenant, UsageRollup.pipeline, UsageRollup.model]
    glances: dict[str, TenantGlance] = {}
    for (name, pipeline, model), cost in grouped_cost(session, keys, conditions):
        glance = glances.setdefault(str(name), TenantGlance(str(name)))
        glance.spend += cost
        glance.pipelines[str(pipeline) or NONE_LABEL] += cost
        glance.models[str(model) or NONE_LABEL] += cost
    return sorted(glances.values(), key=lambda g: (-g.spend, g.tenant))[:limit]
