"""A scheduler stalled inside its claim or dispatch transaction does not hold those rows.

Each is stopped at a point inside its transaction, after its rows are locked (the broker read of
``dispatch_owed``; the run insert of ``claim_due``), the way a SIGSTOPped or frozen process is.
A claim is a transaction when a task of its batch does not go on (here one-shot tasks, whose
last firing it claims); a batch of tasks that all go on is claimed in one statement, atomic on
its own, with no transaction to stall in (``claim_at_once``).
Another scheduler skips the locked rows at first (``SKIP LOCKED``) and, once PostgreSQL has
ended the stalled transaction after ``LEASE_MARGIN``, claims them. The stalled one, resumed,
finds its transaction gone and writes nothing: each firing still has one run, sent once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError

from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.runs import due_tasks
from personal_assistant.runs.scheduler import TaskScheduler
from support.factories import user_with_tasks
from support.stack import Db, settings_for
from support.stalls import freeze_after

pytestmark = pytest.mark.integration

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DUE = datetime(2026, 3, 1, 14, 0, 1, tzinfo=UTC)  # the daily 09:00 EST firing is due
MARGIN = 0.5


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for({"DATABASE_URL": database_url, "LEASE_MARGIN": str(MARGIN)})


@pytest.fixture
def db(database_url: str) -> Iterator[Db]:
    handle = Db(database_url)
    yield handle
    handle.close()


class Sent:
    def __init__(self) -> None:
        self.ids: list[int] = []

    def __call__(self, ids: Sequence[int]) -> None:
        self.ids.extend(ids)


def _create_due_tasks(settings: Settings, count: int) -> None:
    user_with_tasks(settings, count, created=CREATED)


async def _stall_then_resume(
    stalled: Callable[[], Awaitable[Any]],
    entered: asyncio.Event,
    resume: asyncio.Event,
    other: Callable[[], Awaitable[int]],
) -> tuple[int, int, BaseException | None]:
    """(what ``other`` got while the stall was young, after it outlived the margin, the error
    the stalled call ended with once resumed)"""
    stalled_call = asyncio.create_task(stalled())
    await asyncio.wait_for(entered.wait(), timeout=10)
    young = await other()
    await asyncio.sleep(MARGIN * 4)
    late = await other()
    resume.set()
    try:
        await stalled_call
        error: BaseException | None = None
    except DBAPIError as exc:
        error = exc
    return young, late, error


def test_a_dispatcher_stalled_in_its_broker_read_releases_the_owed_runs(
    settings: Settings, db: Db
) -> None:
    _create_due_tasks(settings, 3)
    sent_first = Sent()
    asyncio.run(_claim(settings, sent_first))
    assert len(sent_first.ids) == 3
    owed_at = DUE + timedelta(seconds=settings.dispatch_lease_seconds + 1)

    async def go() -> tuple[int, int, BaseException | None, list[int], list[int]]:
        loop = asyncio.get_running_loop()
        entered, resume = asyncio.Event(), asyncio.Event()

        def frozen_backlog() -> int:
            # Runs in a thread inside the transaction, with the owed runs locked.
            loop.call_soon_threadsafe(entered.set)
            asyncio.run_coroutine_threadsafe(resume.wait(), loop).result(timeout=30)
            return 0

        engine = make_async_engine(settings.database_url)
        stalled_sent, other_sent = Sent(), Sent()
        stalled = TaskScheduler(engine, settings, stalled_sent, backlog=frozen_backlog)
        other = TaskScheduler(engine, settings, other_sent, backlog=lambda: 0)
        try:
            young, late, error = await _stall_then_resume(
                lambda: stalled.dispatch_owed(owed_at),
                entered,
                resume,
                lambda: other.dispatch_owed(owed_at),
            )
        finally:
            await engine.dispose()
        return young, late, error, stalled_sent.ids, other_sent.ids

    young, late, error, stalled_ids, other_ids = asyncio.run(go())
    assert (young, late) == (0, 3)
    assert sorted(other_ids) == sorted(sent_first.ids)
    assert stalled_ids == []
    assert error is not None  # its session was ended: it cannot write or send
    assert db.scalar("SELECT count(*) FROM task_runs") == 3
    assert db.scalar("SELECT count(*) FROM task_runs WHERE state = 'queued'") == 3


def test_a_claimer_stalled_mid_claim_releases_the_due_tasks(
    settings: Settings, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_with_tasks(settings, 3, created=CREATED, schedule={"kind": "once", "at": DUE})
    entered, resume = freeze_after(monkeypatch, due_tasks, "insert_runs")

    async def go() -> tuple[int, int, BaseException | None, list[int], list[int]]:
        engine = make_async_engine(settings.database_url)
        stalled_sent, other_sent = Sent(), Sent()
        stalled = TaskScheduler(engine, settings, stalled_sent)
        other = TaskScheduler(engine, settings, other_sent)

        async def other_claims() -> int:
            return (await other.claim_due(DUE)).runs

        try:
            young, late, error = await _stall_then_resume(
                lambda: stalled.claim_due(DUE), entered, resume, other_claims
            )
        finally:
            await engine.dispose()
        return young, late, error, stalled_sent.ids, other_sent.ids

    young, late, error, stalled_ids, other_ids = asyncio.run(go())
    assert (young, late) == (0, 3)
    assert len(other_ids) == 3
    assert stalled_ids == []
    assert error is not None
    assert db.scalar("SELECT count(*) FROM task_runs") == 3
    assert db.scalar("SELECT count(DISTINCT task_id) FROM task_runs") == 3


async def _claim(settings: Settings, publish: Sent) -> None:
    engine = make_async_engine(settings.database_url)
    try:
        await TaskScheduler(engine, settings, publish).claim_due(DUE)
    finally:
        await engine.dispose()
