"""Ingest records exactly once: all of them or none, duplicates counted, conflicts refused.

PostgreSQL first tries the optimistic path (``direct``: COPY straight into the table) when the
records can be read a second time, and takes the staging path (``staging``: COPY into a staging
table, then one merge that counts duplicates and finds conflicts) when that path meets a key that
is already taken. SQLite takes batched idempotent inserts (``repository``). All are driven from an
iterable of validated records, consumed as it comes, so a file of any size is ingested in flat memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from sqlalchemy.orm import Session

from costguard.errors import Conflict
from costguard.usage import direct, repository, staging
from costguard.usage.schemas import UsageIn

MAX_KEYS_IN_MESSAGE = 10
SQLITE_CHUNK = 5000

# Reads the same records again from the start (a file re-read, a batch kept in memory).
Replay = Callable[[], Iterable[UsageIn]]


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    duplicates: int


def _conflict(keys: Sequence[repository.Key]) -> Conflict:
    shown = ", ".join(f"({tenant}, {event_id})" for tenant, event_id in keys[:MAX_KEYS_IN_MESSAGE])
    more = f" and {len(keys) - MAX_KEYS_IN_MESSAGE} more" if len(keys) > MAX_KEYS_IN_MESSAGE else ""
    return Conflict(
        f"event_id already used with different content for (tenant, event_id) {shown}{more}; "
        "give each distinct record its own event_id, or send an adjustment to correct one; nothing was stored",
        details=[{"tenant": t, "event_id": e} for t, e in keys],
    )


def ingest_batch(
    session: Session, records: Iterable[UsageIn], *, now: datetime, replay: Replay | None = None
) -> IngestResult:
    """Store new records and their rollup deltas in the caller's transaction.

    Raises ``Conflict`` (and the caller rolls back, so nothing is stored) when a key is reused
    with different content, in the batch or against what is stored. ``replay`` lets a stream that
    cannot be iterated twice (a file) take the optimistic path; a sequence needs none.
    """
    if session.get_bind().dialect.name == "postgresql":
        if replay is None and isinstance(records, Sequence):
            replay = _again(records)
        if replay is not None:
            stored = direct.copy_records(session, records, now=now)
            if stored is not None:
                return IngestResult(accepted=stored, duplicates=0)
            # A key was taken (replay, in-batch duplicate, concurrent writer): nothing of the
            # attempt is left; the staging path decides what is a duplicate and what a conflict.
            records = replay()
        return _ingest_copy(session, records, now=now)
    accepted = duplicates = 0
    for chunk in _chunks(records, SQLITE_CHUNK):
        result = _ingest_inserts(session, chunk, now=now)
        accepted += result.accepted
        duplicates += result.duplicates
    return IngestResult(accepted, duplicates)


def _again(records: Sequence[UsageIn]) -> Replay:
    return lambda: records


def _chunks(records: Iterable[UsageIn], size: int) -> Iterator[list[UsageIn]]:
    iterator = iter(records)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _ingest_copy(session: Session, records: Iterable[UsageIn], *, now: datetime) -> IngestResult:
    staged = staging.stage(session, records)
    accepted = staging.merge(session, now=now)
    if accepted < staged:
        # Something was skipped: each skipped key must now hold identical content, else it is a conflict.
        clashing = staging.conflicts(session)
        if clashing:
            raise _conflict(clashing)
    return IngestResult(accepted=accepted, duplicates=staged - accepted)


def _ingest_inserts(session: Session, records: Sequence[UsageIn], *, now: datetime) -> IngestResult:
    unique: dict[repository.Key, UsageIn] = {}
    duplicates = 0
    conflicts: list[repository.Key] = []
    for record in records:
        key = (record.tenant, record.event_id)
        seen = unique.get(key)
        if seen is None:
            unique[key] = record
        elif seen.content_hash == record.content_hash:
            duplicates += 1
        else:
            conflicts.append(key)
    stored = repository.existing_hashes(session, list(unique))
    for key, digest in stored.items():
        if digest == unique[key].content_hash:
            duplicates += 1
        else:
            conflicts.append(key)
    if conflicts:
        raise _conflict(sorted(set(conflicts)))
    fresh = [record for key, record in unique.items() if key not in stored]
    inserted = repository.insert_new(session, fresh, now=now)
    raced = [(r.tenant, r.event_id) for r in fresh if (r.tenant, r.event_id) not in inserted]
    if raced:
        # A concurrent batch stored some keys between our lookup and our insert.
        winners = repository.existing_hashes(session, raced)
        clashing = [key for key in raced if winners.get(key) != unique[key].content_hash]
        if clashing:
            raise _conflict(clashing)
        duplicates += len(raced)
    repository.add_pending_deltas(session, (r for r in fresh if (r.tenant, r.event_id) in inserted))
    return IngestResult(accepted=len(inserted), duplicates=duplicates)
