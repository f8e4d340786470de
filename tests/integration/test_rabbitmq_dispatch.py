"""The scheduler on a RabbitMQ broker: reading the run queue's depth must not break a tick.

Celery declares ``ai_tasks`` durable; re-declaring it with other arguments makes RabbitMQ answer
``PRECONDITION_FAILED - inequivalent arg 'durable'`` and close the channel. Before the fix the
first check for owed runs raised it from ``tick`` and every later tick failed, so queued runs
stayed queued. The check holds on classic and on quorum queues (``BROKER_QUORUM_QUEUES``). Each
test gets a RabbitMQ virtual host of its own (:func:`support.rabbitmq.vhost`), deleted after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.runs.scheduler import TaskScheduler
from personal_assistant.workers.dispatch import run_backlog, run_publisher, waiting_runs
from support import rabbitmq
from support.factories import user_with_tasks
from support.rabbitmq import AMQP_HOST
from support.stack import Db, client_app, settings_for

pytestmark = pytest.mark.integration

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FIRST_TICK = datetime(2026, 3, 1, 14, 0, 1, tzinfo=UTC)  # the daily 09:00 EST firing is due


@pytest.fixture
def amqp_url() -> Iterator[str]:
    """A broker URL on a virtual host of this test's own, deleted afterwards."""
    with rabbitmq.vhost() as url:
        yield url


@pytest.fixture
def quorum() -> bool:
    """Declare the queues as quorum queues (``BROKER_QUORUM_QUEUES``); a test may say so."""
    return False


@pytest.fixture
def settings(database_url: str, amqp_url: str, tmp_path: Path, quorum: bool) -> Settings:
    return settings_for(
        {
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": amqp_url,
            "PA_HOME": str(tmp_path),
            "DISPATCH_LEASE": "60",
            "BROKER_QUORUM_QUEUES": str(quorum),
        }
    )


def _create_due_task(settings: Settings) -> None:
    user_with_tasks(settings, created=CREATED)


def _ticks(settings: Settings, app: Celery, times: list[datetime]) -> None:
    """One scheduler (one app, one engine, as in beat) ticking at each of ``times``."""

    async def go() -> None:
        engine = make_async_engine(settings.database_url)
        publish = run_publisher(app, per_message=settings.runs_per_message)
        scheduler = TaskScheduler(engine, settings, publish, backlog=run_backlog(app))
        try:
            for now in times:
                await scheduler.tick(now)
        finally:
            await engine.dispose()

    asyncio.run(go())


def _depth(app: Celery) -> int:
    """The run queue's depth, asked the way RabbitMQ allows: a passive declare."""
    with app.connection_for_read() as conn, conn.channel() as channel:
        amqp_channel: Any = channel  # kombu's StdChannel type omits what AMQP channels have
        return int(amqp_channel.queue_declare(queue="ai_tasks", passive=True).message_count)


def _purge(app: Celery) -> None:
    """Empty the run queue (of this test's own virtual host): the message is lost."""
    with app.connection_for_write() as conn, conn.channel() as channel:
        amqp_channel: Any = channel
        amqp_channel.queue_purge("ai_tasks")


@pytest.mark.parametrize("quorum", [False, True], ids=["classic", "quorum"])
def test_owed_runs_are_checked_tick_after_tick_on_rabbitmq(
    settings: Settings, database_url: str, amqp_url: str, quorum: bool
) -> None:
    app = client_app(settings)
    db = Db(database_url)
    try:
        _create_due_task(settings)
        _ticks(settings, app, [FIRST_TICK])
        assert _depth(app) == 1  # sent to the durable queue Celery declared; nobody consumes
        assert rabbitmq.queue_types(amqp_url)["ai_tasks"] == ("quorum" if quorum else "classic")

        # Its lease expired with its message still waiting: several ticks read the depth, each
        # renews the lease instead of sending a copy, and none fails.
        later = [FIRST_TICK + timedelta(seconds=s) for s in (61, 62, 125, 190)]
        _ticks(settings, app, later)
        assert waiting_runs(app) == _depth(app) == 1
        assert db.scalar("SELECT state FROM task_runs") == "queued"
        lease = db.scalar("SELECT lease_expires_at FROM task_runs")
        assert lease == FIRST_TICK + timedelta(seconds=250)

        # The message is lost: after the lease, the run is sent again, on the same app.
        _purge(app)
        assert waiting_runs(app) == 0
        _ticks(settings, app, [FIRST_TICK + timedelta(seconds=251), lease + timedelta(seconds=2)])
        assert _depth(app) == 1
        assert db.scalar("SELECT count(*) FROM task_runs") == 1
    finally:
        db.close()


def test_waiting_runs_is_unknown_not_an_error_when_rabbitmq_refuses(
    settings: Settings, amqp_url: str, tmp_path: Path
) -> None:
    app = client_app(settings)
    assert waiting_runs(app) == 0  # the queue does not exist yet: nothing waits in it
    run_publisher(app, per_message=2)([1, 2, 3])
    assert waiting_runs(app) == 2
    unreachable = settings_for(
        {
            "DATABASE_URL": settings.database_url,
            "CELERY_BROKER_URL": f"amqp://guest:guest@{AMQP_HOST}:1//",
            "PA_HOME": str(tmp_path),
        }
    )
    assert waiting_runs(client_app(unreachable)) is None
    refused = settings_for(
        {
            "DATABASE_URL": settings.database_url,
            "CELERY_BROKER_URL": amqp_url.replace("guest:guest", "guest:wrong"),
            "PA_HOME": str(tmp_path),
        }
    )
    assert waiting_runs(client_app(refused)) is None
