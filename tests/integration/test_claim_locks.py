"""What a claim locks, and for how long: other work on the claimed rows is not held up.

The scheduler's claim of due tasks and the digest sweep's claim of due users lock their rows
``FOR NO KEY UPDATE``: they change no key, so rows that merely reference them (a run's
notification naming its task, a new task naming its owner) are written meanwhile instead of
waiting for the claim to commit, which takes as long as the claimer does when it stalls. The
digest sweep's transaction is also ended by PostgreSQL after ``LEASE_MARGIN`` idle, as the
scheduler's is (``test_scheduler_stall.py``), so a stopped sweep does not keep a user's digest.
The scheduler claims a batch whose tasks all go on in one statement (``claim_at_once``), with
the same locks, and any other batch in a transaction: each is tested.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.digests import sweep as digest_service
from personal_assistant.runs import claim_at_once, due_tasks
from personal_assistant.runs.plans import new_runs, plan_batch
from personal_assistant.runs.scheduler import TaskScheduler
from personal_assistant.tasks.manager import AITaskManager
from support.factories import user_with_tasks
from support.stack import Db, settings_for
from support.stalls import freeze_after

pytestmark = pytest.mark.integration

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DUE = datetime(2026, 3, 1, 14, 0, 1, tzinfo=UTC)  # the daily 09:00 EST firing is due
#: The digest sweep's stall limit in the test of it.
MARGIN = 0.5
#: How long a write that references a claimed row may take before it counts as held up.
HELD_UP_S = 3.0

INSERT_NOTIFICATION = text(
    "INSERT INTO notifications (task_id, user_id, channel, status, title, body, attempts,"
    " created_at) VALUES (:task, :user, 'in_app', 'delivered', 't', 'b', 0, now())"
)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for({"DATABASE_URL": database_url})


@pytest.fixture
def db(database_url: str) -> Iterator[Db]:
    handle = Db(database_url)
    yield handle
    handle.close()


def _create_user_with_task(settings: Settings) -> tuple[int, int]:
    user_id, (task_id,) = user_with_tasks(settings, created=CREATED)
    return user_id, task_id


async def _while_frozen(
    frozen: Callable[[], Awaitable[Any]],
    entered: asyncio.Event,
    resume: asyncio.Event,
    meanwhile: Callable[[], Awaitable[Any]],
    *,
    timeout: float = HELD_UP_S,
) -> Any:
    """What ``meanwhile`` returns while ``frozen`` is stopped inside its transaction."""
    call = asyncio.create_task(frozen())
    await asyncio.wait_for(entered.wait(), timeout=10)
    try:
        return await asyncio.wait_for(meanwhile(), timeout=timeout)
    finally:
        resume.set()
        await asyncio.gather(call, return_exceptions=True)


def test_a_claimed_task_can_be_referenced_while_the_claim_is_open(
    settings: Settings, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim in a transaction: a one-shot task's last firing (the claim also closes it)."""
    user_id, (task_id,) = user_with_tasks(
        settings, created=CREATED, schedule={"kind": "once", "at": DUE - timedelta(seconds=1)}
    )
    entered, resume = freeze_after(monkeypatch, due_tasks, "insert_runs")

    async def go() -> None:
        engine = make_async_engine(settings.database_url)
        scheduler = TaskScheduler(engine, settings, lambda ids: None)
        try:
            await _while_frozen(
                lambda: scheduler.claim_due(DUE), entered, resume, _notify(engine, task_id, user_id)
            )
        finally:
            await engine.dispose()

    asyncio.run(go())
    assert db.scalar("SELECT count(*) FROM notifications WHERE task_id = :t", t=task_id) == 1
    assert db.scalar("SELECT count(*) FROM task_runs WHERE task_id = :t", t=task_id) == 1


