"""Alert instances and the transactional outbox of notifications still to deliver."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from costguard.db import Base, JSONDocument, UTCDateTime


class AlertRow(Base):
    """One alert per (budget, scope, period, alertname, threshold), identified by its fingerprint."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(32), unique=True)
    alertname: Mapped[str] = mapped_column(String(64))
    budget_id: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str] = mapped_column(String(128))
    pipeline: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128))
    period: Mapped[str] = mapped_column(String(16))
    threshold: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # firing | resolved
    labels: Mapped[dict[str, str]] = mapped_column(JSONDocument)
    annotations: Mapped[dict[str, str]] = mapped_column(JSONDocument)
    generator_url: Mapped[str] = mapped_column(Text)
    value: Mapped[float] = mapped_column(Float)
    # Consecutive evaluations whose condition disagreed with the status: hysteresis counter.
    pending_flips: Mapped[int] = mapped_column(Integer, default=0)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_alerts_status", "status"), Index("ix_alerts_budget_id", "budget_id"))


class AlertNotification(Base):
    """Outbox: one row per alert transition and receiver, written with the transition itself."""

    __tablename__ = "alert_notifications"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    receiver: Mapped[str] = mapped_column(String(512))
    event: Mapped[str] = mapped_column(String(16))  # firing | resolved | resend
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | dead
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_alert_notifications_status_next_attempt_at", "status", "next_attempt_at"),)


class ReceiverState(Base):
    """Per-receiver delivery health, exported as metrics and read by /v1/alerts."""

    __tablename__ = "alert_receivers"

    receiver: Mapped[str] = mapped_column(String(512), primary_key=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    # Cumulative counters kept in the database so every replica exports the same values.
    notifications_total: Mapped[int] = mapped_column(BigInteger, default=0)
    failures_total: Mapped[int] = mapped_column(BigInteger, default=0)
    last_resend_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
