"""The console's server-side chart and form helpers: pure functions, no database."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from costguard.ui.chart import ChartInput, cumulative, spend_chart, utilization_bar
from costguard.ui.views import FormErrors, changes, form_document, safe_next

START = datetime(2026, 12, 1, tzinfo=UTC)
END = datetime(2027, 1, 1, tzinfo=UTC)


def chart(**overrides: object) -> str:
    values: dict[str, object] = {
        "start": START,
        "end": END,
        "now": START + timedelta(days=10),
        "buckets": [(START + timedelta(days=1), Decimal("30")), (START + timedelta(days=2), Decimal("20"))],
        "amount": Decimal("100"),
        "thresholds": (0.5, 0.8),
        "forecast_spend": Decimal("155"),
        "currency": "USD",
    }
    return str(spend_chart(ChartInput(**{**values, **overrides})))  # type: ignore[arg-type]


def test_cumulative_spend_starts_at_zero_and_adds_each_bucket_exactly():
    points = cumulative([(START, Decimal("0.1")), (START + timedelta(hours=1), Decimal("0.2"))], START)
    assert [v for _, v in points] == [Decimal(0), Decimal("0.1"), Decimal("0.3")]
    assert points[1][0] == START + timedelta(minutes=15)


def test_chart_draws_budget_thresholds_spend_and_forecast_lines():
    svg = chart()
    assert svg.count('class="threshold"') == 2
    assert svg.count('class="budget"') == 1
    assert 'class="spend"' in svg and 'class="forecast"' in svg
    assert "budget 100.00" in svg and "80% 80.00" in svg and "50% 50.00" in svg and "forecast 155.00" in svg
    assert "Cumulative spend 50.00 USD of a 100.00 USD budget" in svg


def test_a_runaway_forecast_leaves_the_top_instead_of_flattening_the_budget_line():
    svg = chart(forecast_spend=Decimal("100000"))
    budget_y = float(re.search(r'<line class="budget" x1="[\d.]+" y1="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    assert budget_y < 200  # the budget line stays well inside a 280-pixel-high chart
    assert "forecast 100,000.00" in svg


def test_chart_axis_dates_are_in_the_budgets_timezone():
    berlin = ZoneInfo("Europe/Berlin")
    svg = chart(start=datetime(2026, 11, 30, 23, tzinfo=UTC), end=datetime(2026, 12, 31, 23, tzinfo=UTC), zone=berlin)
    assert "2026-12-01 00:00 Europe/Berlin" in svg
    assert "2027-01-01 00:00 Europe/Berlin" in svg


def test_chart_escapes_nothing_it_does_not_own():
    svg = chart(currency="<b>")
    assert "<b>" not in svg


def test_utilization_bar_is_clamped_and_marks_the_forecast():
    bar = str(utilization_bar(1.7, 2.5, "exceeded"))
    assert 'class="fill exceeded" x="0" y="2" width="100.0"' in bar
    assert 'x1="100.0"' in bar


def test_form_becomes_the_apis_document():
    document, problems = form_document(
        {
            "id": "a",
            "tenant": "acme",
            "amount": "5",
            "thresholds": "0.5, 0.8",
            "labels": "team = data\n\nowner=me",
            "pipeline": "",
            "forecast": "on",
        }
    )
    assert problems == []
    assert document["thresholds"] == ["0.5", "0.8"]
    assert document["labels"] == {"team": "data", "owner": "me"}
    assert document["pipeline"] == "*"
    assert document["forecast"] is True
    assert document["timezone"] is None


def test_unreadable_label_lines_are_reported_on_the_labels_field():
    _document, problems = form_document({"labels": "team=data\nbroken"})
    errors = FormErrors()
    for problem in problems:
        errors.add(problem)
    assert errors.by_field == {"labels": ["line 2 has no '='; write one name=value per line"]}


def test_validation_sentences_land_on_their_field():
    errors = FormErrors()
    errors.add("thresholds.1: 1.5 is not between 0 and 1 (exclusive); exceeded (1.0) is always on")
    errors.add("nonsense: is not a budget field; remove it")
    assert list(errors.by_field) == ["thresholds", "budget"]


def test_changes_list_only_changed_fields_with_before_and_after():
    before = {"id": "a", "amount": "100", "thresholds": [0.8], "labels": {}}
    after = {"id": "a", "amount": "150", "thresholds": [0.8], "labels": {"team": "x"}}
    assert changes(before, after) == [("amount", "100", "150"), ("labels", "—", "team=x")]
    assert ("amount", "", "100") in changes(None, before)


def test_sign_in_redirects_only_to_local_paths():
    assert safe_next("/budgets/a?x=1") == "/budgets/a?x=1"
    for hostile in ("https://evil.example/", "//evil.example/", "/\\evil", None, ""):
        assert safe_next(hostile) == "/"
