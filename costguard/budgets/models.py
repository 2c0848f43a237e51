"""Budget definitions and their audit trail."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from costguard.db import Base, JSONDocument, Money, UTCDateTime


class BudgetRow(Base):
    __tablename__ = "budgets"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    pipeline: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128))
    period: Mapped[str] = mapped_column(String(16))
    timezone: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    thresholds: Mapped[list[float]] = mapped_column(JSONDocument)
    forecast: Mapped[bool] = mapped_column(Boolean)
    labels: Mapped[dict[str, str]] = mapped_column(JSONDocument)
    runbook_url: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    # Bumped on every change; the API's ETag. Optimistic concurrency hangs on it.
    version: Mapped[int] = mapped_column(Integer)
    # The budgets-as-code file this budget came from, or None when it is edited by API/UI.
    managed_by_file: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BudgetAudit(Base):
    """Who changed which budget, when, from where, with the documents before and after."""

    __tablename__ = "budget_audit"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    budget_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)

    __table_args__ = (Index("ix_budget_audit_budget_id_at", "budget_id", "at"),)
