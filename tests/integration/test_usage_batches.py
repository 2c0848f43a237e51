"""Batches of the COPY path: the worker sums their records itself, through the BRIN index, once."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
from sqlalchemy import func, select, text

from costguard.db import transaction
from costguard.evaluation.jobs import run_evaluation_cycle
from costguard.usage.models import UsageBatch, UsageRollup
from costguard.usage.repository import BATCH_DELTAS, unfolded_deltas
from costguard.usage.schemas import UsageIn, parse_usage
from costguard.usage.service import ingest_batch
from tests.conftest import Database

pytestmark = pytest.mark.postgres
AT = datetime(2026, 12, 4, 12, tzinfo=UTC)


def record(i: int, cost: str) -> UsageIn:
    raw = {"event_id": f"ev-{i}", "timestamp": f"2026-12-04T10:{i % 60:02d}:00Z", "tenant": "acme", "cost": cost}
    return parse_usage(raw, currency="USD")


def test_a_cycle_folds_each_batch_once_and_deletes_it(pg: Database):
    for start in (0, 100):
        with transaction(pg.factory) as session:
            ingest_batch(session, [record(start + i, "0.125") for i in range(40)], now=AT)
    run_evaluation_cycle(pg.factory, pg.settings(), at=AT)
    run_evaluation_cycle(pg.factory, pg.settings(), at=AT)  # nothing left to add a second time
    with transaction(pg.factory) as session:
        assert session.scalar(select(func.count()).select_from(UsageBatch)) == 0
        assert unfolded_deltas(session) == []
        assert session.scalar(select(func.sum(UsageRollup.cost))) == Decimal("10")
        assert session.scalar(select(func.sum(UsageRollup.records))) == 80


def test_a_batch_is_found_through_the_brin_index_not_by_reading_the_history(pg: Database):
    with transaction(pg.factory) as session:
        # History without batches (already folded), then one new batch after it.
        session.execute(
            text(
                "INSERT INTO usage_records (tenant, event_id, timestamp, cost, currency, kind, content_hash,"
                " ingested_at) SELECT 'old', 'h-' || i, :at, 0.5, 'USD', 'usage', 'x', :at"
                " FROM generate_series(1, 20000) AS i"
            ),
            {"at": AT},
        )
        for batch in range(3):
            ingest_batch(session, [record(batch * 10 + i, "0.25") for i in range(10)], now=AT)
        session.execute(text("ANALYZE usage_records"))
        ids = list(session.scalars(select(UsageBatch.id)))
        session.execute(text("SET LOCAL enable_seqscan = off"))  # as sum_batches does
        params = {"low": min(ids), "high": max(ids), "ids": ids}
        plan = "\n".join(session.scalars(text("EXPLAIN " + BATCH_DELTAS), params))
    assert "Bitmap Index Scan on ix_usage_records_batch_id" in plan, plan
    # One pass over the index for the range; the ids filter its pages (not one index pass per id).
    [index_condition] = [line for line in plan.splitlines() if "Index Cond" in line]
    assert "batch_id >=" in index_condition and "ANY" not in index_condition, plan


def test_after_folding_batches_the_worker_summarizes_the_new_index_ranges(pg: Database):
    # Far more than one 32-page range of records: only the ranges the worker summarized are skipped
    # by later searches; an unsummarized range is read by every one of them.
    with transaction(pg.factory) as session:
        ingest_batch(session, [record(i, "0.001") for i in range(5000)], now=AT)
    run_evaluation_cycle(pg.factory, pg.settings(), at=AT)
    with transaction(pg.factory) as session:
        pages = session.scalar(text("SELECT pg_relation_size('usage_records') / 8192"))
        assert pages > 64
        assert session.scalar(text("SELECT brin_summarize_new_values('ix_usage_records_batch_id')")) == 0


def test_a_cycle_completes_when_the_index_cannot_be_summarized_now(pg: Database, caplog: pytest.LogCaptureFixture):
    # A vacuum of usage_records holds this lock for as long as it runs; summarizing must not wait for it.
    holder = psycopg.connect(pg.url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        holder.execute("LOCK TABLE usage_records IN SHARE UPDATE EXCLUSIVE MODE")
        with transaction(pg.factory) as session:
            ingest_batch(session, [record(i, "0.5") for i in range(2000)], now=AT)
        with caplog.at_level(logging.WARNING, logger="costguard.evaluation.jobs"):
            outcome = run_evaluation_cycle(pg.factory, pg.settings(), at=AT)
    finally:
        holder.close()
    assert outcome.evaluation is not None and outcome.evaluation.folded_records == 2000
    assert "usage.batch_index_not_summarized" in caplog.messages
    with transaction(pg.factory) as session:
        assert session.scalar(select(func.sum(UsageRollup.cost))) == Decimal("1000")
        assert session.scalar(text("SELECT brin_summarize_new_values('ix_usage_records_batch_id')")) > 0
