"""``TaskScheduler.tick(now)`` as a step, on both backends, with a chosen ``now``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.runs.scheduler import TaskScheduler
from personal_assistant.tasks.manager import AITaskManager
from support.stack import Db

pytestmark = pytest.mark.integration

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(url: str) -> Iterator[Db]:
    handle = Db(url)
    yield handle
    handle.close()


class Harness:
    def __init__(self, url: str) -> None:
        self.settings = Settings(DATABASE_URL=url, SCHEDULER_TICK_SECONDS="0.5")  # type: ignore[call-arg]
        self.published: list[int] = []

    def publish(self, ids: Sequence[int]) -> None:
        self.published.extend(ids)

    def create(self, schedule: dict[str, Any], **kwargs: Any) -> int:
        async def go() -> int:
            manager = AITaskManager(self.settings, clock=lambda: CREATED)
            user = await manager.create_user("T", timezone="America/New_York")
            task = await manager.create_task(user.id, "t", schedule=schedule, **kwargs)
            return task.id

        return asyncio.run(go())

    def tick(self, now: datetime) -> float:
        async def go() -> float:
            engine = make_async_engine(self.settings.database_url)
            try:
                return await TaskScheduler(engine, self.settings, self.publish).tick(now)
            finally:
                await engine.dispose()

        return asyncio.run(go())


def test_nothing_due_returns_time_until_next_capped(url: str, db: Db) -> None:
    h = Harness(url)
    h.create({"kind": "daily", "times": ["09:00"]})  # 14:00 UTC, 2026-03-01 (EST)
    assert h.tick(datetime(2026, 3, 1, 13, 59, 59, 800_000, tzinfo=UTC)) == pytest.approx(0.2)
    assert h.tick(datetime(2026, 3, 1, 13, 0, tzinfo=UTC)) == 0.5
    assert h.published == []
    assert db.scalar("SELECT count(*) FROM task_runs") == 0


def test_due_task_gets_one_run_and_advances(url: str, db: Db) -> None:
    h = Harness(url)
    task_id = h.create({"kind": "daily", "times": ["09:00"]})
    now = datetime(2026, 3, 1, 14, 0, 0, 300_000, tzinfo=UTC)
    h.tick(now)
    h.tick(now + timedelta(seconds=1))  # a second tick finds nothing new
    rows = db.rows("SELECT id, state FROM task_runs")
    assert [r[1] for r in rows] == ["queued"]
    assert h.published == [rows[0][0]]
    nxt = db.scalar("SELECT next_run_at FROM ai_tasks WHERE id = :t", t=task_id)
    assert str(nxt).startswith("2026-03-02 14:00:00")


@pytest.mark.parametrize(
    ("policy", "queued"),
    [("skip", []), ("once", ["2026-03-09 13:00"]), ("all", ["*"])],
)
def test_catch_up_after_downtime_across_dst(
    url: str, db: Db, policy: str, queued: list[str]
) -> None:
    h = Harness(url)
    h.create({"kind": "daily", "times": ["09:00"]}, catch_up=policy)
    # Down for nine days from before the first firing (2026-03-01 09:00 EST) until
    # 2026-03-10 08:00 EDT, across the DST change of the 8th: nine firings were missed.
    h.tick(datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
    got = [
        (str(r[0])[:16], r[1])
        for r in db.rows("SELECT scheduled_for, state FROM task_runs ORDER BY scheduled_for")
    ]
    assert [when for when, _ in got] == [f"2026-03-0{d} 14:00" for d in range(1, 8)] + [
        "2026-03-08 13:00",
        "2026-03-09 13:00",
    ]
    expected_queued = [w for w, _ in got] if queued == ["*"] else queued
    assert [w for w, state in got if state == "queued"] == expected_queued
    assert all(state in ("queued", "skipped") for _, state in got)
    assert len(h.published) == len(expected_queued)


def test_task_with_a_broken_schedule_is_failed_not_fatal(url: str, db: Db) -> None:
    h = Harness(url)
    bad = h.create({"kind": "daily", "times": ["09:00"]})
    good = h.create({"kind": "daily", "times": ["09:00"]})
    db.execute(
        "UPDATE ai_tasks SET schedule = :s WHERE id = :t",
        s='{"kind": "daily", "times": ["09:00"], "timezone": "Nowhere/Land"}',
        t=bad,
    )
    h.tick(datetime(2026, 3, 1, 14, 0, 1, tzinfo=UTC))
    assert db.rows("SELECT id, status FROM ai_tasks ORDER BY id") == [
        (bad, "failed"),
        (good, "active"),
    ]
    reason = db.scalar("SELECT status_reason FROM ai_tasks WHERE id = :t", t=bad)
    assert reason.startswith("invalid schedule: schedule.timezone")
    assert db.scalar("SELECT count(*) FROM task_runs WHERE task_id = :t", t=good) == 1


def test_owed_runs_are_resent_when_their_lease_expires(url: str, db: Db) -> None:
    h = Harness(url)
    h.create({"kind": "daily", "times": ["09:00"]})
    now = datetime(2026, 3, 1, 14, 0, 1, tzinfo=UTC)
    h.tick(now)
    first = list(h.published)
    h.tick(now + timedelta(seconds=30))  # lease (60 s) still held: nothing re-sent
    assert h.published == first
    h.tick(now + timedelta(seconds=61))
    assert h.published == first + first
    assert db.scalar("SELECT state FROM task_runs") == "queued"


def test_one_shot_task_whose_only_firing_is_skipped_completes(url: str, db: Db) -> None:
    h = Harness(url)
    task_id = h.create({"kind": "once", "at": "2026-03-02T09:00"}, catch_up="skip")
    h.tick(datetime(2026, 3, 5, 12, 0, tzinfo=UTC))  # the scheduler was down for days
    assert db.scalar("SELECT state FROM task_runs") == "skipped"
    status, reason = db.rows("SELECT status, status_reason FROM ai_tasks WHERE id = :t", t=task_id)[
        0
    ]
    assert status == "completed" and "skipped" in reason
    assert h.published == []
