"""The latest evaluated status of every budget scope, and the single-runner claim."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, Float, Integer, String, Text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column

from costguard.db import Base, Money, UTCDateTime


class BudgetStatusRow(Base):
    """One row per (budget, tenant): for ``tenant: "*"`` templates there is one per tenant seen."""

    __tablename__ = "budget_status"

    budget_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128))
    period: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(Money())
    spend: Mapped[Decimal] = mapped_column(Money())
    utilization: Mapped[float] = mapped_column(Float)
    forecast_spend: Mapped[Decimal] = mapped_column(Money())
    forecast_utilization: Mapped[float] = mapped_column(Float)
    burn_rate_short: Mapped[float] = mapped_column(Float)
    burn_rate_long: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WorkerClaim(Base):
    """A lease row: on databases without advisory locks, who runs the evaluation cycle now."""

    __tablename__ = "worker_claims"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EvaluationState(Base):
    """When the last evaluation cycle ran (wall clock), how long it took and what failed in it."""

    __tablename__ = "evaluation_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_finished_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_evaluated_for: Mapped[datetime] = mapped_column(UTCDateTime())
    last_duration_seconds: Mapped[float] = mapped_column(Float)
    budgets_evaluated: Mapped[int] = mapped_column(Integer)
    budgets_failed: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)


class BudgetSpend(Base):
    """Exact spend of one budget scope (per tenant for templates) in the period its basis row names.

    Kept up to date by the fold, in the same statement that moves pending deltas into rollups,
    so a cycle reads each budget's period-to-date spend instead of summing rollups.
    """

    __tablename__ = "budget_spend"

    budget_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    spend: Mapped[Decimal] = mapped_column(Money())


class BudgetSpendBasis(Base):
    """What a budget's ``budget_spend`` rows sum: its scope and period bounds.

    When the budget's scope, period or timezone changes, or its period rolls over, the basis no
    longer matches and the rows are rebuilt once from the rollups.
    """

    __tablename__ = "budget_spend_basis"

    budget_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    basis: Mapped[str] = mapped_column(String(512))


class BudgetWindowSpend(Base):
    """Spend of one budget scope over the burn-rate windows, kept by sliding them (PostgreSQL).

    Every budget's windows end at the same instant, ``BudgetWindowState.window_end``: the start of
    the first 15-minute bucket not yet in them. A cycle slides them to its own end (buckets
    entering added, buckets leaving subtracted) and the fold adds the new deltas that fall inside,
    so a cycle never sums the last hours of rollups again.
    """

    __tablename__ = "budget_window_spend"

    budget_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    short_window: Mapped[Decimal] = mapped_column(Money())
    long_window: Mapped[Decimal] = mapped_column(Money())


class BudgetWindowBasis(Base):
    """Which scope a budget's window rows sum: a change means they are rebuilt."""

    __tablename__ = "budget_window_basis"

    budget_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    basis: Mapped[str] = mapped_column(String(512))


class BudgetWindowState(Base):
    """The bucket boundary every budget's window spend ends before (one row)."""

    __tablename__ = "budget_window_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime())


# Threshold lists are arrays on PostgreSQL, the only database whose SQL reads this table.
FloatList = JSON().with_variant(postgresql.ARRAY(Float), "postgresql")
TextList = JSON().with_variant(postgresql.ARRAY(Text), "postgresql")


class BudgetPlan(Base):
    """One budget's scope, current period and rule parameters, as the set-based cycle reads them.

    Rewritten only for the budgets whose spec or period changed, so a cycle does not ship every
    budget to the server again; the clock-dependent numbers (time elapsed and left) are computed
    from these bounds in SQL. Used on PostgreSQL; SQLite evaluates in Python.
    """

    __tablename__ = "budget_plans"

    budget_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    pipeline: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128))
    template: Mapped[bool] = mapped_column(Boolean)
    period: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(Money())
    thresholds: Mapped[list[float]] = mapped_column(FloatList)
    labels: Mapped[list[str]] = mapped_column(TextList)
    min_threshold: Mapped[float | None] = mapped_column(Float)
    forecast: Mapped[bool] = mapped_column(Boolean)
