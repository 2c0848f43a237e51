"""All SQL about usage records: idempotent inserts, and the new usage the worker has not folded yet."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Result, insert, select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from costguard.usage.models import BUCKET_SECONDS, NO_SCOPE, UsageBatch, UsageRecord, UsageRollupPending
from costguard.usage.schemas import UsageIn

Key = tuple[str, str]
KEY_CHUNK = 500
# (tenant, pipeline, model, bucket_start, kind, cost, records), pipeline and model "" for none.
Delta = tuple[str, str, str, datetime, str, Decimal, int]

# The records of the batches ``:ids`` (all between ``:low`` and ``:high``) summed per rollup key:
# the deltas the fast ingest path leaves to the worker. The BRIN index on batch_id finds them by
# the id range, among the few recent pages it covers; the list of ids then filters those pages.
BATCH_DELTAS = f"""
    SELECT tenant, COALESCE(pipeline, '{NO_SCOPE}'), COALESCE(model, '{NO_SCOPE}'),
           date_bin('{BUCKET_SECONDS} seconds', "timestamp", TIMESTAMPTZ '1970-01-01 00:00:00+00'), kind,
           SUM(cost), COUNT(*)
    FROM usage_records
    WHERE batch_id BETWEEN CAST(:low AS bigint) AND CAST(:high AS bigint) AND batch_id = ANY(CAST(:ids AS bigint[]))
    GROUP BY 1, 2, 3, 4, 5
"""


def sum_batches(session: Session, ids: Sequence[int], *, into: str | None = None) -> Result[Any]:
    """Run BATCH_DELTAS for these batches (``INSERT INTO into`` it when given): through the index only.

    Statistics gathered before a large import can make the id range look like a good part of the
    table, and a sequential scan would then read the whole history to find one batch.
    """
    statement = text(BATCH_DELTAS if into is None else f"INSERT INTO {into}" + BATCH_DELTAS)
    session.execute(text("SET LOCAL enable_seqscan = off"))
    try:
        return session.execute(statement, {"low": min(ids), "high": max(ids), "ids": list(ids)})
    finally:
        session.execute(text("SET LOCAL enable_seqscan = on"))


# Page ranges of usage_records that the BRIN index does not summarize yet are read by every
# search for a batch, whatever it holds. ``autosummarize`` asks autovacuum to summarize each
# range once the next one is started, but those requests are dropped when they come faster than
# autovacuum serves them (a large import), and then the unsummarized tail would grow until the
# table's next vacuum. So after a fold that took batches the worker summarizes the new ranges
# itself: it reads the same recent pages the fold just read.
_SUMMARIZE_BATCH_INDEX = "SELECT brin_summarize_new_values('ix_usage_records_batch_id')"
# Summarizing waits for a vacuum of the table to end; better to leave the ranges to that vacuum.
_SUMMARIZE_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '200ms'"


def summarize_batch_index(session: Session) -> int:
    """Summarize the BRIN ranges the batch index has not summarized yet; returns how many."""
    session.execute(text(_SUMMARIZE_LOCK_TIMEOUT))
    return int(session.execute(text(_SUMMARIZE_BATCH_INDEX)).scalar_one())


def bucket_start(at: datetime) -> datetime:
    """The start of the 15-minute UTC bucket holding ``at``."""
    seconds = int(at.timestamp())
    return datetime.fromtimestamp(seconds - seconds % BUCKET_SECONDS, UTC)


def existing_hashes(session: Session, keys: Sequence[Key]) -> dict[Key, str]:
    """Content hashes of already stored records among ``keys``."""
    found: dict[Key, str] = {}
    for start in range(0, len(keys), KEY_CHUNK):
        chunk = keys[start : start + KEY_CHUNK]
        rows = session.execute(
            select(UsageRecord.tenant, UsageRecord.event_id, UsageRecord.content_hash).where(
                tuple_(UsageRecord.tenant, UsageRecord.event_id).in_(chunk)
            )
        )
        found.update({(tenant, event_id): digest for tenant, event_id, digest in rows})
    return found


def insert_new(session: Session, records: Sequence[UsageIn], *, now: datetime) -> set[Key]:
    """Insert records, skipping keys that a concurrent transaction stored first; returns the keys inserted."""
    if not records:
        return set()
    dialect = session.get_bind().dialect.name
    stmt_factory = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        stmt_factory(UsageRecord)
        .on_conflict_do_nothing(index_elements=["tenant", "event_id"])
        .returning(UsageRecord.tenant, UsageRecord.event_id)
    )
    rows = [
        {
            "tenant": r.tenant,
            "event_id": r.event_id,
            "timestamp": r.timestamp,
            "pipeline": r.pipeline,
            "model": r.model,
            "cost": r.cost,
            "currency": r.currency,
            "kind": r.kind,
            "attributes": r.attributes,
            "content_hash": r.content_hash,
            "ingested_at": now,
        }
        for r in records
    ]
    inserted: set[Key] = set()
    for start in range(0, len(rows), 1000):
        result = session.execute(statement, rows[start : start + 1000])
        inserted.update((tenant, event_id) for tenant, event_id in result)
    return inserted


def add_pending_deltas(session: Session, records: Iterable[UsageIn]) -> None:
    """Sum the inserted records per rollup key and queue the sums for the worker to fold in."""
    sums: dict[tuple[str, str, str, datetime, str], list[Decimal | int]] = defaultdict(lambda: [Decimal(0), 0])
    for r in records:
        key = (r.tenant, r.pipeline or NO_SCOPE, r.model or NO_SCOPE, bucket_start(r.timestamp), r.kind)
        entry = sums[key]
        entry[0] += r.cost
        entry[1] += 1
    if not sums:
        return
    session.execute(
        insert(UsageRollupPending),
        [
            {
                "tenant": tenant,
                "pipeline": pipeline,
                "model": model,
                "bucket_start": bucket,
                "kind": kind,
                "cost": cost,
                "records": count,
            }
            for (tenant, pipeline, model, bucket, kind), (cost, count) in sums.items()
        ],
    )


def count_records(session: Session) -> int:
    from sqlalchemy import func

    return int(session.scalar(select(func.count()).select_from(UsageRecord)) or 0)


def unfolded_deltas(session: Session) -> list[Delta]:
    """What committed usage the worker has not folded yet: pending deltas and the sums of new batches."""
    pending = UsageRollupPending
    columns = (pending.tenant, pending.pipeline, pending.model, pending.bucket_start, pending.kind)
    deltas: list[Delta] = [
        (*row[:5], Decimal(row[5]), int(row[6]))
        for row in session.execute(select(*columns, pending.cost, pending.records))
    ]
    batches = list(session.scalars(select(UsageBatch.id)))
    if batches:  # only the PostgreSQL COPY path writes batches
        rows: Any = sum_batches(session, batches)
        deltas.extend((*row[:5], Decimal(row[5]), int(row[6])) for row in rows)
    return deltas
