"""``alembic upgrade head`` builds exactly the schema the models describe, on both backends."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from personal_assistant.database import migrate
from personal_assistant.database.engine import make_sync_engine
from personal_assistant.database.models import Base

pytestmark = pytest.mark.integration


def _diff(url: str) -> list[object]:
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_postgresql_schema_matches_models(database_url: str) -> None:
    assert migrate.current_revision(database_url) == migrate.head_revision()
    assert _diff(database_url) == []


def test_sqlite_schema_matches_models(sqlite_url: str) -> None:
    assert migrate.current_revision(sqlite_url) == migrate.head_revision()
    assert _diff(sqlite_url) == []
