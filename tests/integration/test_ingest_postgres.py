"""PostgreSQL fast path: a killed connection stores nothing, concurrent replays count each record once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
import sqlalchemy.exc
from sqlalchemy import func, select

from costguard.db import make_engine, make_session_factory, transaction, utcnow
from costguard.errors import Conflict
from costguard.usage.models import UsageRecord
from costguard.usage.repository import unfolded_deltas
from costguard.usage.schemas import UsageIn, parse_usage
from costguard.usage.service import ingest_batch
from tests.conftest import ADMIN_URL, Database

pytestmark = pytest.mark.postgres
START = datetime(2026, 12, 4, tzinfo=UTC)


def record(i: int, cost: str = "0.000001", *, tenant: str = "acme") -> UsageIn:
    raw = {
        "event_id": f"ev-{i}",
        "tenant": tenant,
        "timestamp": (START + timedelta(minutes=7 * i)).isoformat(),
        "pipeline": ["summarize", "chat", None][i % 3],
        "model": ["gpt-4o", "claude", None][i % 3],
        "cost": cost,
        "attributes": {"input_tokens": i},
    }
    return parse_usage(raw, currency="USD")


def totals(db: Database) -> tuple[int, Decimal, Decimal, int]:
    with transaction(db.factory) as session:
        count = session.scalar(select(func.count()).select_from(UsageRecord)) or 0
        stored = sum(session.scalars(select(UsageRecord.cost)).all(), Decimal(0))
        unfolded = unfolded_deltas(session)
        pending = sum((delta[5] for delta in unfolded), Decimal(0))
        pending_records = sum(delta[6] for delta in unfolded)
    return int(count), stored, pending, int(pending_records)


def test_killing_the_connection_in_the_middle_of_a_batch_stores_nothing_and_a_retry_succeeds(pg):
    name = "costguard-ingest-kill-test"
    engine = make_engine(pg.url, application_name=name)
    factory = make_session_factory(engine)
    batch = [record(i) for i in range(2000)]
    killed = threading.Event()

    def feed() -> Iterator[UsageIn]:
        for i, r in enumerate(batch):
            if i == 1000:
                with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                    victims = admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (name,)
                    ).fetchall()
                assert victims == [(True,)]
                killed.set()
            yield r

    try:
        lost = (sqlalchemy.exc.OperationalError, psycopg.OperationalError)
        with pytest.raises(lost) as caught, transaction(factory) as session:
            ingest_batch(session, feed(), now=utcnow())
        assert killed.is_set()
        assert "connection" in str(caught.value)
        assert totals(pg) == (0, Decimal(0), Decimal(0), 0)
        with transaction(factory) as session:
            result = ingest_batch(session, batch, now=utcnow())
        assert (result.accepted, result.duplicates) == (2000, 0)
        assert totals(pg) == (2000, Decimal("0.002"), Decimal("0.002"), 2000)
    finally:
        engine.dispose()


def test_replaying_every_batch_three_times_concurrently_counts_each_record_once(pg):
    # 12 overlapping batches (each shares half its keys with the next), each sent 3 times by 6 threads.
    records = [record(i, cost=f"0.{i:04d}01") for i in range(600)]
    batches = [records[start : start + 100] for start in range(0, 550, 50)] * 3
    batches = batches[::2] + batches[1::2]  # interleave so replays of a batch overlap in time

    def send(batch: list[UsageIn]) -> tuple[int, int]:
        with transaction(pg.factory) as session:
            result = ingest_batch(session, list(reversed(batch)) if len(batch) % 2 else batch, now=utcnow())
        return result.accepted, result.duplicates

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(send, batches))
    distinct = sum((r.cost for r in records), Decimal(0))
    assert sum(accepted for accepted, _ in outcomes) == 600
    assert sum(a + d for a, d in outcomes) == sum(len(b) for b in batches)
    assert totals(pg) == (600, distinct, distinct, 600)


def test_a_concurrent_conflicting_batch_is_refused_whole(pg):
    first = [record(i) for i in range(50)]
    second = [record(i + 40) for i in range(20)]
    second[5] = record(45, cost="9")  # same key as first's ev-45, other content
    with transaction(pg.factory) as session:
        ingest_batch(session, first, now=utcnow())
    with pytest.raises(Conflict) as caught, transaction(pg.factory) as session:
        ingest_batch(session, second, now=utcnow())
    assert "(acme, ev-45)" in caught.value.message
    assert totals(pg)[0] == 50


def test_the_copy_path_leaves_a_batch_whose_sums_fall_in_the_workers_buckets(pg):
    from costguard.usage.models import UsageBatch, UsageRollupPending
    from costguard.usage.repository import bucket_start

    batch = [record(i, cost="0.25") for i in range(9)]
    with transaction(pg.factory) as session:
        ingest_batch(session, batch, now=utcnow())
        assert session.scalar(select(func.count()).select_from(UsageBatch)) == 1
        assert session.scalar(select(func.count()).select_from(UsageRollupPending)) == 0
        rows = unfolded_deltas(session)
    expected: dict[tuple[str, str, str, datetime, str], list[Decimal | int]] = {}
    for r in batch:
        key = (r.tenant, r.pipeline or "", r.model or "", bucket_start(r.timestamp), r.kind)
        entry = expected.setdefault(key, [Decimal(0), 0])
        entry[0] += r.cost
        entry[1] += 1
    assert {(t, p, m, b, k): [c, n] for t, p, m, b, k, c, n in rows} == expected


def test_a_file_whose_connection_is_killed_mid_copy_is_refused_whole_and_can_be_retried(pg, tmp_path):
    import json

    from costguard.usage.files import FileRefused, ingest_file
    from tests.helpers.app import usage

    name = "costguard-ingest-file-kill-test"
    engine = make_engine(pg.url, application_name=name)
    factory = make_session_factory(engine)
    path = tmp_path / "usage.jsonl"
    path.write_text("".join(json.dumps(usage(f"f-{i}", "0.001")) + "\n" for i in range(25_000)))

    def kill_at_first_progress(count: int) -> None:
        if count == 10_000:
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (name,)
                )

    try:
        with pytest.raises(FileRefused) as caught:
            ingest_file(factory, str(path), "auto", currency="USD", now=utcnow(), progress=kill_at_first_progress)
        assert caught.value.status_code == 503
        assert "connection was lost" in caught.value.message
        assert totals(pg) == (0, Decimal(0), Decimal(0), 0)
        result = ingest_file(factory, str(path), "auto", currency="USD", now=utcnow())
        assert (result.accepted, result.duplicates) == (25_000, 0)
        assert totals(pg) == (25_000, Decimal("25"), Decimal("25"), 25_000)
    finally:
        engine.dispose()
