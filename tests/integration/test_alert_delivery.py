"""Alert delivery against real HTTP receivers on loopback, on SQLite and PostgreSQL.

The clock is driven by the test (evaluation and delivery both run "as of" a given instant), so
outages, backoff and dead-letter ages take no wall time.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from costguard.alerts.delivery import backoff
from costguard.evaluation.jobs import run_evaluation_cycle
from tests.helpers.app import Api, add_budget, make_api, usage
from tests.helpers.processes import free_port
from tests.helpers.receiver import http_receiver

T0 = datetime(2026, 12, 4, 12, tzinfo=UTC)
RETRY = {"alert_retry_initial_seconds": 1, "alert_retry_max_seconds": 4}


def cycle(api: Api, at: datetime) -> None:
    """One full cycle with both the evaluation instant and the delivery clock at ``at``."""
    run_evaluation_cycle(api.db.factory, api.settings, at=at, clock=lambda: at)


def alerts(api: Api) -> list[dict[str, Any]]:
    response = api.client.get("/v1/alerts", headers=api.headers("viewer"))
    assert response.status_code == 200
    return list(response.json())


def metric_values(api: Api, name: str) -> dict[str, float]:
    """``{receiver: value}`` of one per-receiver metric from a real scrape."""
    text = api.client.get("/metrics").text
    return {
        sample.labels["receiver"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def posted_alerts(receiver: Any) -> list[dict[str, Any]]:
    return [alert for body in receiver.bodies("/api/v2/alerts") for alert in body]


def test_receivers_down_lose_nothing_and_get_each_alert_once_after_recovery(db):
    am_port, hook_port = free_port(), free_port()
    am_url, hook_url = f"http://127.0.0.1:{am_port}", f"http://127.0.0.1:{hook_port}/hook"
    api = make_api(db, alertmanager_urls=am_url, webhook_urls=hook_url, alert_resend_interval_seconds=3600, **RETRY)
    add_budget(db, {"id": "acme-monthly", "tenant": "acme", "amount": "100", "thresholds": [0.8]})
    api.post_usage([usage("a", "85")])
    cycle(api, T0)
    api.post_usage([usage("b", "20")])
    for minute in range(1, 4):
        cycle(api, T0 + timedelta(minutes=minute))

    deliveries = [d for a in alerts(api) for d in a["deliveries"]]
    assert len(deliveries) == 4 and {d["status"] for d in deliveries} == {"pending"}
    assert all(d["attempts"] >= 1 and d["last_error"] for d in deliveries)
    assert metric_values(api, "costguard_alert_outbox_pending") == {
        f"alertmanager:{am_url}": 2,
        f"webhook:{hook_url}": 2,
    }
    assert all(v >= 1 for v in metric_values(api, "costguard_alert_notification_failures_total").values())

    with http_receiver(am_port) as alertmanager, http_receiver(hook_port) as webhook:
        for minute in range(5, 9):
            cycle(api, T0 + timedelta(minutes=minute))
        hooks = webhook.bodies("/hook")
        assert [(h["status"], h["alerts"][0]["labels"]["alertname"]) for h in hooks] == [
            ("firing", "CostBudgetApproaching"),
            ("firing", "CostBudgetExceeded"),
        ]
        assert len({h["alerts"][0]["fingerprint"] for h in hooks}) == 2
        assert [a["labels"]["alertname"] for a in posted_alerts(alertmanager)] == [
            "CostBudgetApproaching",
            "CostBudgetExceeded",
        ]
    assert {d["status"] for a in alerts(api) for d in a["deliveries"]} == {"delivered"}
    assert set(metric_values(api, "costguard_alert_outbox_pending").values()) == {0}
    assert metric_values(api, "costguard_alert_notifications_total") == {
        f"alertmanager:{am_url}": 2,
        f"webhook:{hook_url}": 2,
    }


def test_a_notification_refused_past_the_dead_letter_age_is_dead_and_stops_blocking(db):
    with http_receiver() as webhook:
        webhook.status = 503
        hook_url = f"{webhook.url}/hook"
        api = make_api(db, webhook_urls=hook_url, alert_dead_letter_after_seconds=60, **RETRY)
        add_budget(db, {"id": "acme-monthly", "tenant": "acme", "amount": "100", "thresholds": [0.8]})
        api.post_usage([usage("a", "85")])
        cycle(api, T0)
        cycle(api, T0 + timedelta(seconds=30))
        [approaching] = alerts(api)
        assert approaching["deliveries"][0]["status"] == "pending"
        cycle(api, T0 + timedelta(seconds=61))

        [approaching] = alerts(api)
        [dead] = approaching["deliveries"]
        assert dead["status"] == "dead" and dead["attempts"] == 3 and "503" in dead["last_error"]
        assert metric_values(api, "costguard_alert_outbox_dead") == {f"webhook:{hook_url}": 1}
        assert metric_values(api, "costguard_alert_outbox_pending") == {f"webhook:{hook_url}": 0}

        webhook.status = 200
        api.post_usage([usage("b", "20")])
        cycle(api, T0 + timedelta(minutes=5))
        cycle(api, T0 + timedelta(minutes=6))
        assert [h["alerts"][0]["labels"]["alertname"] for h in webhook.bodies("/hook")] == ["CostBudgetExceeded"]
        [dead] = next(a for a in alerts(api) if a["alertname"] == "CostBudgetApproaching")["deliveries"]
        assert dead["status"] == "dead"


def _receiver_accepts(secret: bytes, body: bytes, headers: dict[str, str]) -> bool:
    """What a webhook receiver does: recompute the HMAC of the raw body and compare in constant time."""
    header = next((v for k, v in headers.items() if k.lower() == "x-costguard-signature"), "")
    scheme, _, digest = header.partition("=")
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return scheme == "sha256" and hmac.compare_digest(digest, expected)


def test_webhook_signature_verifies_at_the_receiver_and_tampering_does_not(db):
    with http_receiver() as webhook:
        api = make_api(db, webhook_urls=f"{webhook.url}/hook", webhook_secret="s3cret")
        add_budget(db, {"id": "acme-monthly", "tenant": "acme", "amount": "100", "thresholds": [0.8]})
        api.post_usage([usage("a", "85")])
        cycle(api, T0)
        [request] = webhook.requests
    assert _receiver_accepts(b"s3cret", request.body, request.headers)
    assert not _receiver_accepts(b"another-secret", request.body, request.headers)
    tampered = request.body.replace(b'"acme"', b'"globex"')
    assert tampered != request.body and not _receiver_accepts(b"s3cret", tampered, request.headers)
    message = request.json()
    assert message["version"] == "4" and message["status"] == "firing"
    [alert] = message["alerts"]
    assert alert["fingerprint"] == alerts(api)[0]["fingerprint"]
    assert alert["labels"]["alertname"] == "CostBudgetApproaching"
    assert alert["annotations"]["runbook_url"].endswith("/runbooks/CostBudgetApproaching")


def test_firing_ends_in_the_future_and_resolution_ends_at_the_resolve_time(db):
    with http_receiver() as alertmanager, http_receiver() as webhook:
        api = make_api(
            db,
            alertmanager_urls=alertmanager.url,
            webhook_urls=f"{webhook.url}/hook",
            alert_resend_interval_seconds=600,
            evaluation_interval_seconds=60,
        )
        add_budget(db, {"id": "acme-monthly", "tenant": "acme", "amount": "100", "thresholds": [0.5]})
        api.post_usage([usage("a", "105")])
        cycle(api, T0)
        api.post_usage([usage("credit", "-30", kind="adjustment")])
        resolve_at = T0 + timedelta(minutes=2)
        cycle(api, T0 + timedelta(minutes=1))
        cycle(api, resolve_at)

        sent = posted_alerts(alertmanager)
        exceeded = [a for a in sent if a["labels"]["alertname"] == "CostBudgetExceeded"]
        assert len(exceeded) == 2
        firing, resolved = exceeded
        assert firing["startsAt"] == "2026-12-04T12:00:00Z"
        assert firing["endsAt"] == "2026-12-04T12:40:00Z"  # now + 4 x max(600 s, 60 s)
        assert resolved["startsAt"] == "2026-12-04T12:00:00Z"
        assert resolved["endsAt"] == "2026-12-04T12:02:00Z"
        assert all(a["generatorURL"].endswith("/budgets/acme-monthly") for a in sent)
        hooks = [h for h in webhook.bodies("/hook") if h["alerts"][0]["labels"]["alertname"] == "CostBudgetExceeded"]
        assert [h["status"] for h in hooks] == ["firing", "resolved"]
        assert hooks[0]["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
        assert hooks[1]["alerts"][0]["endsAt"] == "2026-12-04T12:02:00Z"
    [row] = [a for a in alerts(api) if a["alertname"] == "CostBudgetExceeded"]
    assert row["status"] == "resolved" and row["endsAt"] == resolve_at.isoformat()


def test_each_alertmanager_of_an_ha_pair_receives_every_alert_and_every_resend(db):
    second_port = free_port()
    with http_receiver() as first:
        second_url = f"http://127.0.0.1:{second_port}"
        api = make_api(db, alertmanager_urls=f"{first.url},{second_url}", alert_resend_interval_seconds=60, **RETRY)
        add_budget(db, {"id": "acme-monthly", "tenant": "acme", "amount": "100", "thresholds": [0.8]})
        api.post_usage([usage("a", "105")])
        cycle(api, T0)
        assert sorted(a["labels"]["alertname"] for a in posted_alerts(first)) == [
            "CostBudgetApproaching",
            "CostBudgetExceeded",
        ]
        with http_receiver(second_port) as second:
            cycle(api, T0 + timedelta(seconds=30))
            assert sorted(a["labels"]["alertname"] for a in posted_alerts(second)) == [
                "CostBudgetApproaching",
                "CostBudgetExceeded",
            ]
            first_count, second_count = len(first.requests), len(second.requests)
            cycle(api, T0 + timedelta(seconds=95))
            first_resend, second_resend = first.bodies()[first_count:], second.bodies()[second_count:]
    assert len(first_resend) == 1 and len(second_resend) == 1
    for [*resent] in (first_resend[0], second_resend[0]):
        assert sorted(a["labels"]["alertname"] for a in resent) == ["CostBudgetApproaching", "CostBudgetExceeded"]
        assert {a["startsAt"] for a in resent} == {"2026-12-04T12:00:00Z"}
        assert {a["endsAt"] for a in resent} == {"2026-12-04T12:05:35Z"}  # 12:01:35 + 4 x 60 s


def test_retry_delays_grow_exponentially_with_jitter_up_to_the_cap():
    rng = random.Random(7)
    for attempts, step in ((1, 5), (2, 10), (3, 20), (4, 40), (9, 600), (60, 600)):
        delays = {backoff(attempts, rng, initial=5, cap=600).total_seconds() for _ in range(50)}
        assert all(step / 2 <= d <= step for d in delays), (attempts, sorted(delays)[:3])
        assert len(delays) > 1  # jittered: replicas and receivers are not retried in lockstep


def test_a_refused_notification_is_not_retried_before_its_backoff_expires(db):
    with http_receiver() as webhook:
        webhook.status = 503
        api = make_api(db, webhook_urls=f"{webhook.url}/hook", alert_retry_initial_seconds=60)
        add_budget(db, {"id": "acme-monthly", "tenant": "acme", "amount": "100", "thresholds": [0.8]})
        api.post_usage([usage("a", "85")])
        cycle(api, T0)
        [first] = alerts(api)[0]["deliveries"]
        assert first["attempts"] == 1
        retry_at = datetime.fromisoformat(first["next_attempt_at"])
        assert T0 + timedelta(seconds=30) <= retry_at <= T0 + timedelta(seconds=60)
        cycle(api, retry_at - timedelta(seconds=1))
        assert alerts(api)[0]["deliveries"][0]["attempts"] == 1
        webhook.status = 200
        cycle(api, retry_at)
        [delivered] = alerts(api)[0]["deliveries"]
        assert delivered["status"] == "delivered" and delivered["attempts"] == 2
        assert len(webhook.requests) == 1


def test_an_unreachable_alertmanager_is_retried_at_least_every_resend_interval(db):
    """A webhook's retry delay grows to its cap; an Alertmanager's stops at the resend interval."""
    api = make_api(
        db,
        alertmanager_urls=f"http://127.0.0.1:{free_port()}",
        webhook_urls=f"http://127.0.0.1:{free_port()}/hook",
        alert_resend_interval_seconds=60,
        alert_retry_initial_seconds=5,
        alert_retry_max_seconds=600,
    )
    add_budget(db, {"id": "acme-monthly", "tenant": "acme", "amount": "100", "thresholds": [0.8]})
    api.post_usage([usage("a", "85")])
    delays: dict[str, list[float]] = {"alertmanager": [], "webhook": []}
    attempts: dict[str, int] = {}
    at = T0
    for _ in range(20):
        cycle(api, at)
        deliveries = {d["receiver"].split(":")[0]: d for d in alerts(api)[0]["deliveries"]}
        for kind, delivery in deliveries.items():
            if attempts.get(kind) != delivery["attempts"]:
                attempts[kind] = delivery["attempts"]
                delays[kind].append((datetime.fromisoformat(delivery["next_attempt_at"]) - at).total_seconds())
        at = min(datetime.fromisoformat(d["next_attempt_at"]) for d in deliveries.values())
    assert len(delays["alertmanager"]) >= 8 and max(delays["alertmanager"]) <= 60
    assert len(delays["webhook"]) >= 6 and max(delays["webhook"]) > 60


def test_alertmanager_refusing_a_batch_as_invalid_dead_letters_it_at_once_and_resends_go_on(db):
    with http_receiver() as alertmanager:
        alertmanager.status = 400
        api = make_api(db, alertmanager_urls=alertmanager.url, alert_resend_interval_seconds=60)
        add_budget(db, {"id": "acme-monthly", "tenant": "acme", "amount": "100", "thresholds": [0.8]})
        api.post_usage([usage("a", "85")])
        cycle(api, T0)
        [dead] = alerts(api)[0]["deliveries"]
        assert dead["status"] == "dead" and dead["attempts"] == 1 and "HTTP 400" in dead["last_error"]
        alertmanager.status = 200
        cycle(api, T0 + timedelta(seconds=61))
        [resent] = posted_alerts(alertmanager)
        assert resent["labels"]["alertname"] == "CostBudgetApproaching"
        assert resent["endsAt"] == "2026-12-04T12:05:01Z"


def test_resolve_and_refire_during_an_outage_reach_alertmanager_as_two_episodes(db):
    port = free_port()
    api = make_api(db, alertmanager_urls=f"http://127.0.0.1:{port}", alert_resend_interval_seconds=3600, **RETRY)
    add_budget(db, {"id": "acme-monthly", "tenant": "acme", "amount": "100", "thresholds": [0.5]})
    api.post_usage([usage("a", "105")])
    cycle(api, T0)  # Exceeded fires
    api.post_usage([usage("credit", "-30", kind="adjustment")])
    cycle(api, T0 + timedelta(minutes=1))
    cycle(api, T0 + timedelta(minutes=2))  # ... resolves
    api.post_usage([usage("b", "40")])
    cycle(api, T0 + timedelta(minutes=3))
    cycle(api, T0 + timedelta(minutes=4))  # ... and fires again
    with http_receiver(port) as alertmanager:
        cycle(api, T0 + timedelta(minutes=10))
    exceeded = [
        (a["startsAt"], a["endsAt"])
        for a in posted_alerts(alertmanager)
        if a["labels"]["alertname"] == "CostBudgetExceeded"
    ]
    assert exceeded == [
        ("2026-12-04T12:00:00Z", "2026-12-04T12:02:00Z"),  # the first episode, resolved when it was
        ("2026-12-04T12:04:00Z", "2026-12-04T16:10:00Z"),  # the second, firing: 4 x 3600 s ahead of now
    ]


def test_a_backdated_evaluation_queues_notifications_at_the_wall_clock(db):
    with http_receiver() as webhook:
        webhook.status = 503
        api = make_api(db, webhook_urls=f"{webhook.url}/hook", alert_dead_letter_after_seconds=60, **RETRY)
        add_budget(db, {"id": "acme-monthly", "tenant": "acme", "amount": "100", "thresholds": [0.8]})
        api.post_usage([usage("a", "85", timestamp="2026-11-10T10:00:00Z")])
        wall = datetime(2026, 12, 20, 12, tzinfo=UTC)
        # Evaluated as of November, delivered (and failing) in December: the notification is
        # seconds old, not weeks, so it is retried rather than dead-lettered at its first failure.
        run_evaluation_cycle(api.db.factory, api.settings, at=datetime(2026, 11, 15, tzinfo=UTC), clock=lambda: wall)
        [approaching] = alerts(api)
        [delivery] = approaching["deliveries"]
        assert delivery["status"] == "pending" and delivery["attempts"] == 1
        assert delivery["created_at"].startswith("2026-12-20T12:00:00")
