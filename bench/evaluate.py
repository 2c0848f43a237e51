"""Benchmark of the worker against the naive approach, in a throwaway PostgreSQL database.

Loads N usage records over three months across 2,000 tenants x 20 pipelines x 10 models straight
into PostgreSQL (server-side generate_series; the ingest path is benchmarked elsewhere), builds
the 15-minute rollups from them, adds 5,000 budgets (some ``tenant: "*"`` templates), then times:

  (a) the naive query: SELECT tenant, pipeline, model, SUM(cost) over the current period's raw rows
  (0) the first cycle, which builds every budget's period spend from the rollups once
  (b) one full evaluation cycle (every budget scope evaluated, statuses and alerts written)
  (c) one incremental cycle after 10,000 new records arrived through the ingest service

and prints seconds (median of --repeat runs) and the ratios (b)/(a) and (c)/(a).

    make bench-evaluate                       # 10,000,000 records
    .venv/bin/python bench/evaluate.py --records 1000000
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import Engine, event, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from costguard.config import Settings
from costguard.db import make_engine, make_session_factory, transaction
from costguard.evaluation.jobs import run_evaluation_cycle
from costguard.evaluation.repository import evaluation_state
from costguard.schema import upgrade_to_head
from costguard.usage.schemas import parse_usage
from costguard.usage.service import ingest_batch

DATA_START = datetime(2026, 9, 1, tzinfo=UTC)
# Late in the month (the naive query's worst ordinary case), with room for the incremental rounds'
# clock to move on before the month ends.
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
PERIOD_START = datetime(2026, 11, 1, tzinfo=UTC)
ZONES = ["UTC", "Europe/Berlin", "Asia/Kolkata", "America/New_York"]


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--tenants", type=int, default=2000)
    parser.add_argument("--pipelines", type=int, default=20)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--budgets", type=int, default=5000)
    parser.add_argument("--new-records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--statements", action="store_true", help="print the slowest statements of a (c) cycle")
    return parser.parse_args()


class _StatementTimes:
    """Wall time per SQL statement (by its first words) while listening, to show where a cycle goes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.times: dict[str, list[float]] = {}
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        conn.info["statement_started"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        took = time.perf_counter() - conn.info.pop("statement_started", time.perf_counter())
        self.times.setdefault(" ".join(statement.split())[:90], []).append(took)

    def clear(self) -> None:
        self.times.clear()

    def total(self, prefix: str) -> float:
        """Seconds spent in the statements that begin with ``prefix``."""
        return sum(sum(took) for statement, took in self.times.items() if statement.startswith(prefix))

    def stop(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)

    def show(self, top: int = 12) -> None:
        for statement, took in sorted(self.times.items(), key=lambda item: -sum(item[1]))[:top]:
            print(f"    {sum(took) * 1000:8.1f} ms  {len(took):4d}x  {statement}")


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _load(conn: psycopg.Connection, args: argparse.Namespace) -> None:
    span = (NOW - DATA_START).total_seconds()
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET maintenance_work_mem = '512MB'")
    conn.execute("ALTER TABLE usage_records DROP CONSTRAINT pk_usage_records")
    conn.execute("DROP INDEX ix_usage_records_tenant_timestamp")
    chunk = 1_000_000
    for start in range(0, args.records, chunk):
        stop = min(start + chunk, args.records)
        conn.execute(
            """
            INSERT INTO usage_records (tenant, event_id, timestamp, pipeline, model, cost, currency, kind,
                                       attributes, content_hash, ingested_at)
            SELECT 't' || floor(random() * %(tenants)s)::int, 'e' || i,
                   %(start)s::timestamptz + floor(random() * %(span)s) * interval '1 second',
                   'p' || floor(random() * %(pipelines)s)::int, 'm' || floor(random() * %(models)s)::int,
                   round((random() * 0.01)::numeric, 9), 'USD', 'usage', NULL, md5(i::text), %(start)s
            FROM generate_series(%(first)s, %(last)s) AS i
            """,
            {
                "tenants": args.tenants,
                "pipelines": args.pipelines,
                "models": args.models,
                "start": DATA_START,
                "span": span,
                "first": start,
                "last": stop - 1,
            },
        )
        conn.commit()
        print(f"  loaded {stop:,} records", flush=True)
    conn.execute("ALTER TABLE usage_records ADD CONSTRAINT pk_usage_records PRIMARY KEY (tenant, event_id)")
    conn.execute("CREATE INDEX ix_usage_records_tenant_timestamp ON usage_records (tenant, timestamp)")
    conn.execute(
        """
        INSERT INTO usage_rollups (tenant, bucket_start, pipeline, model, kind, cost, records)
        SELECT tenant, to_timestamp(floor(extract(epoch FROM timestamp) / 900) * 900), COALESCE(pipeline, ''),
               COALESCE(model, ''), kind, SUM(cost), COUNT(*)
        FROM usage_records GROUP BY 1, 2, 3, 4, 5
        """
    )
    conn.execute(
        """
        INSERT INTO usage_totals (tenant, pipeline, model, kind, cost, records, last_timestamp)
        SELECT tenant, pipeline, model, kind, SUM(cost), SUM(records), MAX(bucket_start)
        FROM usage_rollups GROUP BY 1, 2, 3, 4
        """
    )
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE usage_records")
    conn.execute("VACUUM ANALYZE usage_rollups")
    conn.execute("VACUUM ANALYZE usage_totals")
    # The load leaves gigabytes of dirty pages behind; measure after they are written, not while
    # the checkpointer and every backend's evictions compete for the disk with the cycle.
    conn.execute("CHECKPOINT")
    conn.autocommit = False


def _budgets(conn: psycopg.Connection, args: argparse.Namespace) -> int:
    """Templates first (every tenant separately), then tenant budgets of mixed scope, period and zone."""
    rng = random.Random(5)
    # Average spend of a tenant over a month, to pick amounts some scopes exceed and most do not.
    monthly = Decimal(args.records) / 3 * Decimal("0.005") / args.tenants
    templates = [
        ("tmpl-all-monthly", "*", "*", "monthly", "UTC", monthly * Decimal("1.5")),
        ("tmpl-p0-monthly", "p0", "*", "monthly", "Europe/Berlin", monthly / args.pipelines * 2),
        ("tmpl-m0-monthly", "*", "m0", "monthly", "Asia/Kolkata", monthly / args.models * 2),
        ("tmpl-all-daily", "*", "*", "daily", "UTC", monthly / 30 * 2),
        ("tmpl-all-weekly", "*", "*", "weekly", "America/New_York", monthly / 4 * 2),
    ]
    rows = [
        (bid, "*", p, m, period, zone, amount.quantize(Decimal("0.01")))
        for bid, p, m, period, zone, amount in templates
    ]
    for n in range(args.budgets - len(templates)):
        tenant = f"t{n % args.tenants}"
        kind = n % 3
        pipeline = "*" if kind == 0 else f"p{rng.randrange(args.pipelines)}"
        model = f"m{rng.randrange(args.models)}" if kind == 2 else "*"
        share = Decimal(1) if kind == 0 else Decimal(1) / args.pipelines / (args.models if kind == 2 else 1)
        period = "daily" if n % 10 == 0 else "monthly"
        scale = Decimal(1) / 30 if period == "daily" else Decimal(1)
        amount = (monthly * share * scale * Decimal(rng.uniform(0.9, 3.0))).quantize(Decimal("0.01"))
        rows.append((f"b{n}", tenant, pipeline, model, period, ZONES[n % len(ZONES)], max(amount, Decimal("0.01"))))
    with (
        conn.cursor() as cursor,
        cursor.copy(
            "COPY budgets (id, tenant, pipeline, model, period, timezone, amount, currency, thresholds, forecast,"
            " labels, version, created_at, updated_at) FROM STDIN"
        ) as copy,
    ):
        for bid, tenant, pipeline, model, period, zone, amount in rows:
            copy.write_row(
                (bid, tenant, pipeline, model, period, zone, amount, "USD", "[0.8]", True, "{}", 1, NOW, NOW)
            )
    conn.commit()
    return len(templates)


def _naive(conn: psycopg.Connection) -> list[tuple[str, str, str, Decimal]]:
    return conn.execute(
        "SELECT tenant, pipeline, model, SUM(cost) FROM usage_records"
        " WHERE timestamp >= %s AND timestamp < %s GROUP BY tenant, pipeline, model",
        (PERIOD_START, NOW),
    ).fetchall()


def _span(args: argparse.Namespace) -> timedelta:
    """How long the history's own pace takes to bring ``--new-records`` records."""
    return timedelta(seconds=(NOW - DATA_START).total_seconds() * args.new_records / args.records)


def _new_records(args: argparse.Namespace, round_: int) -> tuple[datetime, list]:
    """What arrives during round ``round_``, and the instant its cycle runs (the end of that time).

    The clock moves on with the records: they are what came in since the last cycle, at the
    history's pace, so 1M and 10M runs see the same kind of traffic. (Piling them onto time the
    history already covers would double the recent pace and fire an artificial alert storm.)
    """
    rng = random.Random(round_)
    span = _span(args)
    begin = NOW + span * round_
    records = []
    for i in range(args.new_records):
        late = rng.random() < 0.05  # some arrive days late and land in their old buckets
        if late:
            at = begin - timedelta(seconds=rng.randrange(3 * 86400))
        else:
            at = begin + timedelta(seconds=rng.random() * span.total_seconds())
        records.append(
            parse_usage(
                {
                    "event_id": f"new-{round_}-{i}",
                    "timestamp": at.isoformat(),
                    "tenant": f"t{rng.randrange(args.tenants)}",
                    "pipeline": f"p{rng.randrange(args.pipelines)}",
                    "model": f"m{rng.randrange(args.models)}",
                    "cost": str(Decimal(rng.randrange(1, 10**7)).scaleb(-9)),
                },
                currency="USD",
            )
        )
    return begin + span, records


def main() -> None:
    args = _args()
    name = f"costguard_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = args.admin_url.rsplit("/", 1)[0]
    url = f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    engine = None
    try:
        upgrade_to_head(url)
        with psycopg.connect(f"{base}/{name}") as conn:
            print(f"loading {args.records:,} records into {name} ...", flush=True)
            load_s = _timed(lambda: _load(conn, args))
            templates = _budgets(conn, args)
            rollups = conn.execute("SELECT count(*) FROM usage_rollups").fetchone()
            in_period = conn.execute(
                "SELECT count(*) FROM usage_records WHERE timestamp >= %s AND timestamp < %s", (PERIOD_START, NOW)
            ).fetchone()
            print(
                f"loaded in {load_s:.0f}s: {rollups[0] if rollups else 0:,} rollup rows; "
                f"{in_period[0] if in_period else 0:,} records in the current period",
                flush=True,
            )
            naive_rows: list[tuple[str, str, str, Decimal]] = []

            def naive() -> None:
                naive_rows[:] = _naive(conn)

            a = statistics.median(_timed(naive) for _ in range(args.repeat))
        engine = make_engine(url, application_name="costguard-bench")
        statements = _StatementTimes(engine)
        factory = make_session_factory(engine)
        settings = Settings(database_url=url)  # type: ignore[call-arg]
        tick = iter(range(1, 10**6))
        client = httpx.Client()  # as the worker does: one client for its life, not one per cycle
        clock = [NOW]
        evaluation_only: list[float] = []
        fired: list[int] = []

        def cycle() -> None:
            outcome = run_evaluation_cycle(
                factory, settings, at=clock[0] + timedelta(seconds=next(tick)), client=client
            )
            assert outcome.evaluation is not None and not outcome.evaluation.failures, outcome
            fired.append(outcome.evaluation.fired)
            with transaction(factory) as session:
                state = evaluation_state(session)
                assert state is not None
                evaluation_only.append(state.last_duration_seconds)

        first = _timed(cycle)
        b = statistics.median(_timed(cycle) for _ in range(args.repeat))
        b_eval = statistics.median(evaluation_only[1:])
        del evaluation_only[:]
        del fired[:]
        incremental = []
        rollup_writes = []  # the part of each (c) no design that keeps the rollups can skip
        for round_ in range(args.repeat):
            clock[0], batch = _new_records(args, round_)
            with transaction(factory) as session:
                for start in range(0, len(batch), 5000):
                    ingest_batch(session, batch[start : start + 5000], now=clock[0])
            statements.clear()  # what is left at the end: the statements of the last (c) cycle
            incremental.append(_timed(cycle))
            rollup_writes.append(statements.total("INSERT INTO usage_rollups"))
        statements.stop()
        c = statistics.median(incremental)
        c_eval = statistics.median(evaluation_only)
        _check_exact(factory, naive_rows, args)
        with transaction(factory) as session:
            from sqlalchemy import func, select

            from costguard.evaluation.models import BudgetStatusRow

            scopes = session.scalar(select(func.count()).select_from(BudgetStatusRow))
        print()
        print(f"records {args.records:,}  budgets {args.budgets:,} ({templates} templates)  scopes {scopes:,}")
        print(f"(a) naive SUM ... GROUP BY, current period   {a:8.3f} s")
        print(f"(0) first cycle, builds every budget's spend {first:8.3f} s  (once per budget and period)")
        print(f"(b) full evaluation cycle                    {b:8.3f} s   (b)/(a) = {b / a:.4f}")
        print(f"(c) incremental cycle, {args.new_records:,} new records    {c:8.3f} s   (c)/(a) = {c / a:.4f}")
        print(
            f"    (c) runs: {', '.join(f'{x:.3f}' for x in incremental)}; each after {_span(args)} of traffic;"
            f" alerts fired: {', '.join(map(str, fired))}"
        )
        floor = statistics.median(rollup_writes)
        print(
            f"    of which the rollup upsert of the new records alone: {floor:.3f} s = {floor / a:.4f} x (a)"
            f" (runs {', '.join(f'{x:.3f}' for x in rollup_writes)})"
        )
        print(
            f"    evaluation alone (costguard_evaluation_duration_seconds): (b) {b_eval:.3f} s, (c) {c_eval:.3f} s;"
            f" the rest is the alert delivery step"
        )
        with transaction(factory) as session:
            alerts = session.scalar(text("SELECT count(*) FROM alerts"))
        print(f"    alerts in the database: {alerts:,}")
        if args.statements:
            print("slowest statements of the last (c) cycle:")
            statements.show()
    finally:
        if engine is not None:
            engine.dispose()
        if not args.keep:
            with psycopg.connect(args.admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            print(f"kept database {name}")


def _check_exact(factory, naive_rows, args) -> None:  # type: ignore[no-untyped-def]
    """The all-tenants monthly template's spend must equal the naive sums (before the new records)."""
    # The new records changed the period's spend; compare against raw rows again, exactly.
    from sqlalchemy import text

    with transaction(factory) as session:
        raw = dict(
            session.execute(
                text("SELECT tenant, SUM(cost) FROM usage_records WHERE timestamp >= :s AND timestamp < :e GROUP BY 1"),
                {"s": PERIOD_START, "e": datetime(2026, 12, 1, tzinfo=UTC)},
            ).all()
        )
        stored = dict(
            session.execute(text("SELECT tenant, spend FROM budget_status WHERE budget_id = 'tmpl-all-monthly'")).all()
        )
    mismatched = [t for t in raw if Decimal(raw[t]) != Decimal(stored.get(t, 0))]
    print(f"exactness: tmpl-all-monthly matches the raw sums for {len(raw) - len(mismatched)}/{len(raw)} tenants")
    if mismatched:
        raise SystemExit(f"spend differs from the raw records for tenants {mismatched[:5]}")


if __name__ == "__main__":
    main()
