"""``alembic upgrade head`` builds exactly the schema the models describe, on both backends."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, inspect

from personal_assistant.core.states import ChannelKind
from personal_assistant.database import migrate
from personal_assistant.database.engine import make_sync_engine
from personal_assistant.database.models import Base
from personal_assistant.notifications.channels import KINDS

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


def test_the_migrated_check_constraints_are_the_models(sqlite_url: str) -> None:
    """The CHECKs the models build from the enums (``one_of``) are those the migrations made
    (autogenerate does not compare CHECKs; SQLite keeps their text as written)."""
    engine = make_sync_engine(sqlite_url)
    try:
        inspector = inspect(engine)
        for table in Base.metadata.sorted_tables:
            migrated = {
                (c["name"], " ".join(c["sqltext"].split()))
                for c in inspector.get_check_constraints(table.name)
            }
            modelled = {
                (c.name, " ".join(str(c.sqltext).split()))
                for c in table.constraints
                if isinstance(c, CheckConstraint)
            }
            assert migrated == modelled, table.name
    finally:
        engine.dispose()


def test_channel_kinds_are_the_checked_ones() -> None:
    assert tuple(ChannelKind) == KINDS
