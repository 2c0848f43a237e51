"""Drain the notification outbox: at-least-once, in order per receiver, with backoff and a dead-letter.

Firing alerts are also re-sent to Alertmanager every resend interval, as Prometheus does, with
``endsAt`` far enough ahead that a pause of costguard never looks like a resolve.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session

from costguard.alerts import repository
from costguard.alerts.logic import FIRING
from costguard.alerts.models import AlertNotification, AlertRow
from costguard.alerts.payloads import alertmanager_alert, webhook_message
from costguard.alerts.senders import DeliveryError, post_to_alertmanager, post_webhook
from costguard.config import Settings

log = logging.getLogger(__name__)
BATCH = 200


@dataclass(slots=True)
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    resent: int = 0
    errors: dict[str, str] = field(default_factory=dict)


def backoff(attempts: int, rng: random.Random, *, initial: float = 5.0, cap: float = 600.0) -> timedelta:
    """Exponential backoff with jitter between half and all of the step, so receivers are not hit in lockstep."""
    step = min(initial * 2 ** min(max(attempts - 1, 0), 32), cap)
    return timedelta(seconds=step * (0.5 + rng.random() / 2))


def retry_cap(receiver: str, settings: Settings) -> float:
    """Longest retry delay for a receiver.

    An Alertmanager is retried at least every resend interval: while its queue is not empty the
    firing alerts are not refreshed, and a longer wait would let them expire there once it is back.
    """
    if receiver.startswith("alertmanager:"):
        return min(settings.alert_retry_max_seconds, settings.alert_resend_interval_seconds)
    return settings.alert_retry_max_seconds


def firing_ends_at(now: datetime, settings: Settings) -> datetime:
    """Prometheus's rule: 4 x the larger of the resend and evaluation intervals."""
    interval = max(settings.alert_resend_interval_seconds, settings.evaluation_interval_seconds)
    return now + timedelta(seconds=4 * interval)


