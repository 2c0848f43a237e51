"""serve and worker refuse an outdated schema, except on the embedded SQLite default, which migrates itself."""

from __future__ import annotations

import pytest

from costguard.config import Settings
from costguard.runtime import open_runtime
from costguard.schema import SchemaOutdatedError, current_revision, head_revision
from tests.helpers.databases import throwaway_database


def test_embedded_sqlite_default_migrates_itself(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.is_embedded_sqlite
    runtime = open_runtime(settings, application_name="test")
    assert current_revision(runtime.engine) == head_revision(settings.database_url)
    assert (tmp_path / "costguard.db").exists()


def test_other_sqlite_file_with_old_schema_is_refused(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'other.db'}")
    with pytest.raises(SchemaOutdatedError, match="costguard migrate"):
        open_runtime(settings, application_name="test")


def test_empty_postgres_database_is_refused_until_migrated(postgres_server):
    with (
        throwaway_database("costguard_empty") as url,
        pytest.raises(SchemaOutdatedError, match="run `costguard migrate` first"),
    ):
        open_runtime(Settings(database_url=url), application_name="test")


def test_the_migrations_build_exactly_the_schema_the_models_declare(postgres_server):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    from costguard.models import Base
    from costguard.schema import upgrade_to_head

    with throwaway_database("costguard_drift") as url:
        upgrade_to_head(url)
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        finally:
            engine.dispose()
    assert differences == []
