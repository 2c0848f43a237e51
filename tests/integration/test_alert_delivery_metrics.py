"""/metrics as Prometheus reads it: the contract's metric set, exact label escaping, the series the rules need."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from costguard.evaluation.jobs import run_evaluation_cycle
from tests.helpers.app import add_budget, make_api, usage

T0 = datetime(2026, 12, 4, 12, tzinfo=UTC)
CONTRACT = {
    "costguard_budget_spend",
    "costguard_budget_amount",
    "costguard_budget_utilization_ratio",
    "costguard_budget_forecast_ratio",
    "costguard_budget_state",
    "costguard_cost_total",
    "costguard_cost_adjustments_total",
    "costguard_evaluation_duration_seconds",
    "costguard_last_evaluation_timestamp_seconds",
    "costguard_usage_records_ingested_total",
    "costguard_alert_notifications_total",
    "costguard_alert_notification_failures_total",
    "costguard_alert_outbox_pending",
}


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def test_scrape_carries_the_contract_metrics_and_escapes_label_values_exactly(db):
    awkward = 'data "platform" \\ team\nline two'
    api = make_api(db, alertmanager_urls="http://127.0.0.1:9", alert_retry_initial_seconds=1)
    add_budget(
        db,
        {
            "id": "acme-monthly",
            "tenant": "acme",
            "amount": "100",
            "thresholds": [0.5, 0.8],
            "forecast": True,
            "labels": {"team": awkward},
        },
    )
    api.post_usage([usage("a", "85", pipeline="chat", model="gpt-4o"), usage("r", "-5", kind="adjustment")])
    run_evaluation_cycle(db.factory, api.settings, at=T0, clock=lambda: T0)
    response = api.client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    assert set(samples) >= CONTRACT

    [(labels, utilization)] = samples["costguard_budget_utilization_ratio"]
    assert labels["team"] == awkward and utilization == 0.8  # 85 spent, 5 credited
    assert {(lb["threshold"], v) for lb, v in samples["costguard_budget_threshold_ratio"]} == {
        ("0.5", 0.5),
        ("0.8", 0.8),
        ("1", 1.0),
    }
    assert samples["costguard_budget_forecast_enabled"][0][1] == 1.0
    [(_, start)] = samples["costguard_budget_period_start_timestamp_seconds"]
    [(_, end)] = samples["costguard_budget_period_end_timestamp_seconds"]
    assert (start, end) == (datetime(2026, 12, 1, tzinfo=UTC).timestamp(), datetime(2027, 1, 1, tzinfo=UTC).timestamp())
    assert samples["costguard_cost_adjustments_total"] == [
        ({"tenant": "acme", "pipeline": "", "model": "", "currency": "USD"}, -5.0)
    ]
    receiver = "alertmanager:http://127.0.0.1:9"
    # Approaching at 0.5 and 0.8, and the forecast: queued for the unreachable Alertmanager.
    assert samples["costguard_alert_outbox_pending"] == [({"receiver": receiver}, 3.0)]
    assert samples["costguard_alert_notification_failures_total"] == [({"receiver": receiver}, 1.0)]
    assert samples["costguard_alert_outbox_dead"] == [({"receiver": receiver}, 0.0)]


def test_cost_series_follow_the_configured_label_set(db):
    api = make_api(db, cost_metric_labels="tenant")
    api.post_usage([usage("a", "1.5", pipeline="chat", model="m1"), usage("b", "2", pipeline="search", model="m2")])
    run_evaluation_cycle(db.factory, api.settings, at=T0, clock=lambda: T0)
    samples = _samples(api.client.get("/metrics").text)
    assert samples["costguard_cost_total"] == [({"tenant": "acme", "currency": "USD"}, 3.5)]
