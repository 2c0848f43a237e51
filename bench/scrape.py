"""How long a Prometheus scrape of /metrics takes with 5,000 budgets, on PostgreSQL.

Builds a throwaway database with BUDGETS budgets (two thresholds and a team label each), usage over
TENANTS x PIPELINES x MODELS scopes, runs one evaluation cycle, then times RUNS scrapes of the real
application's GET /metrics (in-process ASGI client, no network) and, as the raw-PostgreSQL baseline,
reading the same rows with psycopg alone. Prints medians and their ratio.

    .venv/bin/python bench/scrape.py [--budgets 5000] [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

from costguard.api.app import create_app
from costguard.budgets import repository as budgets_repo
from costguard.budgets.service import parse_spec
from costguard.config import Settings
from costguard.db import make_engine, make_session_factory, transaction
from costguard.evaluation.jobs import run_evaluation_cycle
from costguard.schema import upgrade_to_head
from costguard.usage.schemas import parse_usage
from costguard.usage.service import ingest_batch

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TENANTS, PIPELINES, MODELS = 250, 4, 4


def _populate(url: str, budgets: int, now: datetime) -> None:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        for i in range(budgets):
            tenant = f"tenant-{i % TENANTS:04d}"
            spec = parse_spec(
                {
                    "id": f"budget-{i:05d}",
                    "tenant": tenant,
                    "pipeline": f"pipeline-{(i // TENANTS) % PIPELINES}" if i >= TENANTS else "*",
                    "period": "monthly",
                    "amount": "1000",
                    "thresholds": [0.5, 0.8],
                    "labels": {"team": f"team-{i % 17}"},
                },
                currency="USD",
            )
            budgets_repo.insert(session, spec, now=now, managed_by_file=None)
    records = [
        parse_usage(
            {
                "event_id": f"e-{t}-{p}-{m}",
                "timestamp": (now - timedelta(minutes=5)).isoformat(),
                "tenant": f"tenant-{t:04d}",
                "pipeline": f"pipeline-{p}",
                "model": f"model-{m}",
                "cost": "1.25",
            },
            currency="USD",
        )
        for t in range(TENANTS)
        for p in range(PIPELINES)
        for m in range(MODELS)
    ]
    with transaction(factory) as session:
        ingest_batch(session, records, now=now)
    run_evaluation_cycle(factory, Settings(database_url=url), at=now)
    engine.dispose()


def _median(action: object, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    name = f"costguard_bench_scrape_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        upgrade_to_head(url)
        started = time.perf_counter()
        _populate(url, args.budgets, datetime.now(UTC).replace(microsecond=0))
        print(f"setup: {args.budgets} budgets evaluated in {time.perf_counter() - started:.1f} s")
        engine = make_engine(url)
        settings = Settings(database_url=url)
        client = TestClient(create_app(settings, make_session_factory(engine)))
        body = client.get("/metrics").text
        samples = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
        scrape = _median(lambda: client.get("/metrics").raise_for_status(), args.runs)

        def raw() -> None:
            with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}") as conn:
                conn.execute("SELECT * FROM budget_status").fetchall()
                conn.execute("SELECT * FROM budgets").fetchall()
                conn.execute("SELECT * FROM usage_totals").fetchall()

        baseline = _median(raw, args.runs)
        engine.dispose()
        print(f"/metrics: {len(body) / 1e6:.1f} MB, {samples} samples")
        print(f"scrape median of {args.runs}: {scrape * 1000:.0f} ms (limit 1000 ms)")
        print(f"raw PostgreSQL read of the same rows, median: {baseline * 1000:.0f} ms")
        print(f"ratio scrape / raw read: {scrape / baseline:.1f}x")
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
