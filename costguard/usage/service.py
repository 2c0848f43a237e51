"""Ingest records exactly once: all of them or none, duplicates counted, conflicts refused.

PostgreSQL takes the COPY fast path (``staging``); SQLite takes batched idempotent inserts
(``repository``). Both are driven from the same iterable of validated records, consumed as it
comes, so a file of any size is ingested in flat memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from sqlalchemy.orm import Session

from costguard.errors import Conflict
from costguard.usage import repository, staging
from costguard.usage.schemas import UsageIn

MAX_KEYS_IN_MESSAGE = 10
SQLITE_CHUNK = 5000


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


def ingest_batch(session: Session, records: Iterable[UsageIn], *, now: datetime) -> IngestResult:
    """Store new records and their rollup deltas in the caller's transaction.

    Raises ``Conflict`` (and the caller rolls back, so nothing is stored) when a key is reused
    with different content, in the batch or against what is stored.
    """
    if session.get_bind().dialect.name == "postgresql":
        return _ingest_copy(session, records, now=now)
    accepted = duplicates = 0
    for chunk in _chunks(records, SQLITE_CHUNK):
        result = _ingest_inserts(session, chunk, now=now)
        accepted += result.accepted
        duplicates += result.duplicates
    return IngestResult(accepted, duplicates)


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
