"""The alert state machine through whole cycles: resolve on a raised budget, period rollover, broken budgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from costguard.alerts.models import AlertNotification, AlertRow
from costguard.budgets.models import BudgetRow
from costguard.budgets.service import Actor, delete_budget, parse_spec, update_budget
from costguard.db import transaction, utcnow
from costguard.evaluation.jobs import run_evaluation_cycle
from costguard.evaluation.repository import evaluation_state
from tests.helpers.app import add_budget, make_api, usage

DEC_4 = datetime(2026, 12, 4, 12, tzinfo=UTC)


def _alerts(db) -> list[tuple[str, str, str]]:
    with transaction(db.factory) as session:
        rows = session.scalars(select(AlertRow).order_by(AlertRow.id)).all()
        return [(r.alertname, r.period, r.status) for r in rows]


def _events(db) -> list[tuple[str, str]]:
    with transaction(db.factory) as session:
        rows = session.execute(
            select(AlertRow.alertname, AlertNotification.event)
            .join(AlertRow, AlertRow.id == AlertNotification.alert_id)
            .order_by(AlertNotification.id)
        )
        return [(name, event) for name, event in rows]


def _raise_amount(db, budget_id: str, amount: str) -> None:
    with transaction(db.factory) as session:
        row = session.get(BudgetRow, budget_id)
        assert row is not None
        spec = parse_spec({"id": budget_id, "tenant": row.tenant, "amount": amount}, currency="USD")
        update_budget(session, spec, expected_version=row.version, actor=Actor("test", "api"), now=utcnow())


def test_budget_raised_above_the_spend_resolves_its_alert_after_hysteresis(db):
    api = make_api(db, webhook_urls="http://127.0.0.1:9/hook")
    add_budget(db, {"id": "acme", "tenant": "acme", "amount": "100", "thresholds": [], "forecast": False})
    api.post_usage([usage("a", "120")])
    run_evaluation_cycle(db.factory, api.settings, at=DEC_4)
    assert _alerts(db) == [("CostBudgetExceeded", "2026-12", "firing")]
    _raise_amount(db, "acme", "500")
    run_evaluation_cycle(db.factory, api.settings, at=DEC_4 + timedelta(minutes=1))
    assert _alerts(db) == [("CostBudgetExceeded", "2026-12", "firing")]  # one clear cycle is not enough
    run_evaluation_cycle(db.factory, api.settings, at=DEC_4 + timedelta(minutes=2))
    assert _alerts(db) == [("CostBudgetExceeded", "2026-12", "resolved")]
    for minute in range(3, 6):
        run_evaluation_cycle(db.factory, api.settings, at=DEC_4 + timedelta(minutes=minute))
    assert _events(db) == [("CostBudgetExceeded", "firing"), ("CostBudgetExceeded", "resolved")]


def test_spend_flapping_around_a_threshold_does_not_refire(db):
    api = make_api(db, webhook_urls="http://127.0.0.1:9/hook")
    add_budget(db, {"id": "acme", "tenant": "acme", "amount": "100", "thresholds": [], "forecast": False})
    api.post_usage([usage("a", "101")])
    run_evaluation_cycle(db.factory, api.settings, at=DEC_4)
    api.post_usage([usage("credit", "-2", kind="adjustment")])  # 99%: below for one cycle
    run_evaluation_cycle(db.factory, api.settings, at=DEC_4 + timedelta(minutes=1))
    api.post_usage([usage("b", "2")])  # 101% again
    for minute in range(2, 5):
        run_evaluation_cycle(db.factory, api.settings, at=DEC_4 + timedelta(minutes=minute))
    assert _events(db) == [("CostBudgetExceeded", "firing")]


def test_period_rollover_resolves_last_periods_alerts_and_starts_fresh(db):
    api = make_api(db, webhook_urls="http://127.0.0.1:9/hook")
    add_budget(db, {"id": "acme", "tenant": "acme", "amount": "100", "thresholds": [0.5], "forecast": False})
    api.post_usage([usage("nov", "120", timestamp="2026-11-30T20:00:00Z")])
    run_evaluation_cycle(db.factory, api.settings, at=datetime(2026, 11, 30, 23, 50, tzinfo=UTC))
    assert sorted(_alerts(db)) == [
        ("CostBudgetApproaching", "2026-11", "firing"),
        ("CostBudgetExceeded", "2026-11", "firing"),
    ]
    run_evaluation_cycle(db.factory, api.settings, at=datetime(2026, 12, 1, 0, 5, tzinfo=UTC))
    assert sorted(_alerts(db)) == [
        ("CostBudgetApproaching", "2026-11", "resolved"),
        ("CostBudgetExceeded", "2026-11", "resolved"),
    ]
    api.post_usage([usage("dec", "60", timestamp="2026-12-01T00:10:00Z")])
    run_evaluation_cycle(db.factory, api.settings, at=datetime(2026, 12, 1, 0, 20, tzinfo=UTC))
    assert ("CostBudgetApproaching", "2026-12", "firing") in _alerts(db)
    assert ("CostBudgetExceeded", "2026-12", "firing") not in _alerts(db)
    [status] = api.client.get("/v1/status", headers=api.headers("viewer")).json()
    assert (status["period"], status["spend"]) == ("2026-12", "60")


def test_one_broken_budget_does_not_stop_the_others_and_is_reported(db):
    api = make_api(db)
    add_budget(db, {"id": "broken", "tenant": "acme", "amount": "100"})
    add_budget(db, {"id": "healthy", "tenant": "acme", "amount": "100"})
    with transaction(db.factory) as session:  # a row no API would accept, as a bad manual edit leaves it
        session.execute(update(BudgetRow).where(BudgetRow.id == "broken").values(timezone="Mars/Olympus_Mons"))
    api.post_usage([usage("a", "42")])
    outcome = run_evaluation_cycle(db.factory, api.settings, at=DEC_4)
    assert outcome.evaluation is not None
    assert list(outcome.evaluation.failures) == ["broken"]
    statuses = api.client.get("/v1/status", headers=api.headers("viewer")).json()
    assert [(s["budget"], s["spend"]) for s in statuses] == [("healthy", "42")]
    with transaction(db.factory) as session:
        state = evaluation_state(session)
        assert state is not None
        assert (state.budgets_evaluated, state.budgets_failed) == (1, 1)
        assert state.last_error is not None and state.last_error.startswith("broken:")
    families = {f.name: f for f in text_string_to_metric_families(api.client.get("/metrics").text)}
    assert families["costguard_evaluation_budgets_failed"].samples[0].value == 1.0
    assert families["costguard_last_evaluation_timestamp_seconds"].samples[0].value > 0
    assert "costguard_evaluation_duration_seconds" in families


def test_changing_a_budgets_scope_rebuilds_its_spend_exactly(db):
    api = make_api(db)
    add_budget(db, {"id": "acme", "tenant": "acme", "amount": "100"})
    api.post_usage([usage("a", "1.25", pipeline="chat"), usage("b", "2.5", pipeline="batch")])
    run_evaluation_cycle(db.factory, api.settings, at=DEC_4)
    with transaction(db.factory) as session:
        row = session.get(BudgetRow, "acme")
        assert row is not None
        spec = parse_spec({"id": "acme", "tenant": "acme", "pipeline": "chat", "amount": "100"}, currency="USD")
        update_budget(session, spec, expected_version=row.version, actor=Actor("test", "api"), now=utcnow())
    api.post_usage([usage("c", "0.000000000001", pipeline="chat"), usage("d", "9", pipeline="batch")])
    run_evaluation_cycle(db.factory, api.settings, at=DEC_4 + timedelta(minutes=1))
    [status] = api.client.get("/v1/status", headers=api.headers("viewer")).json()
    assert status["spend"] == "1.250000000001"


def test_late_record_lands_in_its_own_period(db):
    api = make_api(db)
    add_budget(db, {"id": "acme", "tenant": "acme", "amount": "100", "timezone": "Asia/Kolkata"})
    api.post_usage([usage("now", "3")])
    run_evaluation_cycle(db.factory, api.settings, at=DEC_4)
    api.post_usage(
        [
            usage("late-last-month", "50", timestamp="2026-11-30T18:29:59Z"),  # 23:59:59 IST on Nov 30
            usage("late-this-month", "0.5", timestamp="2026-11-30T18:30:00Z"),  # 00:00 IST on Dec 1
        ]
    )
    run_evaluation_cycle(db.factory, api.settings, at=DEC_4 + timedelta(minutes=1))
    [status] = api.client.get("/v1/status", headers=api.headers("viewer")).json()
    assert status["spend"] == "3.5"


def _status_scopes(api) -> list[tuple[str, str]]:
    return [(s["budget"], s["tenant"]) for s in api.client.get("/v1/status", headers=api.headers("viewer")).json()]


def test_statuses_follow_budgets_that_move_or_go_and_their_alerts_resolve(db):
    api = make_api(db, webhook_urls="http://127.0.0.1:9/hook")
    add_budget(db, {"id": "every", "tenant": "*", "amount": "10", "thresholds": [], "forecast": False})
    add_budget(db, {"id": "mover", "tenant": "acme", "amount": "10", "thresholds": [], "forecast": False})
    api.post_usage([usage("a", "12"), usage("b", "1", tenant="globex")])
    run_evaluation_cycle(db.factory, api.settings, at=DEC_4)
    assert _status_scopes(api) == [("every", "acme"), ("every", "globex"), ("mover", "acme")]
    with transaction(db.factory) as session:  # the specific budget moves to another tenant
        row = session.get(BudgetRow, "mover")
        assert row is not None
        spec = parse_spec({"id": "mover", "tenant": "globex", "amount": "10"}, currency="USD")
        update_budget(session, spec, expected_version=row.version, actor=Actor("test", "api"), now=utcnow())
    with transaction(db.factory) as session:  # the template goes
        delete_budget(session, "every", expected_version=1, actor=Actor("test", "api"), now=utcnow())
    run_evaluation_cycle(db.factory, api.settings, at=DEC_4 + timedelta(minutes=1))
    assert _status_scopes(api) == [("mover", "globex")]
    # Both budgets' exceeded alerts for acme lost their scope: resolved at once, not after hysteresis.
    assert sorted(_alerts(db)) == [("CostBudgetExceeded", "2026-12", "resolved")] * 2
