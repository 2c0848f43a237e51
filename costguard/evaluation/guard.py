"""Single-runner guard: exactly one replica runs a given cycle at a time.

PostgreSQL: a transaction-scoped advisory lock, released by commit, rollback or a dead connection,
so a crashed replica's cycle is simply redone by the next. Elsewhere: a lease row with an expiry.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session, sessionmaker

from costguard.db import transaction, utcnow
from costguard.evaluation.models import WorkerClaim

HOLDER = f"{socket.gethostname()}:{os.getpid()}"


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(f"costguard:{name}".encode()).digest()[:8], "big", signed=True)


@contextmanager
def exclusive(factory: sessionmaker[Session], name: str, *, lease: timedelta) -> Iterator[Session | None]:
    """Yield a session in a transaction if this process won ``name``, else None (someone else runs it)."""
    with factory() as probe:  # get_bind() only looks at the engine: no connection, no transaction
        dialect = probe.get_bind().dialect.name
    if dialect == "postgresql":
        with transaction(factory) as session:
            if session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": lock_key(name)}):
                yield session
            else:
                yield None
        return
    holder = f"{HOLDER}:{id(factory)}"
    if not _claim(factory, name, holder=holder, now=utcnow(), lease=lease):
        yield None
        return
    try:
        with transaction(factory) as session:
            yield session
    finally:
        with transaction(factory) as session:
            session.execute(delete(WorkerClaim).where(WorkerClaim.name == name, WorkerClaim.holder == holder))


def _claim(factory: sessionmaker[Session], name: str, *, holder: str, now: datetime, lease: timedelta) -> bool:
    with transaction(factory) as session:
        row = session.scalar(select(WorkerClaim).where(WorkerClaim.name == name))
        if row is not None and row.expires_at > now and row.holder != holder:
            return False
        if row is None:
            session.add(WorkerClaim(name=name, holder=holder, expires_at=now + lease))
        else:
            row.holder, row.expires_at = holder, now + lease
        return True
