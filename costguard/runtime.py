"""Wiring for the processes: engine and sessions from settings, with the schema checked first."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from costguard.config import Settings
from costguard.db import make_engine, make_session_factory
from costguard.schema import ensure_current, upgrade_to_head


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]


def open_runtime(settings: Settings, *, application_name: str, check_schema: bool = True) -> Runtime:
    """Connect; the embedded SQLite default migrates itself, any other database must already be current."""
    if check_schema and settings.is_embedded_sqlite:
        upgrade_to_head(settings.database_url)
    engine = make_engine(settings.database_url, application_name=application_name)
    if check_schema:
        ensure_current(engine, settings.database_url)
    return Runtime(settings, engine, make_session_factory(engine))
