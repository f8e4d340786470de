"""What the database says about itself: reachable and how fast, its schema revision, the
autovacuum settings of the hot tables, whether ``idle_in_transaction_session_timeout`` can be
set, and its clock against this host's. Read only."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from personal_assistant.clock import utcnow
from personal_assistant.doctor.report import one_line

#: Tables that every claim rewrites: they need early autovacuum (migration 0001).
HOT_TABLES = ("ai_tasks", "task_runs")


@dataclass(frozen=True)
class DatabaseFacts:
    dialect: str
    url: str  # masked
    reachable: bool
    error: str = ""
    latency_ms: float | None = None
    version: str = ""
    revision: str | None = None
    head: str | None = None
    autovacuum: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> options
    idle_timeout_error: str | None = None  # None: it can be set
    skew_s: float | None = None  # database clock minus this host's


async def read_database(
    engine: AsyncEngine, url: str, head: str | None, host_clock: Callable[[], datetime] = utcnow
) -> DatabaseFacts:
    """Everything :mod:`.database_checks` judges; never raises for a database that is away."""
    dialect = engine.dialect.name
    try:
        async with engine.connect() as conn:
            started = time.perf_counter()
            await conn.execute(text("SELECT 1"))
            latency = (time.perf_counter() - started) * 1000
            revision = await _revision(conn)
            if dialect != "postgresql":
                return DatabaseFacts(dialect, url, True, "", latency, "", revision, head)
            version = str(await conn.scalar(text("SHOW server_version")))
            before = host_clock()
            db_now = await conn.scalar(text("SELECT clock_timestamp()"))
            after = host_clock()
            skew = (db_now - (before + (after - before) / 2)).total_seconds()
            autovacuum = await _autovacuum(conn)
            idle_error = await _idle_timeout_error(conn)
    except Exception as exc:  # every way a database can be away or refuse us
        return DatabaseFacts(dialect, url, False, one_line(exc))
    return DatabaseFacts(
        dialect, url, True, "", latency, version, revision, head, autovacuum, idle_error, skew
    )


async def _revision(conn: AsyncConnection) -> str | None:
    try:
        revision = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception:  # no alembic_version table: never migrated
        await conn.rollback()
        return None
    return None if revision is None else str(revision)


async def _autovacuum(conn: AsyncConnection) -> dict[str, dict[str, str]]:
    rows = await conn.execute(
        text("SELECT relname, reloptions FROM pg_class WHERE relname = ANY(:names)"),
        {"names": list(HOT_TABLES)},
    )
    found: dict[str, dict[str, str]] = {}
    for name, options in rows:
        found[name] = dict(option.split("=", 1) for option in (options or []))
    return found


async def _idle_timeout_error(conn: AsyncConnection) -> str | None:
    try:
        async with conn.begin_nested():
            await conn.execute(text("SET LOCAL idle_in_transaction_session_timeout = '60s'"))
    except Exception as exc:
        return " ".join(str(exc).split())[:200]
    return None
