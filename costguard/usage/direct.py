"""PostgreSQL optimistic path (repository): binary COPY straight into ``usage_records``.

Most batches hold only new keys. For them, staging and then merging costs the server the whole
batch twice, and the merge cannot start before the last record is parsed. Here the server inserts
while Python parses (two cores at work), and the rollup deltas are summed in Python and written
at the end of each chunk, in the same transaction.

The unique key (tenant, event_id) is the referee: a replay, a duplicate inside the batch, a key
taken by a concurrent writer, or a deadlock with one, all abort the COPY. Then everything this
path wrote is rolled back to its savepoint and the caller takes the staging path, which counts
duplicates and detects conflicts. So this path never decides about duplicates itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from psycopg import errors
from psycopg.adapt import Dumper
from psycopg.pq import Format
from sqlalchemy.orm import Session

from costguard.usage.models import BUCKET_SECONDS, NO_SCOPE
from costguard.usage.schemas import UsageIn
from costguard.usage.staging import COLUMNS, TYPES, copy_fields, driver

_SAVEPOINT = "costguard_direct_copy"
_RECORDS = f"COPY usage_records ({COLUMNS}, ingested_at) FROM STDIN (FORMAT BINARY)"
_DELTAS = (
    "COPY usage_rollup_pending (tenant, pipeline, model, bucket_start, kind, cost, records) FROM STDIN (FORMAT BINARY)"
)
_DELTA_TYPES = ["text", "text", "text", "timestamptz", "text", "numeric", "int8"]
# A chunk ends after this many records: its deltas are written (bounding their memory) and a
# key clash surfaces at the latest here, so a replayed file is abandoned early, not at its end.
CHUNK_RECORDS = 50_000
# The errors that mean "a key is taken, or two writers crossed": the staging path sorts it out.
CLASHES = (errors.UniqueViolation, errors.DeadlockDetected)

# (tenant, pipeline, model, bucket number, kind); a missing pipeline or model is None until written.
DeltaKey = tuple[str, str | None, str | None, float, str]


class _JsonbTextDumper(Dumper):
    """jsonb in binary COPY from text that is already canonical JSON: version byte 1 + UTF-8."""

    oid = 3802  # jsonb
    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return b"\x01" + obj.encode()


# staging.TYPES, but attributes go in as jsonb directly, and ingested_at is added.
_RECORD_TYPES = [*TYPES[:8], "jsonb", "text", "timestamptz"]


def copy_records(session: Session, records: Iterable[UsageIn], *, now: datetime) -> int | None:
    """COPY the records and their rollup deltas; return how many, or None (all undone) on a key clash."""
    conn = driver(session)
    stored = 0
    with conn.cursor() as cursor:
        # By oid only: the jsonb column of set_types() below; nothing else on the connection changes.
        cursor.adapters.register_dumper(None, _JsonbTextDumper)
        cursor.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            iterator = iter(records)
            while True:
                deltas: dict[DeltaKey, list[Any]] = {}
                count = _copy_chunk(cursor, iterator, deltas, now)
                _copy_deltas(cursor, deltas)
                stored += count
                if count < CHUNK_RECORDS:
                    break
        except CLASHES:
            cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            return None
        cursor.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
    return stored


def _copy_chunk(cursor: Any, records: Iterator[UsageIn], deltas: dict[DeltaKey, list[Any]], now: datetime) -> int:
    """Up to CHUNK_RECORDS records into usage_records, summing their deltas on the way."""
    count = 0
    with cursor.copy(_RECORDS) as copy:
        copy.set_types(_RECORD_TYPES)
        write = copy.write_row
        get = deltas.get
        fields = copy_fields
        ingested = (now,)
        for r in records:
            timestamp = r.timestamp
            write(fields(r) + ingested)
            # The bucket the merge computes with date_bin('15 minutes', ts, epoch), as its (float) number
            # since the epoch: a floor, also before 1970. Microseconds stay exact in a double here.
            key = (r.tenant, r.pipeline, r.model, timestamp.timestamp() // BUCKET_SECONDS, r.kind)
            entry = get(key)
            if entry is None:
                deltas[key] = [r.cost, 1]
            else:
                entry[0] += r.cost
                entry[1] += 1
            count += 1
            if count == CHUNK_RECORDS:
                break
    return count


def _copy_deltas(cursor: Any, deltas: dict[DeltaKey, list[Any]]) -> None:
    if not deltas:
        return
    with cursor.copy(_DELTAS) as copy:
        copy.set_types(_DELTA_TYPES)
        write = copy.write_row
        starts: dict[float, datetime] = {}  # a bucket holds many scopes: build each start once
        for (tenant, pipeline, model, bucket, kind), (cost, records) in deltas.items():
            start = starts.get(bucket)
            if start is None:
                start = starts[bucket] = datetime.fromtimestamp(int(bucket) * BUCKET_SECONDS, UTC)
            write((tenant, pipeline or NO_SCOPE, model or NO_SCOPE, start, kind, cost, records))
