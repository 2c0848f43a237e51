"""Calendar periods in a timezone: one pure function decides every period boundary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

PERIOD_KINDS = ("daily", "weekly", "monthly", "quarterly", "yearly")


@dataclass(frozen=True, slots=True)
class Period:
    """``[start, end)`` as UTC instants, and its human label ("2026-12", "2026-W49", "2026-Q4" ...)."""

    kind: str
    label: str
    start: datetime
    end: datetime

    @property
    def length_seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def elapsed_fraction(self, at: datetime) -> float:
        """How much of the period lies before ``at``, clamped to [0, 1]."""
        elapsed = (min(max(at, self.start), self.end) - self.start).total_seconds()
        return elapsed / self.length_seconds


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    # Midnight may not exist (a DST jump at 00:00); zoneinfo then resolves it with the earlier
    # offset, which is still a deterministic instant, and the same one for both neighbours.
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _first_day(kind: str, local: date) -> date:
    if kind == "daily":
        return local
    if kind == "weekly":
        return local - timedelta(days=local.weekday())
    if kind == "monthly":
        return local.replace(day=1)
    if kind == "quarterly":
        return date(local.year, 3 * ((local.month - 1) // 3) + 1, 1)
    if kind == "yearly":
        return date(local.year, 1, 1)
    raise ValueError(f"unknown period {kind!r}; use one of {', '.join(PERIOD_KINDS)}")


def _next_first_day(kind: str, first: date) -> date:
    if kind == "daily":
        return first + timedelta(days=1)
    if kind == "weekly":
        return first + timedelta(days=7)
    months = {"monthly": 1, "quarterly": 3, "yearly": 12}[kind]
    month_index = first.year * 12 + (first.month - 1) + months
    return date(month_index // 12, month_index % 12 + 1, 1)


def _label(kind: str, first: date) -> str:
    if kind == "daily":
        return first.isoformat()
    if kind == "weekly":
        iso_year, iso_week, _ = first.isocalendar()
        return f"{iso_year}-W{iso_week:02d}"
    if kind == "monthly":
        return f"{first.year}-{first.month:02d}"
    if kind == "quarterly":
        return f"{first.year}-Q{(first.month - 1) // 3 + 1}"
    return str(first.year)


def period_containing(kind: str, zone: ZoneInfo, at: datetime) -> Period:
    """The calendar period of ``kind`` in ``zone`` that contains the instant ``at``."""
    if at.tzinfo is None:
        raise ValueError("period_containing needs a timezone-aware instant")
    first = _first_day(kind, at.astimezone(zone).date())
    following = _next_first_day(kind, first)
    return Period(kind, _label(kind, first), _local_midnight(first, zone), _local_midnight(following, zone))


def previous_period(period: Period, zone: ZoneInfo) -> Period:
    return period_containing(period.kind, zone, period.start - timedelta(microseconds=1))
