"""PostgreSQL optimistic path (repository): binary COPY straight into ``usage_records``.

Most batches hold only new keys. For them, staging and then merging costs the server the whole
batch twice, and the merge cannot start before the last record is parsed. Here the server inserts
while Python parses (two cores at work). The records carry the id of a ``usage_batches`` row
written in the same transaction, and the worker sums them from there: no per-bucket deltas are
computed or written here, which was a third of this path's time.

The unique key (tenant, event_id) is the referee: a replay, a duplicate inside the batch, a key
taken by a concurrent writer, or a deadlock with one, all abort the COPY. Then everything this
path wrote is rolled back to its savepoint and the caller takes the staging path, which counts
duplicates and detects conflicts. So this path never decides about duplicates itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from psycopg import errors
from psycopg.adapt import Dumper
from psycopg.pq import Format
from sqlalchemy.orm import Session

from costguard.usage.schemas import UsageIn
from costguard.usage.staging import COLUMNS, TYPES, copy_fields, driver

_SAVEPOINT = "costguard_direct_copy"
_BATCH = "INSERT INTO usage_batches (ingested_at) VALUES (%s) RETURNING id"
_RECORDS = f"COPY usage_records ({COLUMNS}, ingested_at, batch_id) FROM STDIN (FORMAT BINARY)"
# A chunk ends after this many records, so that a key clash surfaces early: a replayed file is
# abandoned after its first chunk, not at its end.
CHUNK_RECORDS = 50_000
# The errors that mean "a key is taken, or two writers crossed": the staging path sorts it out.
CLASHES = (errors.UniqueViolation, errors.DeadlockDetected)


class _JsonbTextDumper(Dumper):
    """jsonb in binary COPY from text that is already canonical JSON: version byte 1 + UTF-8."""

    oid = 3802  # jsonb
    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return b"\x01" + obj.encode()


# staging.TYPES, but attributes go in as jsonb directly, and ingested_at and batch_id are added.
_RECORD_TYPES = [*TYPES[:8], "jsonb", "text", "timestamptz", "int8"]


def copy_records(session: Session, records: Iterable[UsageIn], *, now: datetime) -> int | None:
    """COPY the records as one new batch; return how many, or None (all undone) on a key clash."""
    conn = driver(session)
    stored = 0
    with conn.cursor() as cursor:
        # By oid only: the jsonb column of set_types() below; nothing else on the connection changes.
        cursor.adapters.register_dumper(None, _JsonbTextDumper)
        cursor.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            cursor.execute(_BATCH, (now,))
            row = cursor.fetchone()
            assert row is not None
            trailer = (now, row[0])
            iterator = iter(records)
            while True:
                count = _copy_chunk(cursor, iterator, trailer)
                stored += count
                if count < CHUNK_RECORDS:
                    break
        except CLASHES:
            cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            return None
        cursor.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
    return stored


def _copy_chunk(cursor: Any, records: Iterator[UsageIn], trailer: tuple[datetime, int]) -> int:
    """Up to CHUNK_RECORDS records into usage_records, each followed by ``trailer`` (ingested_at, batch_id)."""
    count = 0
    with cursor.copy(_RECORDS) as copy:
        copy.set_types(_RECORD_TYPES)
        write = copy.write_row
        fields = copy_fields
        for r in records:
            write(fields(r) + trailer)
            count += 1
            if count == CHUNK_RECORDS:
                break
    return count
