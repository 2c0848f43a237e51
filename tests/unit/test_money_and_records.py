from decimal import Decimal

import pytest

from costguard.money import MoneyError, money_text, parse_money
from costguard.usage.schemas import RecordError, parse_usage


def record(**overrides):
    base = {"event_id": "e1", "timestamp": "2026-12-04T10:15:00Z", "tenant": "acme", "cost": "0.0123"}
    base.update(overrides)
    return base


def test_tiny_costs_are_kept_exactly():
    assert parse_money("0.00000125") == Decimal("0.00000125")
    assert parse_money(Decimal("0.000000000001")) == Decimal("1E-12")
    assert money_text(parse_money("0.00000125")) == "0.00000125"


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "0.0000000000001", "1e30", "", "abc", 0.1, True])
def test_inexact_or_out_of_range_money_is_refused(bad):
    with pytest.raises(MoneyError):
        parse_money(bad)


def test_trailing_zeros_beyond_twelve_places_are_still_exact():
    assert parse_money("1.00000000000000") == Decimal(1)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"timestamp": "2026-12-04T10:15:00"}, "timestamp"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"cost": "-1"}, "cost"),
        ({"cost": None}, "cost"),
        ({"tenant": ""}, "tenant"),
        ({"tenant": "*"}, "tenant"),
        ({"currency": "EUR"}, "currency"),
        ({"kind": "refund"}, "kind"),
        ({"attributes": [1]}, "attributes"),
        ({"pipeline": ""}, "pipeline"),
        ({"extra": 1}, "extra"),
        ({"event_id": "x" * 300}, "event_id"),
    ],
)
def test_each_bad_field_is_named(overrides, field):
    with pytest.raises(RecordError) as caught:
        parse_usage(record(**overrides), currency="USD")
    assert caught.value.field == field


def test_adjustments_may_be_negative():
    parsed = parse_usage(record(kind="adjustment", cost="-5.00"), currency="USD")
    assert parsed.cost == Decimal("-5.00")


def test_same_content_same_hash_and_different_cost_differs():
    a = parse_usage(record(cost="0.0100"), currency="USD")
    b = parse_usage(record(cost=Decimal("0.01")), currency="USD")
    c = parse_usage(record(cost="0.02"), currency="USD")
    assert a.content_hash == b.content_hash
    assert a.content_hash != c.content_hash


def test_offsets_are_normalised_to_utc():
    parsed = parse_usage(record(timestamp="2026-12-04T11:15:00+01:00"), currency="USD")
    assert parsed.timestamp.isoformat() == "2026-12-04T10:15:00+00:00"


def test_the_largest_costs_stay_exact_in_text_and_in_sums():
    largest = parse_money("999999999999999999.999999999999")
    assert money_text(largest) == "999999999999999999.999999999999"
    assert money_text(largest + largest) == "1999999999999999999.999999999998"
    assert money_text(parse_money("1E+5")) == "100000"
    assert money_text(parse_money("0.50")) == "0.5"


def test_sums_in_other_threads_are_exact_too():
    import threading

    found = []
    big = parse_money("123456789012345678.123456789012")
    worker = threading.Thread(target=lambda: found.append(money_text(big + big)))
    worker.start()
    worker.join()
    assert found == ["246913578024691356.246913578024"]
