"""Reads through the database's own driver, without SQLAlchemy: the commands that must answer at
once (``pa task list``, ``pa status``).

Importing SQLAlchemy's asyncio extension and the models cost about 190 ms of a 300 ms command,
before its first query. A :class:`PlainReader` is one connection of the standard library's
``sqlite3`` (the embedded default) or of psycopg (PostgreSQL), opened for reading only: SQLite
in read-write mode that never makes a missing file, PostgreSQL in a read-only session.

Statements are written once with ``:name`` parameters, the style SQLAlchemy's ``text()`` takes
too, so that the same statement serves both paths (:func:`pyformat` rewrites it for psycopg).
Values are bound and read back the way the models store them: :func:`bind_time` and :func:`utc`
for datetimes (SQLite keeps fixed-width UTC text), :func:`json_value` for JSON columns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from personal_assistant.errors import ConfigurationError

#: How long a read waits for SQLite's lock (the engines' busy timeout).
SQLITE_TIMEOUT_S = 30
#: How long PostgreSQL may take to accept the connection.
CONNECT_TIMEOUT_S = 10
#: The fixed-width text SQLAlchemy stores an SQLite datetime as (string order is time order).
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")

Row = tuple[Any, ...]


class PlainReader:
    """One read-only connection; ``dialect`` is ``"sqlite"`` or ``"postgresql"``."""

    def __init__(self, connection: Any, dialect: str) -> None:
        self._connection = connection
        self.dialect = dialect

    def rows(self, sql: str, params: Mapping[str, object] | None = None) -> list[Row]:
        """Every row of ``sql`` (``:name`` parameters)."""
        statement = pyformat(sql) if self.dialect == "postgresql" else sql
        cursor = self._connection.cursor()
        try:
            cursor.execute(statement, dict(params or {}))
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def value(self, sql: str, params: Mapping[str, object] | None = None) -> Any:
        """The first column of the first row; None without a row."""
        found = self.rows(sql, params)
        return found[0][0] if found else None

    def has_table(self, name: str) -> bool:
        if self.dialect == "sqlite":
            query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"
        else:
            query = "SELECT 1 FROM pg_catalog.pg_tables WHERE tablename = :name"
        return self.value(query, {"name": name}) is not None


def pyformat(sql: str) -> str:
    """``sql`` with ``:name`` parameters as psycopg's ``%(name)s`` (a literal ``%`` doubled)."""
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))


def bind_time(dialect: str, moment: datetime) -> object:
    """``moment`` as the column stores it: aware on PostgreSQL, fixed-width UTC text on SQLite."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass an aware datetime")
    if dialect == "sqlite":
        return moment.astimezone(UTC).strftime(SQLITE_TIME)
    return moment


def utc(value: object) -> datetime | None:
    """A datetime column's value as an aware UTC datetime (SQLite gives its text); None: NULL."""
    return None if value is None else instant(value)


def instant(value: object) -> datetime:
    """A NOT NULL datetime column's value as an aware UTC datetime."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        raise TypeError(f"not a datetime: {type(value).__name__}")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def json_value(value: object) -> Any:
    """A JSON column's value, parsed (SQLite gives its text; psycopg has parsed it)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def backend(url: str) -> str:
    """``"sqlite"`` or ``"postgresql"``, read from the URL's scheme (its driver ignored)."""
    name = url.partition(":")[0].partition("+")[0].lower()
    if name in ("postgresql", "postgres"):
        return "postgresql"
    if name == "sqlite":
        return "sqlite"
    raise ConfigurationError(
        f"backend {name!r} is not supported (use postgresql:// or sqlite:///)",
        field="DATABASE_URL",
    )


def sqlite_path(url: str) -> Path | None:
    """The file an SQLite URL names; None: in memory."""
    path = unquote(urlsplit(url).path.removeprefix("/"))
    return None if path in ("", ":memory:") else Path(path)


@contextmanager
def reader(url: str, doing: str = "cannot read the database at") -> Iterator[PlainReader]:
    """A :class:`PlainReader` on the database at ``url``. The driver's errors, connecting or
    reading, become :class:`~personal_assistant.database.failures.UnusableDatabase`."""
    from personal_assistant.database.failures import UnusableDatabase

    dialect = backend(url)
    error: type[Exception]
    if dialect == "sqlite":
        import sqlite3

        error, opener = sqlite3.Error, _sqlite
    else:
        import psycopg

        error, opener = psycopg.Error, _postgresql
    try:
        connection = opener(url)
        try:
            yield PlainReader(connection, dialect)
        finally:
            connection.close()
    except error as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UnusableDatabase(doing, url, reason) from None


def _sqlite(url: str) -> Any:
    import sqlite3

    path = sqlite_path(url)
    return sqlite3.connect(":memory:") if path is None else open_sqlite(path)


def open_sqlite(path: Path) -> Any:
    """A read-only ``sqlite3`` connection to the file at ``path``: opened read-write so that a
    missing file is an error (never an empty database made by a read), then ``query_only``."""
    import sqlite3

    target = f"file:{path.resolve().as_posix()}?mode=rw"
    connection = sqlite3.connect(target, uri=True, timeout=SQLITE_TIMEOUT_S)
    connection.execute("PRAGMA query_only = ON")
    return connection


def _postgresql(url: str) -> Any:
    import psycopg

    _, _, rest = url.partition(":")
    connection = psycopg.connect(f"postgresql:{rest}", connect_timeout=CONNECT_TIMEOUT_S)
    connection.read_only = True  # the first statement begins a READ ONLY transaction
    return connection
