"""Tables of raw usage and of the rollups the worker reads instead of the raw history."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from costguard.db import Base, JSONDocument, Money, UTCDateTime

# Rollup buckets are 15 minutes wide: every timezone in use today has an offset that is a multiple
# of 15 minutes (UTC+05:30, UTC+05:45, UTC+08:45 ...), so every calendar period in any of them
# starts and ends on a bucket boundary and sums of whole buckets are exact.
BUCKET_SECONDS = 15 * 60

# Scope columns of rollups are NOT NULL: a missing pipeline or model is stored as "" so that
# unique keys and upserts treat it as one value (NULLs never compare equal).
NO_SCOPE = ""


class UsageRecord(Base):
    """One priced request or adjustment, unique per (tenant, event_id).

    The primary key starts with the tenant so the table can be distributed by tenant; the
    timestamp index lets it be partitioned by time with the key moved to ``usage_keys``.
    """

    __tablename__ = "usage_records"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    pipeline: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(128))
    cost: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(16))
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    # sha256 of the canonical record: tells an identical replay from a conflicting one.
    content_hash: Mapped[str] = mapped_column(String(64))
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The ``usage_batches`` row of the COPY that stored it (None for records whose deltas went to
    # ``usage_rollup_pending``); looked up only while that row exists, i.e. until the worker has
    # folded the batch. Batches are numbered in the order they start and their rows are appended
    # to the heap, so a BRIN index (a summary per range of pages, not an entry per row) finds a
    # batch's rows among recent pages at little cost per insert.
    batch_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_usage_records_tenant_timestamp", "tenant", "timestamp"),
        Index(
            "ix_usage_records_batch_id",
            "batch_id",
            postgresql_using="brin",
            postgresql_with={"pages_per_range": 32, "autosummarize": "on"},
        ),
    )


class UsageBatch(Base):
    """A COPY of records not folded yet: committed with its records, deleted by the fold that adds them.

    The fast ingest path (PostgreSQL) writes one such row instead of per-bucket deltas: the
    worker sums the batch's records itself. The same argument as for pending deltas holds: the
    row becomes visible exactly when its records commit, and the fold deletes the batches it
    adds in its own transaction, so no record is skipped or counted twice.
    """

    __tablename__ = "usage_batches"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UsageRollupPending(Base):
    """Per-batch sums written in the ingest transaction and folded into rollups by the worker.

    Because a delta becomes visible exactly when its records commit, and folding deletes the
    deltas it adds in the same transaction, no record is ever skipped or added twice, whatever
    order concurrent ingests commit in (no id watermark involved).
    """

    __tablename__ = "usage_rollup_pending"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    pipeline: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128))
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(16))
    cost: Mapped[Decimal] = mapped_column(Money())
    records: Mapped[int] = mapped_column(BigInteger)


class UsageRollup(Base):
    """Exact cost per (tenant, pipeline, model, 15-minute bucket, kind)."""

    __tablename__ = "usage_rollups"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(128), primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    cost: Mapped[Decimal] = mapped_column(Money())
    records: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_usage_rollups_bucket_start", "bucket_start"),)


class UsageTotal(Base):
    """All-time cost and record count per (tenant, pipeline, model, kind): the cost-per-scope counters."""

    __tablename__ = "usage_totals"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(128), primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    cost: Mapped[Decimal] = mapped_column(Money())
    records: Mapped[int] = mapped_column(BigInteger)
    last_timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
