"""The scheduler's claim of a batch in one statement keeps the claim's rules (PostgreSQL).

``claim_at_once.claim`` locks, inserts and advances in one statement sent outside a
transaction. It must leave what the transaction left: a task another claimer holds (``SKIP
LOCKED``), a task changed since it was planned (the compare-and-set on ``next_run_at``), and
no second run for a firing that has one. A batch with a task that does not go on is claimed in
the transaction, which closes that task with the claim.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.runs import claim_at_once, due_tasks
from personal_assistant.runs.plans import TaskPlan, new_runs, plan_batch
from support.factories import user_with_tasks
from support.stack import Db, settings_for

pytestmark = pytest.mark.integration

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DUE = datetime(2026, 3, 1, 14, 0, 1, tzinfo=UTC)  # the daily 09:00 EST firings are due
FIRING = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)
NEXT = FIRING + timedelta(days=1)
LEASE = DUE + timedelta(minutes=5)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for({"DATABASE_URL": database_url})


async def _plans(conn: AsyncConnection) -> list[TaskPlan]:
    candidates = await due_tasks.candidates(conn, DUE, part=(0, 1), limit=100)
    await conn.rollback()
    return plan_batch(candidates, DUE, float("inf"), grace=timedelta(minutes=5), limit=10)


def _claim_at_once(
    settings: Settings, between: Callable[[], None] = lambda: None
) -> tuple[set[int], list[int]]:
    """Plan the due tasks, call ``between`` (an edit meanwhile), then claim them at once."""

    async def go() -> tuple[set[int], list[int]]:
        engine = make_async_engine(settings.database_url)
        try:
            async with engine.connect() as conn:
                plans = await _plans(conn)
                assert claim_at_once.in_one_statement("postgresql", plans)
                between()
                owners = dict(await _owners(conn))
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                return await claim_at_once.claim(
                    conn, plans, new_runs(plans), now=DUE, lease=LEASE, owners=owners, hold=LEASE
                )
        finally:
            await engine.dispose()

    return asyncio.run(go())


async def _owners(conn: AsyncConnection) -> list[tuple[int, int]]:
    rows = await conn.exec_driver_sql("SELECT id, user_id FROM ai_tasks")
    await conn.rollback()
    return [(task_id, user_id) for task_id, user_id in rows]


def test_the_tasks_are_claimed_their_runs_recorded_as_sent_and_advanced(
    settings: Settings, db: Db
) -> None:
    user_id, task_ids = user_with_tasks(settings, 3, created=CREATED)
    claimed, run_ids = _claim_at_once(settings)
    assert claimed == set(task_ids)
    runs = db.rows(
        "SELECT id, task_id, user_id, scheduled_for, state, attempt, queued_at,"
        " lease_expires_at, published_at FROM task_runs ORDER BY task_id"
    )
    assert sorted(run_ids) == sorted(r.id for r in runs)
    assert [(r.task_id, r.user_id, r.scheduled_for, r.state, r.attempt) for r in runs] == [
        (task_id, user_id, FIRING, "queued", 0) for task_id in task_ids
    ]
    assert {(r.queued_at, r.lease_expires_at, r.published_at) for r in runs} == {(DUE, LEASE, DUE)}
    assert db.rows("SELECT DISTINCT next_run_at FROM ai_tasks") == [(NEXT,)]


def test_a_task_another_claimer_holds_is_left_to_it(settings: Settings, db: Db) -> None:
    _, (held, *others) = user_with_tasks(settings, 3, created=CREATED)
    with db.engine.connect() as other:  # another claimer, its transaction open
        other.exec_driver_sql(f"SELECT id FROM ai_tasks WHERE id = {held} FOR NO KEY UPDATE")
        claimed, run_ids = _claim_at_once(settings)
        other.rollback()
    assert claimed == set(others)
    assert len(run_ids) == len(others)
    assert db.scalar("SELECT count(*) FROM task_runs WHERE task_id = :t", t=held) == 0
    assert db.scalar("SELECT next_run_at FROM ai_tasks WHERE id = :t", t=held) == FIRING


def test_a_task_changed_since_it_was_planned_is_left(settings: Settings, db: Db) -> None:
    _, (edited, *others) = user_with_tasks(settings, 3, created=CREATED)
    moved = FIRING + timedelta(minutes=30)

    def edit() -> None:  # between the plan and the claim: the task is now due later
        db.execute("UPDATE ai_tasks SET next_run_at = :at WHERE id = :t", at=moved, t=edited)

    claimed, run_ids = _claim_at_once(settings, edit)
    assert claimed == set(others)
    assert len(run_ids) == len(others)
    assert db.scalar("SELECT count(*) FROM task_runs WHERE task_id = :t", t=edited) == 0
    assert db.scalar("SELECT next_run_at FROM ai_tasks WHERE id = :t", t=edited) == moved


def test_a_firing_that_has_a_run_gets_no_second_one(settings: Settings, db: Db) -> None:
    user_id, (ran, *others) = user_with_tasks(settings, 3, created=CREATED)
    db.execute(
        "INSERT INTO task_runs (task_id, user_id, scheduled_for, state, attempt, queued_at)"
        " VALUES (:t, :u, :at, 'succeeded', 1, :at)",
        t=ran,
        u=user_id,
        at=FIRING,
    )
    claimed, run_ids = _claim_at_once(settings)
    assert claimed == {ran, *others}  # all advanced
    assert len(run_ids) == len(others)  # no new run, nothing to send, for the one that ran
    assert db.scalar("SELECT count(*) FROM task_runs WHERE task_id = :t", t=ran) == 1
    assert db.rows("SELECT DISTINCT next_run_at FROM ai_tasks") == [(NEXT,)]


def test_a_batch_with_a_task_that_does_not_go_on_is_claimed_in_a_transaction(
    settings: Settings,
) -> None:
    user_with_tasks(settings, 2, created=CREATED)
    user_with_tasks(settings, created=CREATED, schedule={"kind": "once", "at": FIRING})

    async def go() -> list[TaskPlan]:
        engine = make_async_engine(settings.database_url)
        try:
            async with engine.connect() as conn:
                return await _plans(conn)
        finally:
            await engine.dispose()

    plans = asyncio.run(go())
    assert len(plans) == 3
    assert not claim_at_once.in_one_statement("postgresql", plans)  # the one-shot: no next
    assert claim_at_once.in_one_statement("postgresql", [p for p in plans if p.next_run_at])
    assert not claim_at_once.in_one_statement("sqlite", [p for p in plans if p.next_run_at])
