"""The rules, as pure functions over plain data: spend -> utilization, forecast, burn rate, state, alerts.

Nothing here reads the clock, the settings or the database: the caller passes them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from costguard.budgets.periods import Period

SHORT_WINDOW = timedelta(hours=1)
LONG_WINDOW = timedelta(hours=6)
# Weight of the recent (long-window) pace in the forecast: enough for a spike to show within
# hours, not so much that one quiet hour hides a month's trend.
RECENT_PACE_WEIGHT = Decimal("0.5")
# Burn-rate alert: both windows' pace would use up what is left of the budget in less than this
# share of the time left in the period.
BURN_EXHAUSTION_SHARE = 0.5

APPROACHING = "CostBudgetApproaching"
EXCEEDED = "CostBudgetExceeded"
FORECAST_EXCEEDED = "CostBudgetForecastExceeded"
BURN_RATE_HIGH = "CostBudgetBurnRateHigh"
SEVERITY = {APPROACHING: "warning", EXCEEDED: "critical", FORECAST_EXCEEDED: "warning", BURN_RATE_HIGH: "warning"}


@dataclass(frozen=True, slots=True)
class ScopeEvaluation:
    period: Period
    amount: Decimal
    spend: Decimal
    utilization: float
    forecast_spend: Decimal
    forecast_utilization: float
    burn_rate_short: float
    burn_rate_long: float
    state: str


@dataclass(frozen=True, slots=True)
class Condition:
    """One alert condition that holds now: its alertname, threshold label ("" when none) and value."""

    alertname: str
    threshold: str
    value: float

    @property
    def severity(self) -> str:
        return SEVERITY[self.alertname]


def threshold_label(threshold: float) -> str:
    return format(threshold, "g")


def _ratio(part: Decimal, whole: Decimal) -> float:
    return float(part / whole) if whole else 0.0


@dataclass(frozen=True, slots=True)
class PeriodClock:
    """The seconds a forecast and a burn rate divide by, as exact decimals (the SQL computes the same)."""

    elapsed: Decimal
    remaining: Decimal
    length: Decimal


def period_clock(period: Period, at: datetime) -> PeriodClock:
    elapsed = Decimal(str(max((min(at, period.end) - period.start).total_seconds(), 0.0)))
    remaining = Decimal(str(max((period.end - max(at, period.start)).total_seconds(), 0.0)))
    return PeriodClock(elapsed, remaining, Decimal(str(period.length_seconds)))


# The recent pace is the long window's spend over the long window's length. The window is not
# cut at the period start (a budget's windows are the last hours, whatever its period), so it is
# never divided by the few minutes a new period has run: that turned yesterday's steady pace
# into a spike at every midnight.
_LONG_WINDOW_SECONDS = Decimal(str(LONG_WINDOW.total_seconds()))


def forecast_spend(period: Period, at: datetime, spend: Decimal, long_window_spend: Decimal) -> Decimal:
    """Projected spend at the period's end: period-to-date pace blended with the last hours' pace."""
    clock = period_clock(period, at)
    elapsed, remaining = clock.elapsed, clock.remaining
    if elapsed == 0 or remaining == 0:
        return spend
    period_pace = spend / elapsed
    recent_pace = long_window_spend / _LONG_WINDOW_SECONDS
    pace = (1 - RECENT_PACE_WEIGHT) * period_pace + RECENT_PACE_WEIGHT * recent_pace
    return spend + max(pace, Decimal(0)) * remaining


def burn_rate(window_spend: Decimal, window: timedelta, amount: Decimal, period: Period) -> float:
    """Window pace as a multiple of the even pace that spends exactly ``amount`` over the period."""
    even_pace = amount / Decimal(str(period.length_seconds))
    pace = window_spend / Decimal(str(window.total_seconds()))
    return float(pace / even_pace) if even_pace else 0.0


def state_of(utilization: float, thresholds: tuple[float, ...]) -> str:
    if utilization >= 1:
        return "exceeded"
    if thresholds and utilization >= min(thresholds):
        return "approaching"
    return "ok"


def evaluate_scope(
    *,
    period: Period,
    at: datetime,
    amount: Decimal,
    thresholds: tuple[float, ...],
    spend: Decimal,
    short_window_spend: Decimal,
    long_window_spend: Decimal,
) -> ScopeEvaluation:
    forecast = forecast_spend(period, at, spend, long_window_spend)
    utilization = _ratio(spend, amount)
    return ScopeEvaluation(
        period=period,
        amount=amount,
        spend=spend,
        utilization=utilization,
        forecast_spend=forecast,
        forecast_utilization=_ratio(forecast, amount),
        burn_rate_short=burn_rate(short_window_spend, SHORT_WINDOW, amount, period),
        burn_rate_long=burn_rate(long_window_spend, LONG_WINDOW, amount, period),
        state=state_of(utilization, thresholds),
    )


def _burning_too_fast(evaluation: ScopeEvaluation, at: datetime) -> bool:
    left = evaluation.amount - evaluation.spend
    time_left = (evaluation.period.end - at).total_seconds()
    if left <= 0 or time_left <= 0:
        return False  # already exceeded (its own alert) or the period is over
    even_pace = float(evaluation.amount) / evaluation.period.length_seconds
    for rate in (evaluation.burn_rate_short, evaluation.burn_rate_long):
        pace = rate * even_pace
        if pace <= 0 or float(left) / pace >= BURN_EXHAUSTION_SHARE * time_left:
            return False
    return True


def conditions(
    evaluation: ScopeEvaluation, *, thresholds: tuple[float, ...], forecast: bool, at: datetime
) -> list[Condition]:
    """Every alert condition that holds for this scope now."""
    found = [
        Condition(APPROACHING, threshold_label(t), evaluation.utilization)
        for t in thresholds
        if evaluation.utilization >= t
    ]
    if evaluation.utilization >= 1:
        found.append(Condition(EXCEEDED, "1", evaluation.utilization))
    if forecast and evaluation.forecast_utilization >= 1:
        found.append(Condition(FORECAST_EXCEEDED, "", evaluation.forecast_utilization))
    if _burning_too_fast(evaluation, at):
        found.append(Condition(BURN_RATE_HIGH, "", evaluation.burn_rate_short))
    return found
