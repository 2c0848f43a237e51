"""Console pages with 5,000 budgets on PostgreSQL: median render time per page against raw SQL.

Seeds a fresh PostgreSQL database (4,990 tenant budgets over 499 tenants and 10 every-tenant
templates, so about 10,000 budget scopes; a month of usage; one evaluation cycle, which also fires
alerts), signs in through the console's form, and renders every page REPEAT times through the real
application (routing, session check, services, queries, Jinja2). The baseline is the raw SQL each
page's main query stands for, run with psycopg in the same run; the ratio is page / baseline.

    make bench-console          # COSTGUARD_BENCH_POSTGRES_URL overrides the server
"""

from __future__ import annotations

import os
import random
import re
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

from costguard.api.app import create_app
from costguard.auth.service import create_token
from costguard.budgets.service import Actor, create_budget, parse_spec
from costguard.config import Settings
from costguard.db import make_engine, make_session_factory, transaction, utcnow
from costguard.evaluation.jobs import run_evaluation_cycle
from costguard.schema import upgrade_to_head
from costguard.usage.schemas import parse_usage
from costguard.usage.service import ingest_batch

ADMIN_URL = os.environ.get("COSTGUARD_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BUDGETS, TEMPLATES, TENANTS = 5_000, 10, 499
RECORDS = 30_000
REPEAT = 15
TARGET_MS = 300.0
PIPELINES = ("chat", "summarize", "extract", "embed")
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama-70b")


def seed(factory: object, settings: Settings, now: datetime) -> None:
    rng = random.Random(7)
    actor = Actor("bench", "api")
    with transaction(factory) as session:  # type: ignore[arg-type]
        for i in range(BUDGETS - TEMPLATES):
            tenant = f"tenant{i % TENANTS:03d}"
            scope = i // TENANTS  # each tenant: one all-scope budget, then pipeline / model budgets
            document = {
                "id": f"b{i:05d}",
                "tenant": tenant,
                "amount": str(rng.randint(50, 5000)),
                "thresholds": [0.5, 0.8],
                "forecast": i % 2 == 0,
                "labels": {"team": f"team{i % 7}"},
            }
            if scope % 3 == 1:
                document["pipeline"] = PIPELINES[scope % len(PIPELINES)]
            elif scope % 3 == 2:
                document["model"] = MODELS[scope % len(MODELS)]
            create_budget(session, parse_spec(document, currency="USD"), actor=actor, now=now)
        for j in range(TEMPLATES):
            document = {
                "id": f"every-tenant-{j}",
                "tenant": "*",
                "amount": str(200 + 100 * j),
                "model": MODELS[j % len(MODELS)] if j % 2 else "*",
            }
            create_budget(session, parse_spec(document, currency="USD"), actor=actor, now=now)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    span = max((now - month_start).total_seconds() - 60, 3600)
    raws = [
        {
            "event_id": f"r{k}",
            "tenant": f"tenant{rng.randrange(TENANTS):03d}",
            "timestamp": (month_start + timedelta(seconds=rng.uniform(0, span))).isoformat(),
            "pipeline": rng.choice(PIPELINES),
            "model": rng.choice(MODELS),
            "cost": f"{rng.uniform(0.01, 30):.6f}",
        }
        for k in range(RECORDS)
    ]
    records = [parse_usage(raw, currency="USD") for raw in raws]
    with transaction(factory) as session:  # type: ignore[arg-type]
        for start in range(0, len(records), 5000):
            ingest_batch(session, records[start : start + 5000], now=now)
    run_evaluation_cycle(factory, settings)  # type: ignore[arg-type]


def median_ms(action: Callable[[], object]) -> float:
    action()  # warm caches (templates, statements) once
    samples = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    name = f"costguard_bench_console_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    engine = None
    try:
        upgrade_to_head(url)
        settings = Settings(database_url=url)
        engine = make_engine(url, application_name="costguard-bench-console")
        factory = make_session_factory(engine)
        now = utcnow()
        started = time.perf_counter()
        seed(factory, settings, now)
        print(
            f"seeded {BUDGETS} budgets, {RECORDS} usage records, one evaluation in {time.perf_counter() - started:.1f}s"
        )
        with transaction(factory) as session:
            secret = create_token(session, role="admin", name="bench", tenant=None, now=now).secret
        client = TestClient(create_app(settings, factory))
        login = client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
        assert client.post("/login", data={"token": secret, "csrf": csrf}, follow_redirects=False).status_code == 303
        run(client, f"{base}/{name}")
    finally:
        if engine is not None:
            engine.dispose()
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


OVERVIEW_SQL = """
    SELECT b.*, s.* FROM budgets b LEFT JOIN budget_status s ON s.budget_id = b.id
    {where} ORDER BY {order} LIMIT 50 OFFSET {offset}
"""
COUNT_SQL = "SELECT count(*) FROM budgets b LEFT JOIN budget_status s ON s.budget_id = b.id {where}"
ALL_STATUS_SQL = "SELECT * FROM budget_status"


def overview_sql(
    where: str = "", order: str = "s.utilization DESC NULLS LAST, b.id, s.tenant", offset: int = 0
) -> list[str]:
    return [OVERVIEW_SQL.format(where=where, order=order, offset=offset), COUNT_SQL.format(where=where)]


def budget_sql(budget_id: str, tenant: str) -> list[str]:
    return [
        f"SELECT * FROM budgets WHERE id = '{budget_id}'",
        f"SELECT * FROM budget_status WHERE budget_id = '{budget_id}'",
        "SELECT bucket_start, sum(cost) FROM usage_rollups WHERE bucket_start >= date_trunc('month', now()) "
        f"AND tenant = '{tenant}' GROUP BY bucket_start",
    ]


def run(client: TestClient, dsn: str) -> None:
    pages: list[tuple[str, str, list[str]]] = [
        ("overview", "/", overview_sql()),
        ("overview sorted by id", "/?sort=budget", overview_sql(order="b.id, s.tenant")),
        ("overview last page", "/?page=199", overview_sql(offset=198 * 50)),
        (
            "overview tenant filter",
            "/?tenant=tenant042",
            overview_sql("WHERE coalesce(s.tenant, b.tenant) = 'tenant042'"),
        ),
        ("overview state filter", "/?state=exceeded", overview_sql("WHERE s.state = 'exceeded'")),
        ("budget page", "/budgets/b00042", budget_sql("b00042", "tenant042")),
        ("template budget page", "/budgets/every-tenant-0?tenant=tenant007", budget_sql("every-tenant-0", "tenant007")),
        ("edit form", "/budgets/b00042/edit", ["SELECT * FROM budgets WHERE id = 'b00042'"]),
        ("new budget form", "/new-budget", ["SELECT 1"]),
        ("alerts", "/alerts", ["SELECT * FROM alerts WHERE status = 'firing' ORDER BY id DESC LIMIT 200"]),
        ("audit", "/audit", ["SELECT * FROM budget_audit ORDER BY at DESC, id DESC LIMIT 200"]),
    ]
    with psycopg.connect(dsn, autocommit=True) as conn:
        total = conn.execute("SELECT count(*) FROM budget_status").fetchone()[0]  # type: ignore[index]
        print(f"{total} evaluated budget scopes; {REPEAT} renders per page, median; other helpers shared the machine")
        print(f"{'page':<26}{'page ms':>9}{'raw SQL ms':>12}{'ratio':>8}  target < {TARGET_MS:.0f} ms")
        worst = 0.0
        for label, path, statements in pages:
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
            page_ms = median_ms(lambda p=path: client.get(p))
            sql_ms = median_ms(lambda s=statements: [conn.execute(q).fetchall() for q in s])
            worst = max(worst, page_ms)
            print(
                f"{label:<26}{page_ms:>9.1f}{sql_ms:>12.2f}{page_ms / sql_ms:>8.1f}  "
                f"{'ok' if page_ms < TARGET_MS else 'SLOW'}"
            )
        everything = median_ms(lambda: conn.execute(ALL_STATUS_SQL).fetchall())
        print(
            f"for scale: raw SELECT of all {total} status rows (what an unpaginated overview would read): "
            f"{everything:.1f} ms"
        )
        print(
            f"slowest page median {worst:.1f} ms: {'every page under' if worst < TARGET_MS else 'OVER'} "
            f"the {TARGET_MS:.0f} ms target"
        )


if __name__ == "__main__":
    main()
