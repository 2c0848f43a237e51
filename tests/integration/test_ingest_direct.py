"""PostgreSQL optimistic path: COPY straight into usage_records, the staging path when a key is taken."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from costguard.db import transaction, utcnow
from costguard.errors import Conflict
from costguard.usage import direct, staging
from costguard.usage.files import FileRefused, ingest_file
from costguard.usage.repository import unfolded_deltas
from costguard.usage.schemas import UsageIn, parse_usage
from costguard.usage.service import ingest_batch
from tests.conftest import Database

pytestmark = pytest.mark.postgres
START = datetime(2026, 12, 4, tzinfo=UTC)
NOW = datetime(2026, 12, 5, 8, 30, tzinfo=UTC)


def raw(i: int, cost: str = "0.0000012500", **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"ev-{i}",
        "tenant": ["acme", "globex"][i % 2],
        "timestamp": (START + timedelta(minutes=4 * i, microseconds=i)).isoformat(),
        "pipeline": ["summarize", "chat", None][i % 3],
        "model": ["gpt-4o", None][i % 2],
        "cost": cost,
        "attributes": {"input_tokens": i, "note": 'é\t"x"', "nested": {"b": [1, None], "a": True}},
        **extra,
    }


def parsed(rows: list[dict[str, Any]]) -> list[UsageIn]:
    return [parse_usage(r, currency="USD") for r in rows]


def stored(db: Database) -> list[tuple[Any, ...]]:
    with transaction(db.factory) as session:
        return [
            tuple(row)
            for row in session.execute(
                text(
                    "SELECT tenant, event_id, timestamp, pipeline, model, cost, currency, kind, attributes::text, "
                    "content_hash, ingested_at FROM usage_records ORDER BY tenant, event_id"
                )
            )
        ]


def deltas(db: Database) -> dict[tuple[Any, ...], tuple[Decimal, int]]:
    """Unfolded usage summed per rollup key (pending deltas of the staging path, batches of the COPY path)."""
    summed: dict[tuple[Any, ...], tuple[Decimal, int]] = {}
    with transaction(db.factory) as session:
        for delta in unfolded_deltas(session):
            cost, records = summed.get(delta[:5], (Decimal(0), 0))
            summed[delta[:5]] = (cost + delta[5], records + delta[6])
    return summed


def empty(db: Database) -> None:
    with transaction(db.factory) as session:
        session.execute(text("TRUNCATE usage_records, usage_rollup_pending, usage_batches"))


def forbid_staging(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> int:
        raise AssertionError("the staging path was taken")

    monkeypatch.setattr(staging, "stage", refuse)


def jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_the_direct_copy_stores_exactly_what_the_staging_merge_stores(pg, monkeypatch):
    rows = [raw(i, cost=f"0.{i:03d}000000001") for i in range(40)]
    rows += [
        raw(100, cost="-2.5", kind="adjustment"),
        raw(101, attributes=None),
        raw(102, timestamp="1969-12-31T23:44:59.5+00:00"),  # before the epoch: the bucket is a floor
        raw(103, timestamp="2026-12-04T10:14:59.999999-05:00"),
    ]
    records = parsed(rows)
    with monkeypatch.context() as patch:
        forbid_staging(patch)
        with transaction(pg.factory) as session:
            result = ingest_batch(session, records, now=NOW)
    assert (result.accepted, result.duplicates) == (len(rows), 0)
    direct_rows, direct_deltas = stored(pg), deltas(pg)
    empty(pg)
    with transaction(pg.factory) as session:  # a one-shot iterator cannot be replayed: staging path
        ingest_batch(session, iter(records), now=NOW)
    assert direct_rows == stored(pg)
    assert direct_deltas == deltas(pg)
    assert all(row[10] == NOW for row in direct_rows)


def test_a_replayed_file_after_a_direct_import_is_all_duplicates(pg, tmp_path):
    path = jsonl(tmp_path / "usage.jsonl", [raw(i) for i in range(30)])
    first = ingest_file(pg.factory, str(path), "auto", currency="USD", now=NOW)
    before = stored(pg), deltas(pg)
    second = ingest_file(pg.factory, str(path), "auto", currency="USD", now=utcnow())
    assert (first.accepted, first.duplicates, second.accepted, second.duplicates) == (30, 0, 0, 30)
    assert (stored(pg), deltas(pg)) == before


def test_a_file_with_an_identical_line_twice_counts_it_as_a_duplicate(pg, tmp_path):
    rows = [raw(i) for i in range(10)]
    path = jsonl(tmp_path / "usage.jsonl", [*rows, rows[3]])
    result = ingest_file(pg.factory, str(path), "auto", currency="USD", now=NOW)
    assert (result.accepted, result.duplicates) == (10, 1)
    assert len(stored(pg)) == 10
    assert sum(n for _, n in deltas(pg).values()) == 10


def test_a_file_reusing_a_key_with_other_content_is_refused_and_stores_nothing(pg, tmp_path):
    rows = [raw(i) for i in range(10)]
    path = jsonl(tmp_path / "usage.jsonl", [*rows, raw(3, cost="7")])
    with pytest.raises(FileRefused) as caught:
        ingest_file(pg.factory, str(path), "auto", currency="USD", now=NOW)
    assert caught.value.status_code == 409
    assert "(globex, ev-3)" in caught.value.message
    assert stored(pg) == [] and deltas(pg) == {}


def test_a_clash_in_a_late_chunk_undoes_the_earlier_chunks_and_their_deltas(pg, monkeypatch):
    monkeypatch.setattr(direct, "CHUNK_RECORDS", 10)
    with transaction(pg.factory) as session:
        ingest_batch(session, parsed([raw(33)]), now=NOW)
    before = stored(pg), deltas(pg)
    batch = parsed([raw(i) for i in range(35) if i != 33] + [raw(33, cost="9")])
    with pytest.raises(Conflict) as caught, transaction(pg.factory) as session:
        ingest_batch(session, batch, now=NOW)
    assert "(globex, ev-33)" in caught.value.message
    assert (stored(pg), deltas(pg)) == before


def test_many_chunks_are_stored_whole_with_their_deltas(pg, monkeypatch):
    monkeypatch.setattr(direct, "CHUNK_RECORDS", 7)
    forbid_staging(monkeypatch)
    records = parsed([raw(i) for i in range(50)])
    with transaction(pg.factory) as session:
        result = ingest_batch(session, records, now=NOW)
    assert result.accepted == 50
    total = sum((r.cost for r in records), Decimal(0))
    assert sum(cost for cost, _ in deltas(pg).values()) == total
    assert sum(n for _, n in deltas(pg).values()) == 50


def test_the_same_file_ingested_three_times_at_once_is_stored_once(pg, tmp_path):
    rows = [raw(i, cost=f"0.{i:04d}") for i in range(3000)]
    path = jsonl(tmp_path / "usage.jsonl", rows)

    def once(_: int) -> tuple[int, int]:
        result = ingest_file(pg.factory, str(path), "auto", currency="USD", now=utcnow())
        return result.accepted, result.duplicates

    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(once, range(3)))
    assert sorted(outcomes) == [(0, 3000), (0, 3000), (3000, 0)]
    assert len(stored(pg)) == 3000
    distinct = sum((Decimal(r["cost"]) for r in rows), Decimal(0))
    assert sum(cost for cost, _ in deltas(pg).values()) == distinct


def test_a_file_changed_between_its_two_reads_is_refused(pg, tmp_path, monkeypatch):
    path = jsonl(tmp_path / "usage.jsonl", [raw(i) for i in range(5)])
    ingest_file(pg.factory, str(path), "auto", currency="USD", now=NOW)
    before = stored(pg)
    path = jsonl(path, [raw(i) for i in range(10)])
    copy_records = direct.copy_records

    def copy_then_append(*args: Any, **kwargs: Any) -> int | None:
        outcome = copy_records(*args, **kwargs)
        with path.open("a") as more:
            more.write(json.dumps(raw(99)) + "\n")
        return outcome

    monkeypatch.setattr(direct, "copy_records", copy_then_append)
    with pytest.raises(FileRefused) as caught:
        ingest_file(pg.factory, str(path), "auto", currency="USD", now=NOW)
    assert "changed while it was being ingested" in caught.value.message
    assert stored(pg) == before
