"""Exactness of the worker's spend under concurrent ingests, late records and evaluations (PostgreSQL).

Ingest transactions are held open side by side and committed in any order, with evaluation cycles
run in between, so the fold meets deltas that commit after a later transaction's deltas. After
all of it, every budget scope's spend, and its spend over the burn-rate windows, must equal the
exact sums over the raw records.
"""

from __future__ import annotations

import itertools
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from costguard.budgets.periods import period_containing
from costguard.budgets.service import Actor, parse_spec, update_budget
from costguard.db import transaction
from costguard.evaluation.jobs import run_evaluation_cycle
from costguard.evaluation.models import BudgetStatusRow, BudgetWindowSpend
from costguard.usage.models import UsageRecord
from costguard.usage.schemas import parse_usage
from costguard.usage.service import ingest_batch
from tests.conftest import Database, _truncate_all
from tests.helpers.app import add_budget

BASE = datetime(2026, 11, 28, tzinfo=UTC)
BUDGETS: list[dict[str, Any]] = [
    {"id": "t1-month-utc", "tenant": "t1", "amount": "1000", "period": "monthly", "timezone": "UTC"},
    {
        "id": "all-p1-day-ist",
        "tenant": "*",
        "pipeline": "p1",
        "amount": "50",
        "period": "daily",
        "timezone": "Asia/Kolkata",
    },
    {
        "id": "all-m2-month-nst",
        "tenant": "*",
        "model": "m2",
        "amount": "500",
        "period": "monthly",
        "timezone": "America/St_Johns",
    },
    {
        "id": "t2-p2-m1-day-npt",
        "tenant": "t2",
        "pipeline": "p2",
        "model": "m1",
        "amount": "20",
        "period": "daily",
        "timezone": "Asia/Kathmandu",
    },
    {"id": "all-week-berlin", "tenant": "*", "amount": "300", "period": "weekly", "timezone": "Europe/Berlin"},
]
# Local midnights as seconds after UTC midnight: UTC, IST (+05:30), NPT (+05:45), NST (-03:30), CET.
BOUNDARIES = [0, 18 * 3600 + 1800, 18 * 3600 + 900, 3 * 3600 + 1800, 23 * 3600]
_ids = itertools.count()

records = st.fixed_dictionaries(
    {
        "tenant": st.sampled_from(["t1", "t2", "t3"]),
        "pipeline": st.sampled_from([None, "p1", "p2"]),
        "model": st.sampled_from([None, "m1", "m2"]),
        # anywhere from 3 days before BASE to 6 days after, to the second: late and on-time alike,
        # with many close to a period boundary of one of the budgets' timezones
        "seconds": st.one_of(
            st.integers(-3 * 86400, 6 * 86400),
            st.builds(
                lambda day, boundary, offset: day * 86400 + boundary + offset,
                st.integers(-3, 5),
                st.sampled_from(BOUNDARIES),
                st.integers(-1200, 1200),
            ),
        ),
        "cost": st.integers(-(10**13), 10**14),  # in units of 1e-12
    }
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("open"), st.lists(records, min_size=1, max_size=4)),
        st.tuples(st.just("commit"), st.integers(0, 5)),
        st.tuples(st.just("evaluate"), st.integers(-3 * 24 * 60, 6 * 24 * 60)),  # minutes after BASE
    ),
    min_size=1,
    max_size=14,
)


def _usage(raw: dict[str, Any]) -> Any:
    cost = Decimal(raw["cost"]).scaleb(-12)
    document = {
        "event_id": f"e{next(_ids)}",
        "timestamp": (BASE + timedelta(seconds=raw["seconds"])).isoformat(),
        "tenant": raw["tenant"],
        "pipeline": raw["pipeline"],
        "model": raw["model"],
        "cost": str(cost),
        "kind": "adjustment" if cost < 0 else "usage",
    }
    return parse_usage(document, currency="USD")


