"""APScheduler wiring: one in-memory job store per process; the database guard picks the runner."""

from __future__ import annotations

import logging
from datetime import timedelta

import httpx
from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.orm import Session, sessionmaker

from costguard.config import Settings
from costguard.db import utcnow
from costguard.evaluation.jobs import run_evaluation_cycle

log = logging.getLogger(__name__)
JOB_ID = "evaluation-cycle"


def _job(factory: sessionmaker[Session], settings: Settings, client: httpx.Client) -> None:
    try:
        run_evaluation_cycle(factory, settings, client=client)
    except Exception:  # the scheduler must keep ticking; the next cycle redoes the work
        log.exception("evaluation.cycle_failed")


def configure(scheduler: BaseScheduler, factory: sessionmaker[Session], settings: Settings) -> BaseScheduler:
    # One HTTP client for the scheduler's life: connections to the receivers are kept alive, and
    # a cycle does not pay for a new TLS context.
    client = httpx.Client(timeout=settings.notification_timeout_seconds)
    scheduler.add_listener(lambda _event: client.close(), EVENT_SCHEDULER_SHUTDOWN)
    scheduler.add_job(
        _job,
        "interval",
        seconds=settings.evaluation_interval_seconds,
        # Replicas started together would tick in lockstep, and the one whose clock runs a few ms
        # ahead would take the guard every time while the others always stand aside. A random
        # delay of up to a tenth of the interval, drawn anew each tick, lets any of them run.
        jitter=settings.evaluation_interval_seconds / 10,
        args=(factory, settings, client),
        id=JOB_ID,
        next_run_time=utcnow() + timedelta(seconds=1),
        max_instances=1,
        coalesce=True,
        misfire_grace_time=int(max(settings.evaluation_interval_seconds, 1)),
        replace_existing=True,
    )
    return scheduler


def background(factory: sessionmaker[Session], settings: Settings) -> BackgroundScheduler:
    """For ``serve``: the cycle runs in a thread beside the API."""
    scheduler = configure(BackgroundScheduler(timezone="UTC"), factory, settings)
    assert isinstance(scheduler, BackgroundScheduler)
    return scheduler


def blocking(factory: sessionmaker[Session], settings: Settings) -> BlockingScheduler:
    """For ``worker``: the cycle is all the process does."""
    scheduler = configure(BlockingScheduler(timezone="UTC"), factory, settings)
    assert isinstance(scheduler, BlockingScheduler)
    return scheduler
