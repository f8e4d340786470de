"""``migrate.HEAD`` (what every ``pa`` command expects the database at, named so that asking
does not load Alembic) is the newest revision of the migration scripts."""

from __future__ import annotations

from pathlib import Path

from personal_assistant.database import migrate


def test_head_is_the_newest_migration() -> None:
    assert migrate.head_revision() == migrate.HEAD


def test_a_missing_sqlite_file_is_told_from_the_url_alone(tmp_path: Path) -> None:
    """What ``pa db ...`` and the quick reads of ``pa task list`` and ``pa status`` both ask
    before they open a database: reading a missing SQLite file would make it."""
    there = tmp_path / "pa.db"
    there.touch()
    missing = tmp_path / "none.db"
    assert migrate.sqlite_file_missing(f"sqlite:///{missing}")
    assert migrate.sqlite_file_missing(f"sqlite+aiosqlite:///{missing}?timeout=5")
    assert not migrate.sqlite_file_missing(f"sqlite:///{there}")
    assert not migrate.sqlite_file_missing("sqlite://")  # in memory
    assert not migrate.sqlite_file_missing("sqlite:///:memory:")
    assert not migrate.sqlite_file_missing("postgresql://pa@127.0.0.1/pa")
    assert not migrate.sqlite_file_missing("mysql://pa@h/pa")  # the engine says what is wrong
    assert not missing.exists()