def _expected(db: Database, at: datetime) -> dict[tuple[str, str], Decimal]:
    """Exact spend per (budget, tenant) straight from the raw records, in Python."""
    with transaction(db.factory) as session:
        rows = session.scalars(select(UsageRecord)).all()
        expected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for budget in BUDGETS:
            period = period_containing(budget["period"], ZoneInfo(budget["timezone"]), at)
            for r in rows:
                if (
                    budget["tenant"] in ("*", r.tenant)
                    and budget.get("pipeline", "*") in ("*", r.pipeline)
                    and budget.get("model", "*") in ("*", r.model)
                    and period.start <= r.timestamp < period.end
                ):
                    expected[(budget["id"], r.tenant if budget["tenant"] == "*" else budget["tenant"])] += r.cost
        return expected


def _expected_windows(db: Database, at: datetime) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    """Exact spend per (budget, tenant) over the burn-rate windows: records whose 15-minute bucket
    starts in [at - 1h, at) and [at - 6h, at), straight from the raw records."""
    found: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
    with transaction(db.factory) as session:
        rows = session.scalars(select(UsageRecord)).all()
    for budget in BUDGETS:
        for r in rows:
            bucket = datetime.fromtimestamp(r.timestamp.timestamp() // 900 * 900, UTC)
            if not (
                budget["tenant"] in ("*", r.tenant)
                and budget.get("pipeline", "*") in ("*", r.pipeline)
                and budget.get("model", "*") in ("*", r.model)
                and at - timedelta(hours=6) <= bucket < at
            ):
                continue
            key = (budget["id"], r.tenant if budget["tenant"] == "*" else budget["tenant"])
            short, long = found.get(key, (Decimal(0), Decimal(0)))
            found[key] = (short + (r.cost if bucket >= at - timedelta(hours=1) else 0), long + r.cost)
    return {key: sums for key, sums in found.items() if sums != (0, 0)}


def _assert_exact(db: Database, at: datetime) -> None:
    expected = _expected(db, at)
    with transaction(db.factory) as session:
        stored = {(s.budget_id, s.tenant): s.spend for s in session.scalars(select(BudgetStatusRow))}
        windows = {
            (w.budget_id, w.tenant): (w.short_window, w.long_window)
            for w in session.scalars(select(BudgetWindowSpend))
            if (w.short_window, w.long_window) != (0, 0)
        }
    assert set(expected) <= set(stored)
    for key, spend in stored.items():
        assert spend == expected.get(key, Decimal(0)), key
    # The windows are slid from cycle to cycle (and rebuilt when time goes backwards): they too
    # must hold exactly what the raw records say.
    assert windows == _expected_windows(db, at)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps, final_minute=st.integers(0, 5 * 24 * 60))
def test_spend_equals_raw_sum_after_any_interleaving(pg, plan, final_minute):
    _truncate_all(pg.engine)
    for budget in BUDGETS:
        add_budget(pg, budget)
    config = pg.settings()
    open_sessions: list[Session] = []
    try:
        for action, argument in plan:
            if action == "open":
                session = pg.factory()
                ingest_batch(session, [_usage(r) for r in argument], now=BASE)
                open_sessions.append(session)
            elif action == "commit" and open_sessions:
                session = open_sessions.pop(argument % len(open_sessions))
                session.commit()
                session.close()
            elif action == "evaluate":
                run_evaluation_cycle(pg.factory, config, at=BASE + timedelta(minutes=argument))
        while open_sessions:
            session = open_sessions.pop()  # newest first: the reverse of their start order
            session.commit()
            session.close()
    finally:
        for session in open_sessions:
            session.rollback()
            session.close()
    at = BASE + timedelta(minutes=final_minute)
    run_evaluation_cycle(pg.factory, config, at=at)
    _assert_exact(pg, at)


