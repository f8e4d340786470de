"""``limit_idle_in_transaction``: a process stalled inside a transaction does not keep its locks.

Found by the chaos suite (scenario 7): a worker stopped with SIGSTOP between two statements of
its claim kept the claimed runs locked, and the dispatcher and the other workers' claims,
which skip or wait for locked rows, left them queued for as long as it stayed stopped.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from personal_assistant.database.engine import limit_idle_in_transaction, make_async_engine

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


INSERT_USER = text("INSERT INTO users (display_name, timezone, created_at) VALUES ('A', 'UTC', :t)")


def _lock_then_stall(url: str, *, limit: float | None, stall: float) -> tuple[bool, bool]:
    """(another session could lock the row after the stall, the stalled one could go on)"""

    async def go() -> tuple[bool, bool]:
        engine = make_async_engine(url)
        try:
            async with engine.begin() as setup:
                await setup.execute(INSERT_USER, {"t": NOW})
            async with engine.connect() as stalled:
                transaction = await stalled.begin()
                if limit is not None:
                    await limit_idle_in_transaction(stalled, limit)
                await stalled.execute(text("SELECT id FROM users FOR UPDATE"))
                await asyncio.sleep(stall)  # the process is stopped: it sends nothing
                async with engine.begin() as other:
                    try:
                        await other.execute(text("SELECT id FROM users FOR UPDATE NOWAIT"))
                        free = True
                    except DBAPIError:
                        free = False
                        await other.rollback()
                try:
                    await stalled.execute(text("SELECT 1"))
                    await transaction.commit()
                    survived = True
                except DBAPIError:
                    survived = False
            return free, survived
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_postgresql_ends_a_transaction_left_idle_past_the_limit(database_url: str) -> None:
    assert _lock_then_stall(database_url, limit=0.2, stall=1.0) == (True, False)


def test_without_the_limit_the_stalled_transaction_keeps_its_locks(database_url: str) -> None:
    assert _lock_then_stall(database_url, limit=None, stall=1.0) == (False, True)


def test_a_transaction_within_the_limit_is_untouched(database_url: str) -> None:
    assert _lock_then_stall(database_url, limit=5.0, stall=0.2) == (False, True)


def test_the_limit_is_a_no_op_on_sqlite(sqlite_url: str) -> None:
    async def go() -> int:
        engine = make_async_engine(sqlite_url)
        try:
            async with engine.begin() as conn:
                await limit_idle_in_transaction(conn, 0.001)
                await asyncio.sleep(0.05)
                return int((await conn.execute(text("SELECT 1"))).scalar_one())
        finally:
            await engine.dispose()

    assert asyncio.run(go()) == 1
