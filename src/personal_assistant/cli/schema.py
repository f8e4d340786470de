"""Is the database schema at the newest migration? Asked once by every database command."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from personal_assistant.config import mask_url
from personal_assistant.database import migrate
from personal_assistant.errors import ConfigurationError

HINT = "run `pa db upgrade` first"


def _sqlite_file_missing(url: str) -> bool:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return False  # the engine reports a bad URL itself
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return False
    return not Path(parsed.database).exists()


def current_revision(url: str) -> str | None:
    """The database's revision; None when it has no schema (a missing SQLite file is not made)."""
    if _sqlite_file_missing(url):
        return None
    try:
        return migrate.current_revision(url)
    except SQLAlchemyError as exc:
        raise ConfigurationError(
            f"cannot read the database at {mask_url(url)}: {first_line(exc)}",
            field="DATABASE_URL",
        ) from None


def require_schema(url: str) -> None:
    """Raise ConfigurationError unless the database is at the newest revision."""
    head = migrate.HEAD
    current = current_revision(url)
    if current == head:
        return
    state = "has no schema" if current is None else f"is at revision {current}, not {head}"
    raise ConfigurationError(f"the database {state}: {HINT}", field="database")


def first_line(exc: SQLAlchemyError) -> str:
    cause = getattr(exc, "orig", None) or exc
    return str(cause).splitlines()[0] if str(cause) else type(cause).__name__
