"""Per-user quotas at create and import, and imports that owe at most one catch-up run.

One user imported 100,000 tasks in 110 s, each with a ``next_run_at`` days in the past, so that
each fired up to ``CATCHUP_LIMIT`` catch-up runs at once (issue 10, item 9). A refusal names
the setting, writes nothing, and holds when requests race.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.errors import QuotaError, exit_code, http_status
from personal_assistant.exports import document, store
from personal_assistant.runs.scheduler import TaskScheduler
from personal_assistant.tasks.manager import AITaskManager
from personal_assistant.tasks.quotas import Limits
from support.stack import Db, run

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAILY = {"kind": "daily", "times": ["09:00"]}
HOURLY = {"kind": "interval", "every": "1h", "timezone": "UTC"}
COUNTS = (
    "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM ai_tasks), "
    "(SELECT count(*) FROM task_runs), (SELECT count(*) FROM notifications)"
)


@pytest.fixture
def db(url: str) -> Iterator[Db]:
    handle = Db(url)
    yield handle
    handle.close()


def _manager(url: str, **limits: str) -> AITaskManager:
    settings = Settings(DATABASE_URL=url, **limits)  # type: ignore[arg-type]
    return AITaskManager(settings, clock=lambda: NOW)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _task(number: int, *, next_run_at: datetime | None, **fields: Any) -> dict[str, Any]:
    created = NOW - timedelta(days=30, minutes=number)
    return {
        "id": number,
        "title": f"Imported {number}",
        "description": "",
        "task_type": "reminder",
        "status": "active",
        "status_reason": None,
        "schedule": HOURLY,
        "next_run_at": None if next_run_at is None else _iso(next_run_at),
        "last_run_at": None,
        "ai_context": {},
        "notification_channels": ["in_app"],
        "catch_up": "once",
        "max_retries": 3,
        "consecutive_failures": 0,
        "created_at": _iso(created),
        "updated_at": _iso(created),
    } | fields


def _document(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "format": document.FORMAT,
        "version": document.VERSION,
        "exported_at": _iso(NOW),
        "user": {"display_name": "Ada", "timezone": "UTC", "created_at": _iso(NOW)},
        "tasks": tasks,
        "runs": [],
        "notifications": [],
    }


def _tasks(first: int, count: int, **fields: Any) -> list[dict[str, Any]]:
    """``count`` tasks numbered from ``first``, due in an hour unless ``fields`` say otherwise."""
    due = fields.pop("next_run_at", NOW + timedelta(hours=1))
    return [_task(n, next_run_at=due, **fields) for n in range(first, first + count)]


async def _import(
    url: str, data: object, user_id: int | None, *, now: datetime, limits: Limits
) -> store.ImportReport:
    engine = make_async_engine(url, pooled=False)
    try:
        return await store.import_export(engine, data, user_id=user_id, now=now, limits=limits)
    finally:
        await engine.dispose()


def test_the_quota_error_is_its_own_class_with_its_own_codes() -> None:
    error = QuotaError("too many", field="MAX_ACTIVE_TASKS_PER_USER", limit=3)
    assert (exit_code(error), http_status(error), error.limit) == (7, 429, 3)


def test_creating_past_the_active_task_limit_is_refused(url: str, db: Db) -> None:
    manager = _manager(url, MAX_ACTIVE_TASKS_PER_USER="3")

    async def go() -> None:
        ada = await manager.create_user("Ada")
        bob = await manager.create_user("Bob")
        tasks = [await manager.create_task(ada.id, f"t{i}", schedule=DAILY) for i in range(3)]
        with pytest.raises(QuotaError) as caught:
            await manager.create_task(ada.id, "one too many", schedule=DAILY)
        assert caught.value.field == "MAX_ACTIVE_TASKS_PER_USER"
        assert caught.value.limit == 3
        assert "3 active or paused tasks" in caught.value.message
        await manager.create_task(bob.id, "Bob's own", schedule=DAILY)  # per user

        await manager.pause_task(tasks[0].id, ada.id)  # a paused task still counts
        with pytest.raises(QuotaError):
            await manager.create_task(ada.id, "still too many", schedule=DAILY)
        await manager.delete_task(tasks[0].id, ada.id)
        await manager.create_task(ada.id, "room again", schedule=DAILY)

    run(go())
    assert db.scalar("SELECT count(*) FROM ai_tasks WHERE title LIKE '%too many'") == 0


def test_reviving_a_finished_task_counts_against_the_limit(url: str, db: Db) -> None:
    manager = _manager(url, MAX_ACTIVE_TASKS_PER_USER="2")

    async def go() -> None:
        ada = await manager.create_user("Ada")
        first = await manager.create_task(ada.id, "first", schedule=DAILY)
        second = await manager.create_task(ada.id, "second", schedule=DAILY)
        db.execute("UPDATE ai_tasks SET status = 'failed' WHERE id = :t", t=first.id)
        db.execute("UPDATE ai_tasks SET status = 'completed' WHERE id = :t", t=second.id)
        await manager.create_task(ada.id, "third", schedule=DAILY)
        await manager.create_task(ada.id, "fourth", schedule=DAILY)
        with pytest.raises(QuotaError) as caught:
            await manager.resume_task(first.id, ada.id)
        assert caught.value.field == "MAX_ACTIVE_TASKS_PER_USER"
        with pytest.raises(QuotaError):
            await manager.update_task(
                second.id, ada.id, schedule={"kind": "daily", "times": ["10:00"]}
            )

    run(go())
    assert db.rows("SELECT status FROM ai_tasks ORDER BY id") == [
        ("failed",),
        ("completed",),
        ("active",),
        ("active",),
    ]


def test_zero_means_no_limit(url: str, db: Db) -> None:
    manager = _manager(url, MAX_ACTIVE_TASKS_PER_USER="0", MAX_IMPORTS_PER_HOUR="0")

    async def go() -> int:
        ada = await manager.create_user("Ada")
        for i in range(3):
            await manager.create_task(ada.id, f"t{i}", schedule=DAILY)
        return ada.id

    ada = run(go())
    unlimited = Limits(active_tasks=0, imports_per_hour=0)
    run(_import(url, _document(_tasks(1, 5)), ada, now=NOW, limits=unlimited))
    assert db.scalar("SELECT count(*) FROM ai_tasks") == 8


def test_an_import_past_the_active_task_limit_writes_nothing(url: str, db: Db) -> None:
    manager = _manager(url)

    async def go() -> int:
        ada = await manager.create_user("Ada")
        await manager.create_task(ada.id, "mine", schedule=DAILY)
        return ada.id

    ada = run(go())
    limits = Limits(active_tasks=3, imports_per_hour=0)
    before = db.rows(COUNTS)
    finished = _tasks(10, 2, status="completed", next_run_at=None)
    with pytest.raises(QuotaError) as caught:
        run(_import(url, _document(_tasks(1, 3) + finished), ada, now=NOW, limits=limits))
    assert caught.value.field == "MAX_ACTIVE_TASKS_PER_USER"
    assert "has 1 active or paused tasks and may have at most 3" in caught.value.message
    with pytest.raises(QuotaError):  # into a new user: the export alone is over the limit
        run(_import(url, _document(_tasks(1, 4)), None, now=NOW, limits=limits))
    assert db.rows(COUNTS) == before  # no task, and no new user

    # finished tasks do not count: 1 + 2 active, and 2 completed
    run(_import(url, _document(_tasks(1, 2) + finished), ada, now=NOW, limits=limits))
    assert db.scalar("SELECT count(*) FROM ai_tasks") == 5


def test_imports_per_hour_are_limited_per_user(url: str, db: Db) -> None:
    manager = _manager(url)

    async def go() -> tuple[int, int]:
        return (await manager.create_user("Ada")).id, (await manager.create_user("Bob")).id

    ada, bob = run(go())
    limits = Limits(active_tasks=0, imports_per_hour=5)
    run(_import(url, _document(_tasks(1, 3)), ada, now=NOW, limits=limits))
    before = db.rows(COUNTS)
    later = NOW + timedelta(minutes=59)
    with pytest.raises(QuotaError) as caught:
        run(_import(url, _document(_tasks(4, 3)), ada, now=later, limits=limits))
    assert caught.value.field == "MAX_IMPORTS_PER_HOUR"
    assert caught.value.limit == 5
    assert "this file holds 3, after 3 tasks imported in the last hour" in caught.value.message
    assert db.rows(COUNTS) == before
    with pytest.raises(QuotaError):  # one file larger than the limit, into a new user
        run(_import(url, _document(_tasks(1, 6)), None, now=later, limits=limits))
    assert db.rows(COUNTS) == before

    run(_import(url, _document(_tasks(4, 3)), bob, now=later, limits=limits))  # per user
    deleted = "DELETE FROM ai_tasks WHERE user_id = :u"
    db.execute(deleted, u=ada)  # deleting what was imported gives no room back
    with pytest.raises(QuotaError):
        run(_import(url, _document(_tasks(4, 3)), ada, now=later, limits=limits))
    run(_import(url, _document(_tasks(4, 3)), ada, now=NOW + timedelta(hours=1), limits=limits))
    assert db.scalar("SELECT count(*) FROM ai_tasks WHERE user_id = :u", u=ada) == 3


def test_concurrent_creates_cannot_pass_the_limit(database_url: str) -> None:
    manager = _manager(database_url, MAX_ACTIVE_TASKS_PER_USER="5")

    async def go() -> list[object]:
        ada = await manager.create_user("Ada")
        attempts = [manager.create_task(ada.id, f"t{i}", schedule=DAILY) for i in range(20)]
        return await asyncio.gather(*attempts, return_exceptions=True)

    outcomes = run(go())
    refused = [o for o in outcomes if isinstance(o, QuotaError)]
    assert (len(outcomes) - len(refused), len(refused)) == (5, 15), outcomes
    db = Db(database_url)
    try:
        assert db.scalar("SELECT count(*) FROM ai_tasks") == 5
    finally:
        db.close()


def test_concurrent_imports_cannot_pass_the_limit(database_url: str) -> None:
    manager = _manager(database_url)
    ada = run(manager.create_user("Ada")).id
    limits = Limits(active_tasks=0, imports_per_hour=4)

    async def go() -> list[object]:
        engine = make_async_engine(database_url)
        try:
            attempts = [
                store.import_export(
                    engine, _document(_tasks(10 * i, 3)), user_id=ada, now=NOW, limits=limits
                )
                for i in range(1, 6)
            ]
            return await asyncio.gather(*attempts, return_exceptions=True)
        finally:
            await engine.dispose()

    outcomes = run(go())
    assert sum(isinstance(o, store.ImportReport) for o in outcomes) == 1, outcomes
    assert sum(isinstance(o, QuotaError) for o in outcomes) == 4, outcomes
    db = Db(database_url)
    try:
        assert db.scalar("SELECT count(*) FROM ai_tasks") == 3
    finally:
        db.close()


@pytest.mark.parametrize(("policy", "runs"), [("all", 1), ("once", 1), ("skip", 0)])
def test_an_import_five_days_late_owes_at_most_one_run(
    url: str, db: Db, policy: str, runs: int
) -> None:
    """An hourly task five days overdue: at most one catch-up run, not ``CATCHUP_LIMIT``.

    The import and the scheduler read the real clock; the task fires at half past the hour
    from now, so that no firing falls between the two readings.
    """
    started = datetime.now(UTC)
    created = started - timedelta(days=30) + timedelta(minutes=30)  # the interval's anchor
    late = started - timedelta(days=5, minutes=30)  # a firing, 120 firings ago
    doc = _document(
        [
            _task(
                1,
                next_run_at=late,
                catch_up=policy,
                created_at=_iso(created),
                updated_at=_iso(created),
            )
        ]
    )
    settings = Settings(DATABASE_URL=url)  # type: ignore[call-arg]

    async def go() -> int:
        engine = make_async_engine(url)
        try:
            report = await store.import_export(engine, doc)  # the defaults a caller gets
            await TaskScheduler(engine, settings, lambda ids: None).tick(datetime.now(UTC))
            return report.user_id
        finally:
            await engine.dispose()

    owner = run(go())
    task = db.scalar("SELECT id FROM ai_tasks WHERE user_id = :u", u=owner)
    states = [
        state for (state,) in db.rows("SELECT state FROM task_runs WHERE task_id = :t", t=task)
    ]
    assert (states.count("queued"), len(states)) == (runs, 1), states
    next_run = db.scalar("SELECT next_run_at FROM ai_tasks WHERE id = :t", t=task)
    assert next_run is not None
