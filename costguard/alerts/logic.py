"""The alert state machine and alert identity, as pure functions.

Each (budget, scope, period, alertname, threshold) is one alert. It fires the first time its
condition holds, and then needs the condition to disagree for several consecutive evaluations
before it changes again, so a spend that hovers around a threshold never pages twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

FIRING = "firing"
RESOLVED = "resolved"
# Consecutive evaluations the condition must be false before a firing alert resolves, and true
# before a resolved alert of the same period fires again.
RESOLVE_AFTER = 2
REFIRE_AFTER = 2


@dataclass(frozen=True, slots=True)
class AlertKey:
    budget: str
    tenant: str
    pipeline: str
    model: str
    period: str
    alertname: str
    threshold: str

    @property
    def fingerprint(self) -> str:
        identity = "\x1f".join(
            (self.budget, self.tenant, self.pipeline, self.model, self.period, self.alertname, self.threshold)
        )
        return hashlib.sha256(identity.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Step:
    """Where an alert goes after one evaluation; ``event`` is set when receivers must be told."""

    status: str
    pending_flips: int
    event: str | None


def step(status: str | None, pending_flips: int, holds: bool) -> Step | None:
    """Advance one alert by one evaluation. ``status`` None means the alert never fired."""
    if status is None:
        return Step(FIRING, 0, FIRING) if holds else None
    if status == FIRING:
        if holds:
            return Step(FIRING, 0, None)
        flips = pending_flips + 1
        return Step(RESOLVED, 0, RESOLVED) if flips >= RESOLVE_AFTER else Step(FIRING, flips, None)
    if not holds:
        return Step(RESOLVED, 0, None)
    flips = pending_flips + 1
    return Step(FIRING, 0, FIRING) if flips >= REFIRE_AFTER else Step(RESOLVED, flips, None)


# A firing alert's stored value (and the annotations that quote it) is refreshed only when it moved
# by five percentage points or more: a cycle over thousands of steady alerts then writes nothing.
VALUE_REFRESH_STEP = 0.05


def unchanged(pending_flips: int, value: float, moved: Step, new_value: float | None) -> bool:
    """True when a step leaves a stored alert as it is, so the cycle need not write it."""
    if moved.event is not None or moved.pending_flips != pending_flips:
        return False
    return new_value is None or abs(new_value - value) < VALUE_REFRESH_STEP
