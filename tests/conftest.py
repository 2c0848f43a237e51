"""Shared fixtures: real databases (SQLite file and PostgreSQL), built by running the migrations."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from costguard.config import Settings
from costguard.db import make_engine, make_session_factory
from costguard.models import Base
from costguard.schema import upgrade_to_head
from tests.helpers.databases import ADMIN_URL, throwaway_database

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass
class Database:
    """A migrated database and the settings that point at it."""

    kind: str
    url: str
    engine: Engine
    factory: sessionmaker[Session]

    def settings(self, **overrides: object) -> Settings:
        return Settings(database_url=self.url, **overrides)  # type: ignore[arg-type]


def _postgres_reachable() -> str | None:
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3, autocommit=True):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {ADMIN_URL} is not reachable ({exc.__class__.__name__}); set COSTGUARD_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL database for this test session (per xdist worker), dropped at the end."""
    problem = _postgres_reachable()
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(problem)
    with throwaway_database(f"costguard_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}") as url:
        upgrade_to_head(url)
        yield url


def _truncate_all(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A clean, migrated database: a fresh SQLite file, or the session's PostgreSQL emptied after the test."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'costguard.db'}"
        upgrade_to_head(url)
        engine = make_engine(url)
        try:
            yield Database("sqlite", url, engine, make_session_factory(engine))
        finally:
            engine.dispose()
        return
    url = request.getfixturevalue("postgres_server")
    engine = make_engine(url, application_name="costguard-test")
    try:
        yield Database("postgresql", url, engine, make_session_factory(engine))
    finally:
        _truncate_all(engine)
        engine.dispose()


@pytest.fixture
def pg(postgres_server: str) -> Iterator[Database]:
    """PostgreSQL only: for tests of behaviour that exists only there (advisory locks, COPY, concurrency)."""
    engine = make_engine(postgres_server, application_name="costguard-test")
    try:
        yield Database("postgresql", postgres_server, engine, make_session_factory(engine))
    finally:
        _truncate_all(engine)
        engine.dispose()


@pytest.fixture
def cli(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """Run ``costguard ARGS...`` in-process against the test database: ``cli("status", "--format", "json")``."""
    from typer.testing import CliRunner

    from costguard.cli import app
    from costguard.config import get_settings

    monkeypatch.setenv("COSTGUARD_DATABASE_URL", db.url)
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args, input=None: runner.invoke(app, list(args), input=input)
    get_settings.cache_clear()
