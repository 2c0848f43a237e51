"""The main job end to end, on SQLite and on PostgreSQL: ingest, budgets, evaluate, status, metrics, alerts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from costguard.evaluation.jobs import run_evaluation_cycle
from tests.helpers.app import add_budget, make_api, usage
from tests.helpers.receiver import http_receiver

DEC_4 = datetime(2026, 12, 4, 12, tzinfo=UTC)


def test_replayed_batch_is_counted_once(db):
    api = make_api(db)
    batch = [usage(f"r{i}", "0.25") for i in range(10)]
    first = api.post_usage(batch)
    again = api.post_usage(batch)
    assert first.status_code == 200 and first.json() == {"accepted": 10, "duplicates": 0}
    assert again.json() == {"accepted": 0, "duplicates": 10}
    add_budget(db, {"id": "acme", "tenant": "acme", "amount": "100"})
    run_evaluation_cycle(db.factory, api.settings, at=DEC_4)
    status = api.client.get("/v1/status", headers=api.headers("viewer")).json()
    assert [s["spend"] for s in status] == ["2.5"]


def test_period_boundary_in_berlin_is_exact_to_the_second(db):
    api = make_api(db)
    add_budget(db, {"id": "acme-berlin", "tenant": "acme", "amount": "100", "timezone": "Europe/Berlin"})
    api.post_usage(
        [
            usage("last-second", "1.5", timestamp="2026-11-30T23:59:59+01:00"),
            usage("next-period", "7", timestamp="2026-12-01T00:00:00+01:00"),
            usage("before", "0.25", timestamp="2026-10-31T23:59:59+01:00"),
        ]
    )
    run_evaluation_cycle(db.factory, api.settings, at=datetime(2026, 11, 30, 22, 30, tzinfo=UTC))
    [status] = api.client.get("/v1/status", headers=api.headers("viewer")).json()
    assert status["period"] == "2026-11"
    assert status["spend"] == "1.5"
    assert status["period_start"] == "2026-10-31T23:00:00+00:00"
    assert status["period_end"] == "2026-11-30T23:00:00+00:00"
    run_evaluation_cycle(db.factory, api.settings, at=datetime(2026, 11, 30, 23, 0, tzinfo=UTC))
    [status] = api.client.get("/v1/status", headers=api.headers("viewer")).json()
    assert (status["period"], status["spend"]) == ("2026-12", "7")


def test_crossing_80_then_100_percent_sends_one_alert_each(db):
    with http_receiver() as alertmanager, http_receiver() as webhook:
        api = make_api(
            db,
            alertmanager_urls=alertmanager.url,
            webhook_urls=f"{webhook.url}/hook",
            webhook_secret="s3cret",
            alert_resend_interval_seconds=3600,
        )
        add_budget(db, {"id": "acme-monthly", "tenant": "acme", "amount": "100", "thresholds": [0.8]})
        api.post_usage([usage("a", "50")])
        for minute in range(3):
            run_evaluation_cycle(db.factory, api.settings, at=DEC_4.replace(minute=minute))
        api.post_usage([usage("b", "35")])  # 85%
        for minute in range(3, 6):
            run_evaluation_cycle(db.factory, api.settings, at=DEC_4.replace(minute=minute))
        api.post_usage([usage("c", "20")])  # 105%
        for minute in range(6, 9):
            run_evaluation_cycle(db.factory, api.settings, at=DEC_4.replace(minute=minute))

        sent = [a for body in alertmanager.bodies("/api/v2/alerts") for a in body]
        firing_names = [a["labels"]["alertname"] for a in sent]
        assert firing_names == ["CostBudgetApproaching", "CostBudgetExceeded"]
        approaching, exceeded = sent
        assert approaching["labels"]["threshold"] == "0.8"
        assert approaching["annotations"]["runbook_url"].endswith("/runbooks/CostBudgetApproaching")
        assert exceeded["labels"]["severity"] == "critical"
        assert exceeded["generatorURL"].endswith("/budgets/acme-monthly")
        hooks = webhook.bodies("/hook")
        assert [h["alerts"][0]["labels"]["alertname"] for h in hooks] == ["CostBudgetApproaching", "CostBudgetExceeded"]
        assert all(h["version"] == "4" for h in hooks)


def test_metrics_parse_and_carry_the_contract_series(db):
    api = make_api(db)
    add_budget(db, {"id": "acme-monthly", "tenant": "acme", "amount": "100", "labels": {"team": "platform"}})
    api.post_usage([usage("a", "85", pipeline="chat", model="gpt-4o")])
    run_evaluation_cycle(db.factory, api.settings, at=DEC_4)
    response = api.client.get("/metrics")
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    for name in (
        "costguard_budget_spend",
        "costguard_budget_amount",
        "costguard_budget_utilization_ratio",
        "costguard_budget_forecast_ratio",
        "costguard_budget_state",
        "costguard_cost",
    ):
        assert name in families, name
    [utilization] = families["costguard_budget_utilization_ratio"].samples
    assert utilization.value == 0.85
    assert utilization.labels == {
        "budget": "acme-monthly",
        "tenant": "acme",
        "pipeline": "*",
        "model": "*",
        "period": "2026-12",
        "currency": "USD",
        "team": "platform",
    }
    states = {s.labels["state"]: s.value for s in families["costguard_budget_state"].samples}
    assert states == {"ok": 0.0, "approaching": 1.0, "exceeded": 0.0}
    [cost] = families["costguard_cost"].samples
    assert cost.labels == {"tenant": "acme", "pipeline": "chat", "model": "gpt-4o", "currency": "USD"}
    assert cost.value == 85.0


def test_budgets_as_code_apply_then_list(db, tmp_path: Path):
    from costguard.budgets.files import apply, load_dir
    from costguard.budgets.service import Actor
    from costguard.db import transaction, utcnow

    loaded = load_dir(Path(__file__).parents[2] / "budgets", currency="USD")
    assert loaded.errors == []
    with transaction(db.factory) as session:
        apply(session, loaded.budgets, actor=Actor("test", "file"), now=utcnow())
    api = make_api(db)
    listed = api.client.get("/v1/budgets", headers=api.headers("viewer")).json()
    assert {b["id"] for b in listed} >= {
        "acme-monthly",
        "default-monthly",
        "daily-gpt4o-guard",
        "globex-summarize-gpt4o",
    }
    acme = next(b for b in listed if b["id"] == "acme-monthly")
    assert acme["amount"] == "5000" and acme["timezone"] == "Europe/Berlin"
    assert acme["managed_by_file"].endswith("acme.yaml")


def test_cli_status_json_matches_the_api(db, cli):

    api = make_api(db)
    add_budget(db, {"id": "tmpl", "tenant": "*", "amount": "10"})
    api.post_usage([usage("a", "1", tenant="acme"), usage("b", "12", tenant="globex")])
    result = cli("status", "--at", "2026-12-04T12:00:00Z", "--format", "json")
    assert result.exit_code == 0, result.output
    documents = json.loads(result.stdout)
    assert [(d["tenant"], d["state"]) for d in documents] == [("acme", "ok"), ("globex", "exceeded")]
    assert documents == api.client.get("/v1/status", headers=api.headers("viewer")).json()
    assert Decimal(documents[1]["spend"]) == Decimal(12)
