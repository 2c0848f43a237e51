"""The scheduled job and ``costguard evaluate --at`` share this one code path."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import sqlalchemy.exc
from sqlalchemy.orm import Session, sessionmaker

from costguard.alerts import repository as alerts_repo
from costguard.alerts.delivery import DeliveryReport, deliver
from costguard.config import Settings
from costguard.db import transaction, utcnow
from costguard.evaluation.guard import exclusive
from costguard.evaluation.models import EvaluationState
from costguard.evaluation.service import CycleReport, run_cycle
from costguard.usage.repository import summarize_batch_index

log = logging.getLogger(__name__)
CYCLE = "evaluation"
DELIVERY = "delivery"


@dataclass(slots=True)
class CycleOutcome:
    """None fields mean another replica held the guard and this one stood aside."""

    evaluation: CycleReport | None
    delivery: DeliveryReport | None


def run_evaluation_cycle(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    at: datetime | None = None,
    clock: Callable[[], datetime] = utcnow,
    client: httpx.Client | None = None,
) -> CycleOutcome:
    """Aggregate, evaluate and queue alerts as of ``at`` (default: now), then deliver what is due."""
    lease = timedelta(seconds=max(settings.evaluation_interval_seconds * 5, 300))
    started = time.perf_counter()
    evaluation: CycleReport | None = None
    with exclusive(factory, CYCLE, lease=lease) as session:
        if session is not None:
            last_queued = alerts_repo.last_notification_id(session)
            evaluation = run_cycle(session, settings=settings, now=at or clock())
            if at is not None:
                # Evaluated "as of" another instant, but queued now: retries and the dead-letter
                # age count from the wall clock, not from a backdated instant.
                alerts_repo.stamp_queued_after(session, last_queued, queued_at=clock())
            _record(session, evaluation, duration=time.perf_counter() - started, finished=clock())
    if evaluation is not None:
        log.info(
            "evaluation.cycle_done",
            extra={
                "budgets": evaluation.budgets_evaluated,
                "failed": len(evaluation.failures),
                "fired": evaluation.fired,
                "resolved": evaluation.resolved,
            },
        )
        if evaluation.folded_batches:
            _summarize_batch_index(factory)
    delivery = deliver_due(factory, settings, clock=clock, client=client)
    return CycleOutcome(evaluation, delivery)


def deliver_due(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    client: httpx.Client | None = None,
) -> DeliveryReport | None:
    lease = timedelta(seconds=max(settings.notification_timeout_seconds * 20, 300))
    own_client = client is None
    http = client or httpx.Client(timeout=settings.notification_timeout_seconds)
    try:
        with exclusive(factory, DELIVERY, lease=lease) as session:
            if session is None:
                return None
            # Deliveries use the wall clock even when evaluating "as of" another instant.
            return deliver(session, settings=settings, now=clock(), client=http)
    finally:
        if own_client:
            http.close()


_SKIPPED_SUMMARIES: set[str] = set()  # the reasons already logged at warning level


def _summarize_batch_index(factory: sessionmaker[Session]) -> None:
    """Best effort, after the cycle's commit: a vacuum running, or a role that does not own the table, skips it."""
    try:
        with transaction(factory) as session:
            summarize_batch_index(session)
    except sqlalchemy.exc.DBAPIError as exc:
        # A role that does not own usage_records fails every cycle: say so once, not every minute.
        reason = type(exc.orig).__name__
        level = logging.DEBUG if reason in _SKIPPED_SUMMARIES else logging.WARNING
        _SKIPPED_SUMMARIES.add(reason)
        log.log(level, "usage.batch_index_not_summarized", extra={"reason": str(exc.orig).strip()})


def _record(session: Session, report: CycleReport, *, duration: float, finished: datetime) -> None:
    state = session.get(EvaluationState, CYCLE)
    if state is None:
        state = EvaluationState(name=CYCLE)
        session.add(state)
    state.last_finished_at = finished
    state.last_evaluated_for = report.at
    state.last_duration_seconds = duration
    state.budgets_evaluated = report.budgets_evaluated
    state.budgets_failed = len(report.failures)
    state.last_error = "; ".join(f"{b}: {e}" for b, e in sorted(report.failures.items()))[:2000] or None
