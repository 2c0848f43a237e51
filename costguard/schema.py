"""Database schema versioning: run Alembic migrations and check the schema is current."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SchemaOutdatedError(RuntimeError):
    """The database is behind the code: the operator must run ``costguard migrate``."""


def alembic_config(database_url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def upgrade_to_head(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")


def head_revision(database_url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def ensure_current(engine: Engine, database_url: str) -> None:
    current, head = current_revision(engine), head_revision(database_url)
    if current != head:
        raise SchemaOutdatedError(
            f"the database schema is at revision {current or 'none'} but this costguard needs {head}; "
            "run `costguard migrate` first"
        )