def test_a_task_claimed_in_one_statement_can_be_referenced_while_its_transaction_is_open(
    settings: Settings, db: Db
) -> None:
    """The one-statement claim (``claim_at_once``) takes the same locks: sent inside a
    transaction held open here, its claimed task can still be named by a new row."""
    user_id, task_id = _create_user_with_task(settings)
    entered, resume = asyncio.Event(), asyncio.Event()

    async def go() -> None:
        engine = make_async_engine(settings.database_url)

        async def claim_and_hold() -> None:
            async with engine.begin() as conn:
                found = await due_tasks.candidates(conn, DUE, part=(0, 1), limit=10)
                plans = plan_batch(found, DUE, float("inf"), grace=timedelta(minutes=5), limit=10)
                assert claim_at_once.in_one_statement("postgresql", plans)
                claimed, _ = await claim_at_once.claim(
                    conn,
                    plans,
                    new_runs(plans),
                    now=DUE,
                    lease=DUE + timedelta(minutes=5),
                    owners={task_id: user_id},
                    hold=DUE + timedelta(minutes=5),
                )
                assert claimed == {task_id}
                entered.set()
                await resume.wait()

        try:
            await _while_frozen(claim_and_hold, entered, resume, _notify(engine, task_id, user_id))
        finally:
            await engine.dispose()

    asyncio.run(go())
    assert db.scalar("SELECT count(*) FROM notifications WHERE task_id = :t", t=task_id) == 1
    assert db.scalar("SELECT count(*) FROM task_runs WHERE task_id = :t", t=task_id) == 1


def _notify(engine: AsyncEngine, task_id: int, user_id: int) -> Callable[[], Awaitable[None]]:
    """A worker recording the task's previous run: a notification naming it."""

    async def notify() -> None:
        async with engine.begin() as conn:
            await conn.execute(INSERT_NOTIFICATION, {"task": task_id, "user": user_id})

    return notify


def _make_digest_due(db: Db, user_id: int) -> None:
    db.execute(
        "UPDATE users SET digest_at = :at, next_digest_at = :due WHERE id = :u",
        at=time(20, 0),
        due=DUE - timedelta(hours=1),
        u=user_id,
    )


def test_a_user_in_a_digest_sweep_can_get_new_tasks(
    settings: Settings, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id, _ = _create_user_with_task(settings)
    _make_digest_due(db, user_id)
    entered, resume = freeze_after(monkeypatch, digest_service, "_write")

    async def go() -> None:
        engine = make_async_engine(settings.database_url)

        async def create_task() -> None:
            async with AITaskManager(settings, clock=lambda: CREATED) as manager:
                await manager.create_task(user_id, "new", schedule={"kind": "once", "at": DUE})

        try:
            await _while_frozen(
                lambda: digest_service.due_digests(engine, DUE, stall_limit_s=60),
                entered,
                resume,
                create_task,
            )
        finally:
            await engine.dispose()

    asyncio.run(go())
    assert db.scalar("SELECT count(*) FROM ai_tasks WHERE user_id = :u", u=user_id) == 2


def test_a_digest_sweep_stopped_mid_batch_releases_its_users(
    settings: Settings, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id, _ = _create_user_with_task(settings)
    _make_digest_due(db, user_id)
    entered, resume = freeze_after(monkeypatch, digest_service, "_write")

    async def go() -> tuple[int, int]:
        engine = make_async_engine(settings.database_url)

        def sweep() -> Awaitable[digest_service.DigestSweep]:
            return digest_service.due_digests(engine, DUE, stall_limit_s=MARGIN)

        async def young_then_late() -> tuple[int, int]:
            young = (await sweep()).users  # the user is locked: skipped
            await asyncio.sleep(MARGIN * 4)
            return young, (await sweep()).users

        try:
            result: tuple[int, int] = await _while_frozen(
                sweep, entered, resume, young_then_late, timeout=30
            )
        finally:
            await engine.dispose()
        return result

    assert asyncio.run(go()) == (0, 1)
    assert db.scalar("SELECT next_digest_at > :due FROM users WHERE id = :u", due=DUE, u=user_id)
