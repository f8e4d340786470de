"""Is the database schema at the newest migration? Asked once by every database command."""

from __future__ import annotations

from personal_assistant.database import migrate
from personal_assistant.database.failures import explained


def current_revision(url: str) -> str | None:
    """The database's revision; None when it has no schema (a missing SQLite file is not made)."""
    if migrate.sqlite_file_missing(url):
        return None
    with explained("cannot read the database at", url):
        return migrate.current_revision(url)


def require_schema(url: str) -> None:
    """Raise ConfigurationError unless the database is at the newest revision."""
    migrate.require_head(current_revision(url))
