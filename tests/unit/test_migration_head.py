"""``migrate.HEAD`` (what every ``pa`` command expects the database at, named so that asking
does not load Alembic) is the newest revision of the migration scripts."""

from __future__ import annotations

from personal_assistant.database import migrate


def test_head_is_the_newest_migration() -> None:
    assert migrate.head_revision() == migrate.HEAD
