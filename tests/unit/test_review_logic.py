from datetime import UTC, datetime

from costguard.review.logic import CONFIRMED, FALSE_POSITIVE, OPEN, PastAlert, classify, review

NOW = datetime(2026, 12, 4, tzinfo=UTC)
OPEN_END = datetime(2027, 1, 1, tzinfo=UTC)
ENDED = datetime(2026, 12, 1, tzinfo=UTC)


def alert(name: str, *, utilization: float, threshold: float = 1.0, period_end: datetime = OPEN_END) -> PastAlert:
    return PastAlert("f", name, "b", "t", "2026-12", threshold, period_end, utilization)


def test_a_forecast_is_open_until_the_period_ends_and_false_if_the_budget_held():
    assert classify(alert("CostBudgetForecastExceeded", utilization=0.7), now=NOW) == OPEN
    assert classify(alert("CostBudgetForecastExceeded", utilization=0.7, period_end=ENDED), now=NOW) == FALSE_POSITIVE
    assert classify(alert("CostBudgetBurnRateHigh", utilization=1.2), now=NOW) == CONFIRMED


def test_a_threshold_alert_is_false_only_if_the_spend_it_saw_was_taken_back():
    assert classify(alert("CostBudgetApproaching", utilization=0.85, threshold=0.8), now=NOW) == CONFIRMED
    assert classify(alert("CostBudgetApproaching", utilization=0.6, threshold=0.8), now=NOW) == FALSE_POSITIVE


def test_rate_counts_decided_alerts_only():
    result = review(
        [alert("CostBudgetExceeded", utilization=1.1)] * 49
        + [alert("CostBudgetExceeded", utilization=0.9)]
        + [alert("CostBudgetForecastExceeded", utilization=0.5)] * 10,
        now=NOW,
    )
    assert result.decided == 50
    assert result.false_positive_rate == 0.02
    assert not result.meets_target
