"""`costguard review`: alerts judged by the spend recorded since they fired."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from costguard.evaluation.jobs import run_evaluation_cycle
from tests.helpers.app import add_budget, make_api, usage


def test_review_counts_a_credited_alert_and_a_failed_forecast_as_false_positives(db, cli):

    api = make_api(db)
    add_budget(db, {"id": "acme", "tenant": "acme", "amount": "100", "thresholds": [0.8], "forecast": True})
    add_budget(db, {"id": "globex", "tenant": "globex", "amount": "100", "thresholds": [0.5]})
    # acme: an early burst makes the November forecast exceed the budget; the month then stays quiet.
    api.post_usage([usage("a1", "20", timestamp="2026-11-02T10:00:00Z")])
    run_evaluation_cycle(db.factory, api.settings, at=datetime(2026, 11, 2, 12, tzinfo=UTC))
    # globex: crosses 50%, then a credit for a double-billed batch brings it back to 30%.
    api.post_usage([usage("g1", "60", tenant="globex", timestamp="2026-11-20T10:00:00Z")])
    run_evaluation_cycle(db.factory, api.settings, at=datetime(2026, 11, 20, 12, tzinfo=UTC))
    api.post_usage([usage("g2", "-30", tenant="globex", kind="adjustment", timestamp="2026-11-21T10:00:00Z")])

    result = cli("review", "--days", "3650", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["alerts"] == {
        "CostBudgetApproaching": {"confirmed": 0, "false_positive": 1, "open": 0},
        "CostBudgetForecastExceeded": {"confirmed": 0, "false_positive": 1, "open": 0},
    }
    assert report["false_positive_rate"] == 1.0
    assert {(a["budget"], a["alertname"]) for a in report["false_positives"]} == {
        ("acme", "CostBudgetForecastExceeded"),
        ("globex", "CostBudgetApproaching"),
    }
