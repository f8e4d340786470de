"""Is the database schema at the newest migration? Asked once by every database command."""

from __future__ import annotations

from personal_assistant.database import migrate
from personal_assistant.database.failures import explained
from personal_assistant.errors import ConfigurationError

HINT = "run `pa db upgrade` first"


def current_revision(url: str) -> str | None:
    """The database's revision; None when it has no schema (a missing SQLite file is not made)."""
    if migrate.sqlite_file_missing(url):
        return None
    with explained("cannot read the database at", url):
        return migrate.current_revision(url)


def require_schema(url: str) -> None:
    """Raise ConfigurationError unless the database is at the newest revision."""
    head = migrate.HEAD
    current = current_revision(url)
    if current == head:
        return
    state = "has no schema" if current is None else f"is at revision {current}, not {head}"
    raise ConfigurationError(f"the database {state}: {HINT}", field="database")
