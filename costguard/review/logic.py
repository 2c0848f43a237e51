"""Classify past alerts as confirmed, false or still open. Pure: the caller supplies spend and the clock.

- Approaching / Exceeded state a measured fact; they were false only if the spend they fired on did not
  hold (credits, corrections or deleted duplicates brought the period's spend back under the threshold).
- Forecast / BurnRate predict; they were false if the period ended without the budget being exceeded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

PREDICTIVE = frozenset({"CostBudgetForecastExceeded", "CostBudgetBurnRateHigh"})
CONFIRMED = "confirmed"
FALSE_POSITIVE = "false_positive"
OPEN = "open"
TARGET_FALSE_POSITIVE_RATE = 0.02


@dataclass(frozen=True, slots=True)
class PastAlert:
    fingerprint: str
    alertname: str
    budget: str
    tenant: str
    period: str
    threshold: float  # utilization the alert asserted (1.0 for exceeded and predictive alerts)
    period_end: datetime
    utilization_now: float  # spend over the alert's period today, divided by the amount


def classify(alert: PastAlert, *, now: datetime) -> str:
    if alert.alertname in PREDICTIVE:
        if alert.utilization_now >= 1:
            return CONFIRMED
        return FALSE_POSITIVE if alert.period_end <= now else OPEN
    return CONFIRMED if alert.utilization_now >= alert.threshold else FALSE_POSITIVE


@dataclass(slots=True)
class Review:
    by_alertname: dict[str, Counter[str]] = field(default_factory=dict)
    false_positives: list[PastAlert] = field(default_factory=list)

    @property
    def decided(self) -> int:
        return sum(c[CONFIRMED] + c[FALSE_POSITIVE] for c in self.by_alertname.values())

    @property
    def false_positive_rate(self) -> float:
        return len(self.false_positives) / self.decided if self.decided else 0.0

    @property
    def meets_target(self) -> bool:
        return self.false_positive_rate < TARGET_FALSE_POSITIVE_RATE


def review(alerts: list[PastAlert], *, now: datetime) -> Review:
    result = Review()
    for alert in alerts:
        verdict = classify(alert, now=now)
        result.by_alertname.setdefault(alert.alertname, Counter())[verdict] += 1
        if verdict == FALSE_POSITIVE:
            result.false_positives.append(alert)
    return result
