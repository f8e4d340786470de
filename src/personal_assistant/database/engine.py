"""Engines for PostgreSQL (psycopg 3) and SQLite (the embedded default).

One URL configures both the async engine (the manager, the workers, the scheduler) and the
sync engine (Alembic, tests, benchmarks). On SQLite every transaction starts with
``BEGIN IMMEDIATE``: one writer at a time, waiting up to 30 s for the lock, so the scheduler's
claim is a single-writer transaction there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, TextClause, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from personal_assistant.errors import ConfigurationError
from personal_assistant.private_files import private_file

SQLITE_BUSY_TIMEOUT_S = 30


def _normalise(url: str, *, async_: bool) -> URL:
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigurationError("is not a database URL", field="DATABASE_URL") from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite" if async_ else "sqlite")
    raise ConfigurationError(
        f"backend {backend!r} is not supported (use postgresql:// or sqlite:///)",
        field="DATABASE_URL",
    )


def prepare_sqlite_file(url: str | URL) -> None:
    """Create an SQLite database's file, readable by its owner only, before SQLite opens it.

    SQLite would create it with the umask's mode (0644: every local user could read every
    user's data); :func:`~personal_assistant.private_files.private_file` makes it 0600 whatever
    the umask, and SQLite gives the ``-wal`` and ``-shm`` files the same mode. Used for the
    database, and for Celery's broker and result files on the embedded default.
    """
    target = make_url(url) if isinstance(url, str) else url
    database = target.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return  # in memory, or an SQLite URI (``?uri=true``) whose path SQLite resolves
    private_file(Path(database))


def _install_sqlite_hooks(sync_engine: Engine) -> None:
    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (the pysqlite/aiosqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_async_engine(
    url: str, *, pooled: bool = True, pool_size: int = 10, max_overflow: int | None = None
) -> AsyncEngine:
    """The async engine. ``pooled=False`` opens a connection per use (safe across event loops).

    A pool keeps up to ``pool_size`` connections open and opens up to ``max_overflow`` more
    (closed when returned) when all are busy; ``max_overflow`` defaults to ``pool_size``.
    """
    target = _normalise(url, async_=True)
    kwargs: dict[str, Any] = {}
    if target.get_backend_name() == "sqlite":
        prepare_sqlite_file(target)
        kwargs["poolclass"] = NullPool
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    elif pooled:
        overflow = pool_size if max_overflow is None else max_overflow
        kwargs.update(pool_size=pool_size, max_overflow=overflow, pool_pre_ping=True)
    else:
        kwargs["poolclass"] = NullPool
    engine = create_async_engine(target, **kwargs)
    if target.get_backend_name() == "sqlite":
        _install_sqlite_hooks(engine.sync_engine)
    return engine


async def limit_idle_in_transaction(conn: AsyncConnection, seconds: float) -> None:
    """End this transaction, and its session, should the client sit idle in it ``seconds``.

    For short transactions that lock rows other processes recover (runs, tasks): a process
    stopped or frozen between two statements would otherwise keep them locked, skipped by
    every ``SKIP LOCKED`` reader, for as long as it is gone. PostgreSQL only (``SET LOCAL``:
    the limit ends with the transaction); a no-op on SQLite, where a stalled writer holds the
    whole database anyway and the others time out after the busy timeout.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(idle_in_transaction_limit(seconds))


def idle_in_transaction_limit(seconds: float) -> TextClause:
    """The statement of :func:`limit_idle_in_transaction` (PostgreSQL only), for a sync
    connection."""
    milliseconds = max(1, round(seconds * 1000))
    return text(f"SET LOCAL idle_in_transaction_session_timeout = {milliseconds}")


def make_sync_engine(url: str, *, pooled: bool = False) -> Engine:
    """The sync engine, for migrations, tests and benchmarks."""
    target = _normalise(url, async_=False)
    kwargs: dict[str, Any] = {}
    if target.get_backend_name() == "sqlite":
        prepare_sqlite_file(target)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        kwargs["poolclass"] = NullPool
    elif not pooled:
        kwargs["poolclass"] = NullPool
    engine = create_engine(target, **kwargs)
    if target.get_backend_name() == "sqlite":
        _install_sqlite_hooks(engine)
    return engine