def test_two_ingests_committing_out_of_order_are_both_counted(pg):
    add_budget(pg, {"id": "t1", "tenant": "t1", "amount": "100"})
    config = pg.settings()
    at = datetime(2026, 12, 4, 12, tzinfo=UTC)
    first, second = pg.factory(), pg.factory()
    try:
        one = parse_usage(
            {"event_id": "one", "timestamp": "2026-12-04T10:00:00Z", "tenant": "t1", "cost": "1.000000000001"},
            currency="USD",
        )
        two = parse_usage(
            {"event_id": "two", "timestamp": "2026-12-04T10:00:01Z", "tenant": "t1", "cost": "2"}, currency="USD"
        )
        ingest_batch(first, [one], now=at)  # starts first, gets the lower ids
        ingest_batch(second, [two], now=at)
        second.commit()  # ... but commits last
        run_evaluation_cycle(pg.factory, config, at=at)
        first.commit()
        run_evaluation_cycle(pg.factory, config, at=at + timedelta(minutes=1))
    finally:
        first.close()
        second.close()
    with transaction(pg.factory) as session:
        [status] = session.scalars(select(BudgetStatusRow)).all()
        assert status.spend == Decimal("3.000000000001")
    _assert_exact_for_one(pg, at)


def _assert_exact_for_one(db: Database, at: datetime) -> None:
    with transaction(db.factory) as session:
        raw = sum((r.cost for r in session.scalars(select(UsageRecord))), Decimal(0))
        [status] = session.scalars(select(BudgetStatusRow)).all()
        assert status.spend == raw


def test_burn_rate_windows_slide_exactly_cycle_after_cycle(pg):
    # Cycles every 7 minutes for 8 hours (boundaries crossed one and two buckets at a time), with
    # records arriving between them: on time, late (into buckets inside and behind the windows)
    # and ahead of the clock (they enter the windows only when their bucket's time comes).
    for budget in BUDGETS:
        add_budget(pg, budget)
    config = pg.settings()
    start = BASE + timedelta(hours=10, minutes=3)
    for step in range(0, 8 * 60, 7):
        at = start + timedelta(minutes=step)
        arrivals = [
            {"tenant": "t1", "pipeline": "p1", "model": "m2", "seconds": 0, "cost": 10**12},
            {"tenant": "t2", "pipeline": "p2", "model": "m1", "seconds": -50 * 60, "cost": 3 * 10**11},
            {"tenant": "t3", "pipeline": "p1", "model": None, "seconds": -7 * 3600, "cost": 5 * 10**11},
            {"tenant": "t1", "pipeline": None, "model": "m2", "seconds": 40 * 60, "cost": 7 * 10**11},
        ]
        with transaction(pg.factory) as session:
            offset = int((at - BASE).total_seconds())
            ingest_batch(session, [_usage({**r, "seconds": offset + r["seconds"]}) for r in arrivals], now=at)
        run_evaluation_cycle(pg.factory, config, at=at)
        _assert_exact(pg, at)


def test_windows_stay_exact_when_a_budget_changes_scope_while_they_slide(pg, monkeypatch):
    # A budget whose scope changes is rebuilt from the rollups as the windows slide for the rest:
    # it must not also get the slide (counted twice), and the others must not miss it.
    for budget in BUDGETS:
        add_budget(pg, budget)
    config = pg.settings()
    start = BASE + timedelta(hours=10, minutes=3)
    edited = [dict(b) for b in BUDGETS]
    for step in range(0, 4 * 60, 25):
        at = start + timedelta(minutes=step)
        arrivals = [
            {"tenant": "t1", "pipeline": "p1", "model": "m2", "seconds": -10 * 60, "cost": 10**12},
            {"tenant": "t2", "pipeline": "p2", "model": "m1", "seconds": -3 * 3600, "cost": 3 * 10**11},
            {"tenant": "t3", "pipeline": "p2", "model": "m2", "seconds": -70 * 60, "cost": 5 * 10**11},
        ]
        with transaction(pg.factory) as session:
            offset = int((at - BASE).total_seconds())
            ingest_batch(session, [_usage({**r, "seconds": offset + r["seconds"]}) for r in arrivals], now=at)
        if step and step % 50 == 0:  # every other cycle, one template swaps pipeline p1 <-> p2
            template = edited[1]
            template["pipeline"] = "p2" if template["pipeline"] == "p1" else "p1"
            with transaction(pg.factory) as session:
                spec = parse_spec(template, currency="USD")
                update_budget(session, spec, expected_version=None, actor=Actor("test", "api"), now=at)
            monkeypatch.setattr(sys.modules[__name__], "BUDGETS", [dict(b) for b in edited])
        run_evaluation_cycle(pg.factory, config, at=at)
        _assert_exact(pg, at)
