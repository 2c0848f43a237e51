"""PostgreSQL fast path (repository): binary COPY into a staging table, then one set-based merge.

The merge is a single statement: it inserts the staged records in key order (so concurrent
batches that share keys wait on each other in the same order and cannot deadlock), skips keys
already stored, and writes the pending rollup deltas of exactly the rows it inserted. Whether a
skipped key was an identical replay or a conflict is checked afterwards, against what is now
committed, and only when something was skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from operator import attrgetter
from typing import Any

from psycopg import errors
from sqlalchemy.orm import Session

from costguard.usage.schemas import UsageIn

Key = tuple[str, str]
STAGING = "usage_staging"
COLUMNS = 'tenant, event_id, "timestamp", pipeline, model, cost, currency, kind, attributes, content_hash'
# The record's values in COLUMNS order, as one tuple (a C-level getter: this runs per record).
copy_fields = attrgetter(
    "tenant",
    "event_id",
    "timestamp",
    "pipeline",
    "model",
    "cost",
    "currency",
    "kind",
    "attributes_json",
    "content_hash",
)
TYPES = ["text", "text", "timestamptz", "text", "text", "numeric", "text", "text", "text", "text"]
MAX_CONFLICTS_REPORTED = 100

_CREATE = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGING} (
    tenant text NOT NULL, event_id text NOT NULL, "timestamp" timestamptz NOT NULL,
    pipeline text, model text, cost numeric NOT NULL, currency text NOT NULL, kind text NOT NULL,
    attributes text, content_hash text NOT NULL
) ON COMMIT DROP
"""

# Buckets are 15-minute UTC slices counted from the epoch, as repository.bucket_start computes them.
# The sort (key order) and the per-bucket sums of a large file stay in memory up to this size
# instead of spilling to disk, which halves the merge time of a large file.
MERGE_WORK_MEM = "128MB"
MERGE_ATTEMPTS = 5
_MERGE = f"""
WITH inserted AS (
    INSERT INTO usage_records ({COLUMNS}, ingested_at)
    SELECT tenant, event_id, "timestamp", pipeline, model, cost, currency, kind, attributes::jsonb,
           content_hash, %(now)s
    FROM {STAGING}
    ORDER BY tenant, event_id
    ON CONFLICT (tenant, event_id) DO NOTHING
    RETURNING tenant, pipeline, model, "timestamp", kind, cost
), deltas AS (
    INSERT INTO usage_rollup_pending (tenant, pipeline, model, bucket_start, kind, cost, records)
    SELECT tenant, coalesce(pipeline, ''), coalesce(model, ''),
           date_bin('15 minutes', "timestamp", TIMESTAMPTZ '1970-01-01 00:00:00+00'), kind, sum(cost), count(*)
    FROM inserted
    GROUP BY 1, 2, 3, 4, 5
    RETURNING records
)
SELECT coalesce(sum(records), 0) FROM deltas
"""

_CONFLICTS = f"""
SELECT DISTINCT s.tenant, s.event_id
FROM {STAGING} s JOIN usage_records r ON r.tenant = s.tenant AND r.event_id = s.event_id
WHERE r.content_hash <> s.content_hash
ORDER BY 1, 2
LIMIT {MAX_CONFLICTS_REPORTED}
"""


def driver(session: Session) -> Any:
    """The psycopg connection under the session, inside the session's transaction."""
    return session.connection().connection.driver_connection


def stage(session: Session, records: Iterable[UsageIn]) -> int:
    """COPY the records (consumed as they come, never held) into a fresh staging table; returns how many."""
    conn = driver(session)
    count = 0
    with conn.cursor() as cursor:
        cursor.execute(_CREATE)
        cursor.execute(f"TRUNCATE {STAGING}")
        with cursor.copy(f"COPY {STAGING} ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(TYPES)
            write = copy.write_row
            fields = copy_fields
            for r in records:
                write(fields(r))
                count += 1
    return count


def merge(session: Session, *, now: datetime) -> int:
    """Insert the staged records not stored yet, with their pending deltas; returns how many were inserted.

    Merges insert in key order and cannot deadlock each other, but a concurrent optimistic COPY
    (``direct``) inserts in file order and can: if this merge is the one PostgreSQL aborts, it
    is undone to its savepoint and run again once the other writer has moved on.
    """
    with driver(session).cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{MERGE_WORK_MEM}'")
        for attempt in range(1, MERGE_ATTEMPTS + 1):
            cursor.execute("SAVEPOINT costguard_merge")
            try:
                cursor.execute(_MERGE, {"now": now})
            except errors.DeadlockDetected:
                cursor.execute("ROLLBACK TO SAVEPOINT costguard_merge")
                if attempt == MERGE_ATTEMPTS:
                    raise
                continue
            row = cursor.fetchone()
            cursor.execute("RELEASE SAVEPOINT costguard_merge")
            return int(row[0]) if row else 0
    raise AssertionError("unreachable")  # pragma: no cover


def conflicts(session: Session) -> list[Key]:
    """Staged keys whose stored record (ours, another in the file, or a concurrent one) has other content."""
    with driver(session).cursor() as cursor:
        cursor.execute(_CONFLICTS)
        return [(tenant, event_id) for tenant, event_id in cursor.fetchall()]
