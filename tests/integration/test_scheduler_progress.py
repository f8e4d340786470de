"""The scheduler makes progress on a live system: unsent runs, catch-up after downtime, contention.

* A run whose message was never published (``run_now``, a publish that failed after commit) is
  sent on the next tick, whatever waits in the run queue; so is a published run whose message the
  queue has moved past (a killed worker's unacknowledged message).
* Catch-up after days of downtime is planned outside the claim's transaction, so a claim is
  never killed by ``idle_in_transaction_session_timeout`` however much there is to plan.
* A tick that finds the due tasks locked by another scheduler waits a short while instead of
  spinning.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.runs.scheduler import TaskScheduler
from personal_assistant.tasks.manager import AITaskManager
from support.factories import user_with_tasks
from support.stack import Db, settings_for

pytestmark = pytest.mark.integration

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DUE = datetime(2026, 3, 1, 14, 0, 1, tzinfo=UTC)  # the daily 09:00 EST firing is due


class Sent:
    def __init__(self, fail: bool = False) -> None:
        self.ids: list[int] = []
        self.fail = fail

    def __call__(self, ids: Sequence[int]) -> None:
        if self.fail:
            raise ConnectionError("broker unreachable")
        self.ids.extend(ids)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for({"DATABASE_URL": database_url, "DISPATCH_LEASE": "60"})


def _scheduler_run(settings: Settings, sent: Sent, backlog: int, coro_name: str, now: datetime):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        engine = make_async_engine(settings.database_url)
        try:
            scheduler = TaskScheduler(engine, settings, sent, backlog=lambda: backlog)
            return await getattr(scheduler, coro_name)(now)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _user_and_task(settings: Settings, schedule: dict[str, object]) -> tuple[int, int]:
    user_id, (task_id,) = user_with_tasks(settings, created=CREATED, schedule=schedule)
    return user_id, task_id


def test_run_now_is_sent_on_the_next_tick_under_a_backlog(settings: Settings, db: Db) -> None:
    user_id, task_id = _user_and_task(settings, {"kind": "daily", "times": ["09:00"]})

    async def run_now() -> int:
        async with AITaskManager(settings, clock=lambda: DUE) as manager:
            return (await manager.run_now(task_id, user_id)).id

    run_id = asyncio.run(run_now())
    sent = Sent()
    # 10,000 messages wait in the run queue: the run_now run has none among them.
    _scheduler_run(settings, sent, 10_000, "dispatch_owed", DUE + timedelta(seconds=1))
    assert sent.ids == [run_id]
    assert db.scalar("SELECT published_at FROM task_runs WHERE id = :i", i=run_id) is not None


def test_a_publish_that_failed_after_commit_is_retried_on_the_next_tick(
    settings: Settings, db: Db
) -> None:
    _user_and_task(settings, {"kind": "daily", "times": ["09:00"]})
    with pytest.raises(ConnectionError):
        _scheduler_run(settings, Sent(fail=True), 0, "tick", DUE)
    assert db.scalar("SELECT count(*) FROM task_runs WHERE state = 'queued'") == 1
    sent = Sent()
    _scheduler_run(settings, sent, 10_000, "tick", DUE + timedelta(seconds=1))
    assert len(sent.ids) == 1
    assert db.scalar("SELECT published_at FROM task_runs") is not None


def test_a_message_the_queue_moved_past_is_sent_again_under_a_backlog(
    settings: Settings, db: Db
) -> None:
    _user_and_task(settings, {"kind": "daily", "times": ["09:00"]})
    sent = Sent()
    _scheduler_run(settings, sent, 0, "tick", DUE)
    (lost,) = sent.ids
    # A later run, published a minute after it, is already running: the queue is FIFO, so the
    # first run's message was taken (by a worker killed before it claimed the run) or lost.
    later_task = db.scalar("SELECT task_id FROM task_runs WHERE id = :i", i=lost)
    db.execute(
        "INSERT INTO task_runs (task_id, scheduled_for, state, attempt, queued_at, "
        "published_at, started_at, lease_expires_at, worker_id) VALUES "
        "(:t, :s, 'running', 1, :s, :p, :p, :l, 'w:1')",
        t=later_task,
        s=DUE + timedelta(minutes=1),
        p=DUE + timedelta(minutes=1),
        l=DUE + timedelta(minutes=5),
    )
    sent = Sent()
    _scheduler_run(settings, sent, 10_000, "dispatch_owed", DUE + timedelta(seconds=61))
    assert sent.ids == [lost]

    # Nothing later is running: its new message is presumed to wait in the queue.
    db.execute("UPDATE task_runs SET state = 'succeeded' WHERE state = 'running'")
    sent = Sent()
    _scheduler_run(settings, sent, 10_000, "dispatch_owed", DUE + timedelta(seconds=200))
    assert sent.ids == []


BUSINESS_HOURS = {"kind": "cron", "expression": "*/5 9-17 * * 1-5"}


def test_catch_up_after_days_of_downtime_makes_progress_under_a_short_margin(
    database_url: str, db: Db
) -> None:
    settings = settings_for(
        {"DATABASE_URL": database_url, "LEASE_MARGIN": "0.3", "SCHEDULER_BATCH": "60"}
    )

    async def create() -> None:
        async with AITaskManager(settings, clock=lambda: CREATED) as manager:
            user = await manager.create_user("T", timezone="America/New_York")
            for n in range(60):
                await manager.create_task(
                    user.id,
                    f"t{n}",
                    schedule=BUSINESS_HOURS,
                    catch_up=("skip", "once", "all")[n % 3],
                )

    asyncio.run(create())
    back = CREATED + timedelta(days=5)
    sent = Sent()
    for _ in range(20):
        if not db.scalar("SELECT count(*) FROM ai_tasks WHERE next_run_at <= :n", n=back):
            break
        try:
            _scheduler_run(settings, sent, 0, "tick", back)
        except Exception as exc:  # the claim killed by the idle-in-transaction limit
            print("tick failed:", type(exc).__name__)
    assert db.scalar("SELECT count(*) FROM ai_tasks WHERE next_run_at <= :n", n=back) == 0
    # Every task's catch-up is recorded: runs (once, all) or skipped firings (skip: all missed).
    assert db.scalar("SELECT count(DISTINCT task_id) FROM task_runs") == 60
    assert db.scalar("SELECT count(DISTINCT task_id) FROM task_runs WHERE state = 'queued'") == 40
    dupes = db.scalar(
        "SELECT count(*) FROM (SELECT task_id, scheduled_for FROM task_runs "
        "GROUP BY 1, 2 HAVING count(*) > 1) d"
    )
    assert dupes == 0


def test_a_tick_waits_instead_of_spinning_when_the_due_tasks_are_locked(
    settings: Settings, db: Db
) -> None:
    _user_and_task(settings, {"kind": "daily", "times": ["09:00"]})

    async def go() -> float:
        engine = make_async_engine(settings.database_url)
        try:
            async with engine.begin() as holder:  # another scheduler's claim, in progress
                from sqlalchemy import text

                await holder.execute(text("SELECT id FROM ai_tasks FOR NO KEY UPDATE"))
                scheduler = TaskScheduler(engine, settings, Sent(), backlog=lambda: 0)
                return await scheduler.tick(DUE)
        finally:
            await engine.dispose()

    delay = asyncio.run(go())
    assert 0 < delay <= settings.tick_seconds


def test_a_once_task_put_back_on_a_firing_that_ran_is_completed(settings: Settings, db: Db) -> None:
    at = DUE - timedelta(minutes=1)
    _user_and_task(settings, {"kind": "once", "at": at.isoformat()})
    _scheduler_run(settings, Sent(), 0, "tick", DUE)
    db.execute("UPDATE task_runs SET state = 'succeeded', finished_at = :t", t=DUE)
    # An edit that read an earlier "now" put the task back on the firing that already ran.
    db.execute("UPDATE ai_tasks SET status = 'active', next_run_at = :t", t=at)
    _scheduler_run(settings, Sent(), 0, "tick", DUE + timedelta(seconds=5))
    task = db.rows("SELECT status, next_run_at, status_reason FROM ai_tasks")[0]
    assert (task.status, task.next_run_at) == ("completed", None)
    assert task.status_reason == "its last firing already has a run"
    assert db.scalar("SELECT count(*) FROM task_runs") == 1
