"""Run Alembic migrations from code (``pa db upgrade``, ``pa run``, the tests), and tell a
database's revision without Alembic.

Every ``pa`` command asks whether the database is at the newest revision. Loading Alembic for
that, and reading every migration script to find the newest, was about a third of a command's
start. :data:`HEAD` names the newest revision (``tests/unit/test_migration_head.py`` checks it
against the scripts) and :func:`current_revision` reads Alembic's one-row table with plain SQL;
Alembic itself is imported only to migrate.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from personal_assistant.errors import ConfigurationError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
#: The newest migration's revision: add a migration, move this with it.
HEAD = "0016"
#: What to do about a database that is not at :data:`HEAD`.
HINT = "run `pa db upgrade` first"


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def head_revision() -> str | None:
    """The newest revision as the migration scripts say (Alembic reads them all)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return script.get_current_head()


def sqlite_file_missing(database_url: str) -> bool:
    """Whether ``database_url`` names a SQLite file that does not exist (asking would make it).

    Read from the URL alone (:mod:`~personal_assistant.database.plain`), without SQLAlchemy:
    the database commands and the quick reads both ask it first.
    """
    from personal_assistant.database import plain

    try:
        is_sqlite = plain.backend(database_url) == "sqlite"
    except ConfigurationError:
        return False  # opening it says what is wrong with the URL
    path = plain.sqlite_path(database_url) if is_sqlite else None
    return path is not None and not path.exists()


def current_revision(database_url: str) -> str | None:
    """The database's revision (Alembic's ``alembic_version`` row); None: no schema."""
    from sqlalchemy import inspect, text

    from personal_assistant.database.engine import make_sync_engine

    engine = make_sync_engine(database_url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            revision = conn.scalar(text("SELECT version_num FROM alembic_version"))
            return None if revision is None else str(revision)
    finally:
        engine.dispose()


def require_head(current: str | None) -> None:
    """Raise ConfigurationError unless ``current`` (a database's revision) is :data:`HEAD`."""
    if current == HEAD:
        return
    state = "has no schema" if current is None else f"is at revision {current}, not {HEAD}"
    raise ConfigurationError(f"the database {state}: {HINT}", field="database")