def _alertmanager_body(
    alert: AlertRow, event: str, *, now: datetime, settings: Settings, stored: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The alert as Alertmanager must see it for this transition.

    A firing alert gets a fresh ``endsAt`` ahead of now (never past its period's end). A resolution is
    sent as it happened (its stored payload), so a resolve that the alert has since re-fired from still
    reaches Alertmanager with the resolve time as ``endsAt``, ahead of the new firing episode.
    """
    if event != FIRING and stored is not None and stored.get("endsAt"):
        return alertmanager_alert(
            labels=stored["labels"],
            annotations=stored["annotations"],
            generator_url=stored.get("generatorURL", alert.generator_url),
            starts_at=datetime.fromisoformat(stored["startsAt"]),
            ends_at=datetime.fromisoformat(stored["endsAt"]),
        )
    if event == FIRING and alert.status == FIRING:
        ends_at = min(firing_ends_at(now, settings), alert.period_end) if alert.period_end > now else alert.period_end
    else:
        ends_at = alert.ends_at or now
    return alertmanager_alert(
        labels=alert.labels,
        annotations=alert.annotations,
        generator_url=alert.generator_url,
        starts_at=alert.starts_at,
        ends_at=ends_at,
    )


def _superseded(alert: AlertRow, row: AlertNotification) -> bool:
    """A firing notification of an earlier episode: the alert has resolved and fired again since.

    Its resolution follows in the queue; sending the alert's current (newer) episode in its place
    would put the two episodes out of order in Alertmanager.
    """
    return row.event == FIRING and alert.starts_at > row.created_at


def _send(
    client: httpx.Client,
    receiver: str,
    rows: list[AlertNotification],
    session: Session,
    *,
    now: datetime,
    settings: Settings,
) -> None:
    kind, _, url = receiver.partition(":")
    if kind == "alertmanager":
        alerts = [session.get(AlertRow, row.alert_id) for row in rows]
        post_to_alertmanager(
            client,
            url,
            [
                _alertmanager_body(a, r.event, now=now, settings=settings, stored=r.payload)
                for a, r in zip(alerts, rows, strict=True)
                if a and not _superseded(a, r)
            ],
        )
    else:
        for row in rows:
            assert row.payload is not None
            post_webhook(
                client,
                url,
                webhook_message(alerts=[row.payload], external_url=settings.external_url),
                secret=settings.webhook_secret,
            )
            # Commit-by-commit progress is kept: a webhook receiver must not see this one again.
            repository.mark_delivered(session, [row], now=now)
            session.flush()


def deliver(
    session: Session, *, settings: Settings, now: datetime, client: httpx.Client, rng: random.Random | None = None
) -> DeliveryReport:
    """Send what is due, in the caller's transaction (guarded so one replica delivers at a time)."""
    rng = rng or random.Random()
    report = DeliveryReport()
    for receiver in repository.pending_receivers(session):
        rows = repository.next_batch(session, receiver, now=now, limit=BATCH)
        if not rows:
            continue
        state = repository.receiver_state(session, receiver)
        try:
            _send(client, receiver, rows, session, now=now, settings=settings)
        except DeliveryError as exc:
            _failed(session, receiver, rows, state, exc, now=now, settings=settings, rng=rng, report=report)
            continue
        undelivered = [row for row in rows if row.status == repository.PENDING]
        repository.mark_delivered(session, undelivered, now=now)
        state.last_success_at, state.consecutive_failures = now, 0
        state.notifications_total = (state.notifications_total or 0) + len(rows)
        if receiver.startswith("alertmanager:"):
            state.last_resend_at = now
        report.delivered += len(rows)
    report.resent += _resend_firing(session, settings=settings, now=now, client=client, report=report)
    session.flush()
    return report


def _failed(
    session: Session,
    receiver: str,
    rows: list[AlertNotification],
    state: Any,
    exc: DeliveryError,
    *,
    now: datetime,
    settings: Settings,
    rng: random.Random,
    report: DeliveryReport,
) -> None:
    dead_after = timedelta(seconds=settings.alert_dead_letter_after_seconds)
    cap = retry_cap(receiver, settings)
    pending = [row for row in rows if row.status == repository.PENDING]
    for row in pending:
        row.attempts += 1
        row.last_error = str(exc)[:500]
        if exc.permanent or now - row.created_at >= dead_after:
            row.status = repository.DEAD
            report.dead += 1
        else:
            delay = backoff(row.attempts, rng, initial=settings.alert_retry_initial_seconds, cap=cap)
            row.next_attempt_at = now + delay
    delivered_before_failure = len(rows) - len(pending)
    state.notifications_total = (state.notifications_total or 0) + delivered_before_failure
    state.failures_total = (state.failures_total or 0) + 1
    state.consecutive_failures = (state.consecutive_failures or 0) + 1
    state.last_failure_at, state.last_error = now, str(exc)[:500]
    report.failed += len(pending)
    report.errors[receiver] = str(exc)
    log.warning("alerts.delivery_failed", extra={"receiver": receiver, "error": str(exc)})


def _resend_firing(
    session: Session, *, settings: Settings, now: datetime, client: httpx.Client, report: DeliveryReport
) -> int:
    """Re-send every firing alert to each Alertmanager whose last send is older than the resend interval."""
    interval = timedelta(seconds=settings.alert_resend_interval_seconds)
    due = []
    for url in settings.alertmanager_urls:
        state = repository.receiver_state(session, f"alertmanager:{url}")
        if state.last_resend_at is None or now - state.last_resend_at >= interval:
            due.append((url, state))
    if not due:
        return 0  # the common cycle: nothing to refresh, so the firing alerts are not even loaded
    firing = [a for a in repository.firing(session) if a.period_end > now]
    sent = 0
    for url, state in due:
        receiver = f"alertmanager:{url}"
        if not firing:
            continue
        if repository.next_batch(session, receiver, now=now + timedelta(days=36500), limit=1):
            continue  # transitions still queued: order matters more than the refresh
        try:
            post_to_alertmanager(
                client, url, [_alertmanager_body(a, FIRING, now=now, settings=settings) for a in firing]
            )
        except DeliveryError as exc:
            state.failures_total = (state.failures_total or 0) + 1
            state.consecutive_failures = (state.consecutive_failures or 0) + 1
            state.last_failure_at, state.last_error = now, str(exc)[:500]
            report.errors[receiver] = str(exc)
            continue
        state.last_resend_at, state.last_success_at, state.consecutive_failures = now, now, 0
        sent += len(firing)
    return sent
