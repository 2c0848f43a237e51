"""The budget page's chart: cumulative spend across the period as inline SVG, drawn on the server.

Pure: it takes plain numbers and instants and returns markup, so it is tested without a database
and needs no JavaScript in the browser. Floats appear only here, as pixel coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from html import escape
from zoneinfo import ZoneInfo

from markupsafe import Markup

WIDTH, HEIGHT = 720, 280
LEFT, RIGHT, TOP, BOTTOM = 40, 150, 16, 34
LABEL_GAP = 13  # px between stacked line labels, so close thresholds stay readable
# The y axis shows up to this multiple of the budget (or of the spend so far): a runaway forecast
# is drawn leaving the top of the chart with its value written, instead of flattening everything else.
FORECAST_HEADROOM = Decimal(2)
MAX_POINTS = 240
BUCKET = timedelta(minutes=15)
UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class ChartInput:
    start: datetime
    end: datetime
    now: datetime
    buckets: Sequence[tuple[datetime, Decimal]]  # spend per bucket start, oldest first
    amount: Decimal
    thresholds: Sequence[float]
    forecast_spend: Decimal | None
    currency: str
    zone: ZoneInfo = UTC_ZONE  # the budget's timezone: axis dates are its calendar


def cumulative(buckets: Sequence[tuple[datetime, Decimal]], start: datetime) -> list[tuple[datetime, Decimal]]:
    """(instant, spend so far) after each bucket closes, beginning at zero at the period start."""
    points = [(start, Decimal(0))]
    total = Decimal(0)
    for bucket_start, cost in buckets:
        total += cost
        points.append((bucket_start + BUCKET, total))
    return points


def _thin(points: list[tuple[datetime, Decimal]]) -> list[tuple[datetime, Decimal]]:
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / MAX_POINTS
    kept = [points[int(i * step)] for i in range(MAX_POINTS)]
    return [*kept, points[-1]]


def _when(at: datetime, zone: ZoneInfo) -> str:
    return escape(f"{at.astimezone(zone):%Y-%m-%d %H:%M} {zone.key}")


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def spend_chart(data: ChartInput) -> Markup:
    points = cumulative(data.buckets, data.start)
    spent = points[-1][1]
    known = max(data.amount, spent)
    top = max(known, min(data.forecast_spend or Decimal(0), known * FORECAST_HEADROOM)) * Decimal("1.1")
    span = (data.end - data.start).total_seconds()
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at: datetime) -> float:
        fraction = (min(max(at, data.start), data.end) - data.start).total_seconds() / span
        return round(LEFT + fraction * plot_w, 1)

    def y(value: Decimal) -> float:
        return round(TOP + plot_h - float(value / top) * plot_h, 1)

    now_x = x(data.now)
    line = " ".join(f"{x(at)},{y(v)}" for at, v in _thin(points))
    line += f" {now_x},{y(spent)}"
    parts = [f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}"/>']
    labels: list[tuple[float, str, str]] = [(y(data.amount), "budget-label", f"budget {_money(data.amount)}")]
    parts.append(_hline("budget", y(data.amount), plot_w))
    for threshold in data.thresholds:
        level = data.amount * Decimal(str(threshold))
        parts.append(_hline("threshold", y(level), plot_w))
        labels.append((y(level), "threshold-label", f"{threshold:.0%} {_money(level)}"))
    parts.append(f'<line class="now" x1="{now_x}" y1="{TOP}" x2="{now_x}" y2="{TOP + plot_h}"/>')
    parts.append(f'<polyline class="spend" points="{line}"/>')
    if data.forecast_spend is not None and data.now < data.end:
        end_x, end_y = x(data.end), y(data.forecast_spend)
        if end_y < TOP:  # leaves the chart: stop the line at the top edge
            rise = y(spent) - end_y
            end_x = round(now_x + (end_x - now_x) * (y(spent) - TOP) / rise, 1) if rise else end_x
            end_y = TOP
        parts.append(f'<line class="forecast" x1="{now_x}" y1="{y(spent)}" x2="{end_x}" y2="{end_y}"/>')
        labels.append((end_y, "forecast-label", f"forecast {_money(data.forecast_spend)}"))
    parts.extend(_labels(labels))
    baseline = TOP + plot_h
    parts.append(
        f'<text class="axis" x="{LEFT - 6}" y="{baseline}" text-anchor="end">0</text>'
        f'<text class="axis" x="{LEFT}" y="{baseline + 20}">{_when(data.start, data.zone)}</text>'
        f'<text class="axis" x="{LEFT + plot_w}" y="{baseline + 20}" text-anchor="end">'
        f"{_when(data.end, data.zone)}</text>"
        f'<text class="axis" x="{now_x}" y="{TOP - 2}" text-anchor="middle">now</text>'
    )
    description = (
        f"Cumulative spend {_money(spent)} {data.currency} of a {_money(data.amount)} {data.currency} budget"
        + (f"; forecast {_money(data.forecast_spend)} by the period end" if data.forecast_spend is not None else "")
    )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title chart-desc"'
        f' xmlns="http://www.w3.org/2000/svg"><title id="chart-title">Spend across the period</title>'
        f'<desc id="chart-desc">{escape(description)}</desc>{"".join(parts)}</svg>'
    )


def _hline(css: str, at_y: float, plot_w: int) -> str:
    return f'<line class="{css}" x1="{LEFT}" y1="{at_y}" x2="{LEFT + plot_w}" y2="{at_y}"/>'


def _labels(labels: list[tuple[float, str, str]]) -> list[str]:
    """Right-margin labels, top to bottom, pushed apart so none overlaps its neighbour."""
    placed: list[str] = []
    last = float("-inf")
    for at_y, css, text in sorted(labels):
        at_y = max(at_y + 4, last + LABEL_GAP)
        last = at_y
        placed.append(f'<text class="label {css}" x="{WIDTH - RIGHT + 6}" y="{round(at_y, 1)}">{escape(text)}</text>')
    return placed


def utilization_bar(utilization: float | None, forecast: float | None, state: str | None) -> Markup:
    """A 0-100 % bar with a forecast tick; colour follows the state, which is also written as text."""
    used = 0.0 if utilization is None else min(max(utilization, 0.0), 1.0) * 100
    marker = ""
    if forecast is not None:
        at = round(min(max(forecast, 0.0), 1.0) * 100, 1)
        marker = f'<line class="forecast-tick" x1="{at}" y1="0" x2="{at}" y2="12"/>'
    return Markup(
        f'<svg class="bar" viewBox="0 0 100 12" preserveAspectRatio="none" aria-hidden="true">'
        f'<rect class="track" x="0" y="2" width="100" height="8"/>'
        f'<rect class="fill {escape(state or "pending")}" x="0" y="2" width="{round(used, 1)}" height="8"/>'
        f"{marker}</svg>"
    )
