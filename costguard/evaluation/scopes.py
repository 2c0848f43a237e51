"""Which usage a budget scope covers in the cycle being run: pure data, shared by SQL and Python paths."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

ALL = "*"


@dataclass(frozen=True, slots=True)
class BudgetWindow:
    """One budget's scope and current period ``[period_start, period_end)`` as of the cycle's instant."""

    budget_id: str
    tenant: str
    pipeline: str
    model: str
    period_start: datetime
    period_end: datetime
    # Identity of what the budget's stored period spend sums, and of what its window spend sums
    # (the scope alone): a change means they must be rebuilt.
    basis: str = field(init=False, compare=False)
    scope_basis: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        scope = "\x1f".join((self.tenant, self.pipeline, self.model))
        object.__setattr__(self, "scope_basis", scope)
        period = (self.period_start.isoformat(), self.period_end.isoformat())
        object.__setattr__(self, "basis", "\x1f".join((scope, *period)))

    def covers(self, tenant: str, pipeline: str, model: str) -> bool:
        return (
            (self.tenant == ALL or self.tenant == tenant)
            and (self.pipeline == ALL or self.pipeline == pipeline)
            and (self.model == ALL or self.model == model)
        )

    def in_period(self, bucket_start: datetime) -> bool:
        return self.period_start <= bucket_start < self.period_end


@dataclass(slots=True)
class RecentSpend:
    """Spend of one scope over the burn-rate windows ``[now - short, now)`` and ``[now - long, now)``."""

    short_window: Decimal
    long_window: Decimal


ScopeKey = tuple[str, str]  # (budget_id, tenant)
