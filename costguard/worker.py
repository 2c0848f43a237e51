"""APScheduler wiring: one in-memory job store per process; the database guard picks the runner."""

from __future__ import annotations

import logging
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.orm import Session, sessionmaker

from costguard.config import Settings
from costguard.db import utcnow
from costguard.evaluation.jobs import run_evaluation_cycle

log = logging.getLogger(__name__)
JOB_ID = "evaluation-cycle"


def _job(factory: sessionmaker[Session], settings: Settings) -> None:
    try:
        run_evaluation_cycle(factory, settings)
    except Exception:  # the scheduler must keep ticking; the next cycle redoes the work
        log.exception("evaluation.cycle_failed")


def configure(scheduler: BaseScheduler, factory: sessionmaker[Session], settings: Settings) -> BaseScheduler:
    scheduler.add_job(
        _job,
        "interval",
        seconds=settings.evaluation_interval_seconds,
        args=(factory, settings),
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
