"""The alert review: which alerts of the last days held up, and the false-positive rate against the 2% target."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from costguard.budgets import repository as budgets_repo
from costguard.budgets.periods import period_containing
from costguard.config import Settings
from costguard.review import repository
from costguard.review.logic import PastAlert, Review, review
from costguard.usage import repository as usage_repo


def review_alerts(session: Session, *, settings: Settings, now: datetime, days: int) -> Review:
    """Judge every alert that started in the last ``days`` days by the spend recorded since."""
    budgets = {row.id: budgets_repo.row_to_spec(row) for row in budgets_repo.list_rows(session)}
    past: list[PastAlert] = []
    unfolded = usage_repo.unfolded_deltas(session)  # once for every alert judged below
    for alert in repository.alerts_fired_since(session, now - timedelta(days=days)):
        spec = budgets.get(alert.budget_id)
        if spec is None:
            continue  # a deleted budget has no amount to judge against
        zone = ZoneInfo(spec.timezone or settings.timezone)
        period = period_containing(spec.period, zone, alert.period_end - timedelta(microseconds=1))
        spend = repository.period_spend(
            session,
            tenant=alert.tenant,
            pipeline=alert.pipeline,
            model=alert.model,
            start=period.start,
            end=period.end,
            unfolded=unfolded,
        )
        past.append(
            PastAlert(
                fingerprint=alert.fingerprint,
                alertname=alert.alertname,
                budget=alert.budget_id,
                tenant=alert.tenant,
                period=alert.period,
                threshold=float(alert.threshold or 1),
                period_end=alert.period_end,
                utilization_now=float(spend / spec.amount),
            )
        )
    return review(past, now=now)
