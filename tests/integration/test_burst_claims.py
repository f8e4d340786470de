"""A burst is claimed batch after batch from where the last read stopped, and its owners'
counts are read once for the whole burst (issue 16, target 2).

* :func:`due_tasks.candidates` with ``after`` reads only the due tasks after that one in
  ``(next_run_at, id)`` order, on PostgreSQL (the driver's own connection) and on SQLite;
* a burst that takes several ticks claims every task exactly once, each owner's counts read
  once for all its ticks; the next burst reads them again;
* a task another transaction holds while a burst is claimed is left behind by the claimers'
  reads and claimed by the next tick, once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.runs import due_tasks, fair_store
from personal_assistant.runs import scheduler as scheduler_module
from personal_assistant.runs.scheduler import TaskScheduler
from support.factories import user_with_tasks
from support.stack import Db, settings_for

pytestmark = pytest.mark.integration

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DUE = datetime(2026, 3, 1, 14, 0, 1, tzinfo=UTC)  # the daily 09:00 New York firing is due
BATCH = 10


class Sent:
    def __init__(self) -> None:
        self.ids: list[int] = []

    def __call__(self, ids: Sequence[int]) -> None:
        self.ids.extend(ids)


def _settings(url: str, **extra: str) -> Settings:
    return settings_for({"DATABASE_URL": url, "SCHEDULER_BATCH": str(BATCH), **extra})


def _read(url: str, after: due_tasks.Cursor | None, part: tuple[int, int]) -> list[int]:
    async def go() -> list[int]:
        engine = make_async_engine(url)
        try:
            async with engine.connect() as conn:
                found = await due_tasks.candidates(conn, DUE, part=part, limit=100, after=after)
            return [task_id for task_id, *_ in found]
        finally:
            await engine.dispose()

    return asyncio.run(go())


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_a_read_after_a_task_starts_just_after_it(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("database_url" if backend == "postgresql" else "sqlite_url")
    _, ids = user_with_tasks(_settings(url), 6, created=CREATED)
    everything = _read(url, None, (0, 1))
    assert everything == sorted(ids)  # one due instant: by id
    cursor = (DUE.replace(second=0), ids[2])  # the tasks' next_run_at is 14:00:00 UTC
    assert _read(url, cursor, (0, 1)) == ids[3:]
    assert _read(url, cursor, (1, 2)) == [i for i in ids[3:] if i % 2 == 1]
    assert _read(url, (DUE.replace(second=0), ids[-1]), (0, 1)) == []
    # A later instant than every due task's: nothing after it.
    assert _read(url, (DUE.replace(second=0) + timedelta(seconds=1), 0), (0, 1)) == []


def _tick_until_done(settings: Settings, sent: Sent, now: datetime) -> int:
    """Ticks until one does not ask to be called again at once; the number of ticks."""

    async def go() -> int:
        engine = make_async_engine(settings.database_url)
        try:
            scheduler = TaskScheduler(engine, settings, sent)
            ticks = 1
            while await scheduler.tick(now) == 0.0:
                ticks += 1
            return ticks
        finally:
            await engine.dispose()

    return asyncio.run(go())


@pytest.fixture
def counted_owners(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every owner whose counts fair dispatch reads at a claim, once per read."""
    read: list[int] = []
    real = fair_store.usage

    async def spy(conn: Any, users: Collection[int], *args: Any, **kwargs: Any) -> Any:
        read.extend(users)
        return await real(conn, users, *args, **kwargs)

    monkeypatch.setattr(fair_store, "usage", spy)
    return read


def test_a_burst_of_several_ticks_claims_each_task_once_and_counts_each_owner_once(
    database_url: str, db: Db, monkeypatch: pytest.MonkeyPatch, counted_owners: list[int]
) -> None:
    settings = _settings(database_url, USER_DISPATCH_LIMIT="1000")
    owners = [user_with_tasks(settings, 30, created=CREATED)[0] for _ in range(4)]
    # Every batch is over its tick's budget: the burst takes many ticks. One claimer: several
    # may read the same owner at once (what the burst decided wins, see ``Tally.learn``).
    monkeypatch.setattr(scheduler_module, "TICK_BUDGET_S", 0.0)
    monkeypatch.setattr(scheduler_module, "BURST_CLAIMERS", 1)
    sent = Sent()
    ticks = _tick_until_done(settings, sent, DUE)
    assert ticks >= 120 // (2 * BATCH)  # a first batch and one more per tick
    assert len(sent.ids) == len(set(sent.ids)) == 120
    assert db.scalar("SELECT count(DISTINCT task_id) FROM task_runs") == 120
    assert sorted(counted_owners) == sorted(owners)  # once each, for all the burst's ticks

    # The next burst (the next day's firing) counts them again.
    counted_owners.clear()
    _tick_until_done(settings, Sent(), DUE + timedelta(days=1))
    assert sorted(counted_owners) == sorted(owners)
    assert db.scalar("SELECT count(*) FROM task_runs") == 240


def test_a_task_held_by_another_transaction_is_claimed_by_the_next_tick(
    database_url: str, db: Db
) -> None:
    settings = _settings(database_url)
    _, ids = user_with_tasks(settings, 4 * BATCH, created=CREATED)
    held = ids[3]

    async def go() -> tuple[list[int], list[int]]:
        engine = make_async_engine(settings.database_url)
        first, second = Sent(), Sent()
        try:
            scheduler = TaskScheduler(engine, settings, first)
            async with engine.connect() as other:
                await other.execute(
                    text("SELECT id FROM ai_tasks WHERE id = :i FOR UPDATE"), {"i": held}
                )
                while await scheduler.tick(DUE) == 0.0:
                    pass
                await other.rollback()
            scheduler = TaskScheduler(engine, settings, second)
            await scheduler.tick(DUE)
            return first.ids, second.ids
        finally:
            await engine.dispose()

    first, second = asyncio.run(go())
    assert len(first) == 4 * BATCH - 1
    assert len(second) == 1
    assert db.scalar("SELECT task_id FROM task_runs WHERE id = :r", r=second[0]) == held
    assert db.scalar("SELECT count(*) FROM task_runs") == 4 * BATCH
