from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from costguard.budgets.periods import period_containing, previous_period

BERLIN = ZoneInfo("Europe/Berlin")
LA = ZoneInfo("America/Los_Angeles")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_monthly_period_in_berlin_starts_at_local_midnight():
    period = period_containing("monthly", BERLIN, utc(2026, 12, 4, 10))
    assert period.label == "2026-12"
    assert period.start == utc(2026, 11, 30, 23)
    assert period.end == utc(2026, 12, 31, 23)


def test_last_second_of_month_belongs_to_it_and_next_second_does_not():
    last = datetime(2026, 11, 30, 23, 59, 59, tzinfo=BERLIN)
    first = datetime(2026, 12, 1, 0, 0, 0, tzinfo=BERLIN)
    assert period_containing("monthly", BERLIN, last).label == "2026-11"
    assert period_containing("monthly", BERLIN, first).label == "2026-12"


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        (BERLIN, datetime(2026, 3, 29, 12), 23),  # spring forward
        (BERLIN, datetime(2026, 10, 25, 12), 25),  # fall back
        (LA, datetime(2026, 3, 8, 12), 23),
        (LA, datetime(2026, 11, 1, 12), 25),
    ],
)
def test_a_day_is_the_calendar_day_across_dst(zone, day, hours):
    period = period_containing("daily", zone, day.replace(tzinfo=zone))
    assert period.length_seconds == hours * 3600
    assert period.start.astimezone(zone).hour == 0
    assert period.end.astimezone(zone).hour == 0


def test_weekly_periods_are_iso_weeks_starting_monday():
    period = period_containing("weekly", BERLIN, utc(2026, 12, 4, 12))  # a Friday
    assert period.label == "2026-W49"
    assert period.start.astimezone(BERLIN).weekday() == 0
    assert period.start == utc(2026, 11, 29, 23)


def test_week_spanning_dst_change_is_seven_calendar_days():
    period = period_containing("weekly", LA, datetime(2026, 11, 1, 12, tzinfo=LA))
    assert period.length_seconds == (7 * 24 + 1) * 3600


@pytest.mark.parametrize(
    ("at", "label", "start", "end"),
    [
        (utc(2026, 12, 31, 22, 59, 59), "2026-Q4", utc(2026, 9, 30, 22), utc(2026, 12, 31, 23)),
        (utc(2026, 12, 31, 23, 0, 0), "2027-Q1", utc(2026, 12, 31, 23), utc(2027, 3, 31, 22)),
        (utc(2026, 3, 31, 21, 59, 59), "2026-Q1", utc(2025, 12, 31, 23), utc(2026, 3, 31, 22)),
    ],
)
def test_quarter_ends_in_berlin(at, label, start, end):
    period = period_containing("quarterly", BERLIN, at)
    assert (period.label, period.start, period.end) == (label, start, end)


def test_year_end_in_los_angeles():
    period = period_containing("yearly", LA, utc(2027, 1, 1, 7, 59, 59))
    assert period.label == "2026"
    assert period.end == utc(2027, 1, 1, 8)
    assert period_containing("yearly", LA, utc(2027, 1, 1, 8)).label == "2027"


def test_half_hour_timezone_periods_start_on_quarter_hours():
    kolkata = ZoneInfo("Asia/Kolkata")
    period = period_containing("monthly", kolkata, utc(2026, 12, 4))
    assert period.start == datetime(2026, 11, 30, 18, 30, tzinfo=UTC)


def test_previous_period_is_adjacent():
    current = period_containing("monthly", BERLIN, utc(2026, 3, 15))
    before = previous_period(current, BERLIN)
    assert before.end == current.start
    assert before.label == "2026-02"


def test_naive_instant_is_refused():
    with pytest.raises(ValueError):
        period_containing("monthly", BERLIN, datetime(2026, 1, 1))
