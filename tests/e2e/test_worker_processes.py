"""Real `costguard worker` processes against one PostgreSQL: one evaluator at a time, crash safety."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select

from costguard.alerts.models import AlertRow
from costguard.db import transaction, utcnow
from costguard.evaluation.models import BudgetSpend, BudgetStatusRow
from costguard.usage.models import UsageRollup
from costguard.usage.repository import unfolded_deltas
from costguard.usage.schemas import parse_usage
from costguard.usage.service import ingest_batch
from tests.conftest import Database
from tests.helpers.app import add_budget
from tests.helpers.processes import VENV_BIN, process
from tests.helpers.receiver import Receiver, http_receiver

pytestmark = pytest.mark.e2e


def _env(db: Database, receiver: Receiver) -> dict[str, str]:
    return {
        "COSTGUARD_DATABASE_URL": db.url,
        "COSTGUARD_EVALUATION_INTERVAL_SECONDS": "1",
        "COSTGUARD_WEBHOOK_URLS": f"{receiver.url}/hook",
        "COSTGUARD_ALERT_RESEND_INTERVAL_SECONDS": "3600",
    }


def _ingest(db: Database, tenant: str, cost: str, event_id: str) -> None:
    record = parse_usage(
        {
            "event_id": event_id,
            "timestamp": (utcnow() - timedelta(minutes=1)).isoformat(),
            "tenant": tenant,
            "cost": cost,
        },
        currency="USD",
    )
    with transaction(db.factory) as session:
        ingest_batch(session, [record], now=utcnow())


def _wait(condition: Callable[[], bool], *, timeout: float = 60, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.2)


def _firing_sent(receiver: Receiver) -> Counter[tuple[str, str, str]]:
    """How often each (tenant, alertname, threshold) was sent as firing."""
    return Counter(
        (alert["labels"]["tenant"], alert["labels"]["alertname"], alert["labels"].get("threshold", ""))
        for body in receiver.bodies("/hook")
        for alert in body["alerts"]
        if alert["status"] == "firing"
    )


def _spend(db: Database, budget: str, tenant: str) -> Decimal | None:
    with transaction(db.factory) as session:
        row = session.get(BudgetStatusRow, (budget, tenant))
        return row.spend if row else None


def test_three_workers_send_each_alert_exactly_once(pg, tmp_path: Path):
    tenants = [f"t{i}" for i in range(6)]
    add_budget(pg, {"id": "each", "tenant": "*", "amount": "100", "thresholds": [0.5, 0.8], "forecast": False})
    with http_receiver() as receiver, ExitStack() as stack:
        for n in range(3):
            stack.enter_context(
                process([str(VENV_BIN / "costguard"), "worker"], env=_env(pg, receiver), log=tmp_path / f"w{n}.log")
            )
        for step, cost in enumerate(["55", "30", "20"]):  # 55%, 85%, 105%
            for tenant in tenants:
                _ingest(pg, tenant, cost, f"{tenant}-{step}")
            total = sum(Decimal(c) for c in ["55", "30", "20"][: step + 1])
            _wait(lambda total=total: all(_spend(pg, "each", t) == total for t in tenants), what=f"spend {total}")
        expected = {
            (t, name, threshold)
            for t in tenants
            for name, threshold in (
                ("CostBudgetApproaching", "0.5"),
                ("CostBudgetApproaching", "0.8"),
                ("CostBudgetExceeded", "1"),
            )
        }
        _wait(lambda: expected <= set(_firing_sent(receiver)), what="every alert delivered")
        time.sleep(6)  # several more cycles on every replica
    sent = _firing_sent(receiver)
    assert {key for key, count in sent.items() if count != 1} == set(), sent
    assert expected <= set(sent)
    with transaction(pg.factory) as session:
        assert session.scalar(select(func.count()).select_from(AlertRow)) == len(sent)
    logs = [(tmp_path / f"w{n}.log").read_text() for n in range(3)]
    assert sum("evaluation.cycle_done" in log for log in logs) >= 2, "more than one replica should have evaluated"


def _admin(db: Database) -> psycopg.Connection:
    return psycopg.connect(db.url.replace("postgresql+psycopg://", "postgresql://", 1))


def _stuck_worker_pid(db: Database) -> bool:
    """True when a worker's backend holds the cycle's advisory lock and waits on a table lock."""
    with _admin(db) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = 'costguard-worker'"
            " AND a.wait_event_type = 'Lock'"
        ).fetchone()
        return bool(row and row[0])


def test_worker_killed_mid_cycle_leaves_consistent_state_and_the_next_completes(pg, tmp_path: Path):
    add_budget(pg, {"id": "acme", "tenant": "acme", "amount": "10", "thresholds": [], "forecast": False})
    _ingest(pg, "acme", "12.5", "a")
    with http_receiver() as receiver:
        blocker = _admin(pg)
        try:
            # Hold the cycle after its fold: it has taken the new usage out in its transaction
            # and waits to read the alerts.
            blocker.execute("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE")
            with process(
                [str(VENV_BIN / "costguard"), "worker"], env=_env(pg, receiver), log=tmp_path / "killed.log"
            ) as victim:
                _wait(lambda: _stuck_worker_pid(pg), what="the worker to be inside its cycle")
                os.killpg(victim.pid, signal.SIGKILL)
                victim.wait(timeout=10)
        finally:
            blocker.rollback()
            blocker.close()
        _wait(lambda: not _stuck_worker_pid(pg), what="the killed worker's transaction to end")
        with transaction(pg.factory) as session:
            assert sum(delta[6] for delta in unfolded_deltas(session)) == 1  # the record is still unfolded
            assert session.scalar(select(func.count()).select_from(UsageRollup)) == 0
            assert session.scalar(select(func.count()).select_from(BudgetSpend)) == 0
            assert session.scalar(select(func.count()).select_from(AlertRow)) == 0
        with process([str(VENV_BIN / "costguard"), "worker"], env=_env(pg, receiver), log=tmp_path / "next.log"):
            _wait(lambda: _spend(pg, "acme", "acme") == Decimal("12.5"), what="the next cycle")
            _wait(lambda: bool(_firing_sent(receiver)), what="the alert")
            time.sleep(3)
    assert _firing_sent(receiver) == Counter({("acme", "CostBudgetExceeded", "1"): 1})
