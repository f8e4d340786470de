"""Re-dispatch of unclaimed runs against a real Redis: only a lost message is sent again.

A queued run whose dispatch lease expired is sent again only when no message waits in the run
queue: while some wait (a burst, workers down), its own is presumed among them and its lease is
renewed. Before this, a backlog longer than ``DISPATCH_LEASE`` got a copy of every waiting run
per lease from every scheduler (``tests/chaos/test_many_schedulers.py``: 106,000 run ids re-sent
for a burst of 10,000 runs).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.runs.scheduler import TaskScheduler
from personal_assistant.workers.dispatch import run_backlog, run_publisher, waiting_runs
from support.factories import user_with_tasks
from support.services import REDIS_URL
from support.stack import Db, client_app, settings_for

pytestmark = pytest.mark.integration

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FIRST_TICK = datetime(2026, 3, 1, 14, 0, 1, tzinfo=UTC)  # the daily 09:00 EST firing is due


@pytest.fixture
def settings(database_url: str, redis_prefix: str) -> Settings:
    return settings_for(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "REDIS_KEY_PREFIX": redis_prefix,
            "DISPATCH_LEASE": "60",
        }
    )


@pytest.fixture
def queue(redis_prefix: str) -> Iterator[tuple[redis.Redis, str]]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client, f"{redis_prefix}ai_tasks"
    client.close()


def _tick(settings: Settings, now: datetime) -> None:
    app = client_app(settings)

    async def go() -> None:
        engine = make_async_engine(settings.database_url)
        publish = run_publisher(app, per_message=settings.runs_per_message)
        try:
            await TaskScheduler(engine, settings, publish, backlog=run_backlog(app)).tick(now)
        finally:
            await engine.dispose()

    asyncio.run(go())


def _create_due_task(settings: Settings) -> None:
    user_with_tasks(settings, created=CREATED)


def test_waiting_runs_counts_the_messages_of_the_run_queue(
    settings: Settings, queue: tuple[redis.Redis, str]
) -> None:
    app = client_app(settings)
    assert waiting_runs(app) == 0
    run_publisher(app, per_message=2)([1, 2, 3, 4, 5])
    client, key = queue
    assert waiting_runs(app) == client.llen(key) == 3
    unreachable = {"DATABASE_URL": settings.database_url, "REDIS_URL": "redis://127.0.0.1:1/0"}
    assert waiting_runs(client_app(settings_for(unreachable))) is None


def test_unclaimed_run_is_resent_only_when_its_message_is_gone(
    settings: Settings, database_url: str, queue: tuple[redis.Redis, str]
) -> None:
    client, key = queue
    db = Db(database_url)
    _create_due_task(settings)
    _tick(settings, FIRST_TICK)
    assert client.llen(key) == 1  # sent; no worker consumes here

    # Its lease has expired, but its message still waits in the queue: no copy, lease renewed.
    _tick(settings, FIRST_TICK + timedelta(seconds=61))
    assert client.llen(key) == 1
    lease = db.scalar("SELECT lease_expires_at FROM task_runs")
    assert lease == FIRST_TICK + timedelta(seconds=121)

    # The message is lost (Redis flushed): at the end of the renewed lease, it is sent again.
    client.delete(key)
    _tick(settings, FIRST_TICK + timedelta(seconds=100))
    assert client.llen(key) == 0
    _tick(settings, FIRST_TICK + timedelta(seconds=122))
    assert client.llen(key) == 1
    assert db.scalar("SELECT state FROM task_runs") == "queued"

    # A retry that is due has no message yet: it is sent whatever waits in the queue.
    db.execute("UPDATE task_runs SET state = 'retrying', lease_expires_at = :t", t=FIRST_TICK)
    _tick(settings, FIRST_TICK + timedelta(seconds=130))
    assert client.llen(key) == 2
    db.close()
