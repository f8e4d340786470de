"""The whole path on the real stack: PostgreSQL, a broker, and worker and beat processes.

Every test runs on each broker: Redis, and RabbitMQ (``CELERY_BROKER_URL=amqp://``, a virtual
host of the test's own), the first test with quorum queues (``BROKER_QUORUM_QUEUES``), the
others with classic queues. Only the broker changes: the result backend is Redis in each.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from personal_assistant.tasks.manager import AITaskManager
from personal_assistant.workers.routing import QUEUES
from support import rabbitmq
from support.processes import ProcessGroup, wait_until
from support.services import REDIS_URL
from support.stack import Db, client_app, run, send_runs, settings_for

pytestmark = pytest.mark.integration

RUN_QUEUE = "ai_tasks"


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest) -> str:
    """The broker the test runs on (a test may list its own)."""
    return str(request.param)


@pytest.fixture
def env(broker: str, stack_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The stack's environment, on ``broker``."""
    if broker == "redis":
        yield stack_env
        return
    with rabbitmq.vhost() as url:
        quorum = "true" if broker == "rabbitmq-quorum" else "false"
        yield {**stack_env, "CELERY_BROKER_URL": url, "BROKER_QUORUM_QUEUES": quorum}


@pytest.fixture
def db(database_url: str) -> Iterator[Db]:
    handle = Db(database_url)
    yield handle
    handle.close()


def _waiting_messages(env: dict[str, str]) -> int:
    """Messages waiting in the run queue of ``env``'s broker."""
    if "CELERY_BROKER_URL" in env:
        return rabbitmq.depth(env["CELERY_BROKER_URL"], RUN_QUEUE)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return int(client.llen(f"{env['REDIS_KEY_PREFIX']}{RUN_QUEUE}"))
    finally:
        client.close()


def _lose_waiting_messages(env: dict[str, str]) -> int:
    """Drop what waits in the run queue, as a flushed Redis or a purged queue would."""
    if "CELERY_BROKER_URL" in env:
        return rabbitmq.purge(env["CELERY_BROKER_URL"], RUN_QUEUE)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return int(client.delete(f"{env['REDIS_KEY_PREFIX']}{RUN_QUEUE}"))  # the list: 1 key
    finally:
        client.close()


def _manager(env: dict[str, str]) -> AITaskManager:
    return AITaskManager(settings_for(env))


def _soon(seconds: float = 1.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


@pytest.mark.parametrize("broker", ["redis", "rabbitmq-quorum"])
def test_task_fires_succeeds_and_notifies(
    env: dict[str, str], processes: ProcessGroup, db: Db, broker: str
) -> None:
    async def setup() -> tuple[int, int]:
        async with _manager(env) as manager:
            user = await manager.create_user("Ada", timezone="Europe/Paris")
            task = await manager.create_task(
                user.id,
                "Drink water",
                description="A glass, now.",
                schedule={"kind": "once", "at": _soon(1.5)},
            )
            return user.id, task.id

    user_id, task_id = run(setup())
    processes.worker(env)
    processes.beat(env)

    state = wait_until(
        lambda: (
            db.scalar("SELECT state FROM task_runs WHERE task_id = :t", t=task_id) == "succeeded"
        ),
        timeout=30,
        message="the run to succeed",
    )
    assert state
    run_row = db.rows(
        "SELECT attempt, result, agent_name, started_at, scheduled_for "
        "FROM task_runs WHERE task_id = :t",
        t=task_id,
    )
    assert len(run_row) == 1
    attempt, result, agent, started_at, scheduled_for = run_row[0]
    assert attempt == 1 and agent == "offline"
    assert "Drink water" in result and "Europe/Paris" in result
    assert started_at >= scheduled_for
    notes = db.rows(
        "SELECT channel, status, title, body FROM notifications WHERE user_id = :u", u=user_id
    )
    assert notes == [("in_app", "delivered", "Drink water", result)]
    assert db.scalar("SELECT status FROM ai_tasks WHERE id = :t", t=task_id) == "completed"
    # Its start-up objects out of the collector's way, before its pool and once ready.
    frozen = re.search(r"objects_frozen before_pool=(\d+) ready=(\d+)", processes.log("worker"))
    assert frozen is not None and 0 < int(frozen[1]) <= int(frozen[2])
    if broker == "rabbitmq-quorum":
        types = rabbitmq.queue_types(env["CELERY_BROKER_URL"])
        assert {q: types.get(q) for q in QUEUES} == dict.fromkeys(QUEUES, "quorum")
        assert "Global QoS is disabled" in processes.log("worker")  # per-consumer prefetch


def test_failures_retry_then_fail_and_pause_the_task(
    env: dict[str, str], processes: ProcessGroup, db: Db
) -> None:
    env = {**env, "PAUSE_AFTER_FAILURES": "2"}

    async def setup() -> tuple[int, int]:
        async with _manager(env) as manager:
            user = await manager.create_user("Bob")
            task = await manager.create_task(
                user.id,
                "Flaky check",
                task_type="automated_task",
                max_retries=2,
                ai_context={"simulate_failure": "upstream is down"},
                schedule={"kind": "daily", "times": ["03:00"]},
            )
            await manager.run_now(task.id, user.id)
            return user.id, task.id

    user_id, task_id = run(setup())
    processes.worker(env)
    processes.beat(env)

    wait_until(
        lambda: (
            db.scalar(
                "SELECT count(*) FROM task_runs WHERE task_id = :t AND state = 'failed'", t=task_id
            )
            == 1
        ),
        timeout=30,
        message="the first run to fail",
    )
    first = db.rows("SELECT attempt, error FROM task_runs WHERE task_id = :t", t=task_id)
    assert first[0][0] == 3  # the first attempt and max_retries=2 retries
    assert first[0][1] == "failed after 3 attempts: simulated failure: upstream is down"
    assert db.scalar("SELECT status FROM ai_tasks WHERE id = :t", t=task_id) == "active"

    async def again() -> None:
        async with _manager(env) as manager:
            await manager.run_now(task_id, user_id)

    run(again())
    wait_until(
        lambda: db.scalar("SELECT status FROM ai_tasks WHERE id = :t", t=task_id) == "paused",
        timeout=30,
        message="the task to be paused",
    )
    status_reason, failures = db.rows(
        "SELECT status_reason, consecutive_failures FROM ai_tasks WHERE id = :t", t=task_id
    )[0]
    assert failures == 2
    assert status_reason.startswith("paused after 2 consecutive failed runs")
    states = [r[0] for r in db.rows("SELECT state FROM task_runs WHERE task_id = :t", t=task_id)]
    assert states == ["failed", "failed"]
    notes = db.rows("SELECT title, body FROM notifications WHERE task_id = :t", t=task_id)
    assert len(notes) == 2
    assert all(t == "Failed: Flaky check" and "upstream is down" in b for t, b in notes)
    assert db.scalar("SELECT count(*) FROM task_runs WHERE state = 'succeeded'") == 0


def test_run_whose_message_was_lost_is_resent_and_succeeds(
    env: dict[str, str], processes: ProcessGroup, db: Db
) -> None:
    async def setup() -> int:
        async with _manager(env) as manager:
            user = await manager.create_user("Cy")
            task = await manager.create_task(
                user.id, "Lost and found", schedule={"kind": "once", "at": _soon(0.5)}
            )
            return task.id

    task_id = run(setup())
    processes.beat(env)  # no worker yet: the message waits in the broker
    wait_until(lambda: _waiting_messages(env) >= 1, timeout=20, message="the message in the broker")
    processes.kill("beat")
    assert _lose_waiting_messages(env) == 1  # the message is lost
    assert db.scalar("SELECT state FROM task_runs WHERE task_id = :t", t=task_id) == "queued"

    processes.beat(env, name="beat2")
    processes.worker(env)
    wait_until(
        lambda: (
            db.scalar("SELECT state FROM task_runs WHERE task_id = :t", t=task_id) == "succeeded"
        ),
        timeout=30,
        message="the re-sent run to succeed",
    )
    assert db.scalar("SELECT attempt FROM task_runs WHERE task_id = :t", t=task_id) == 1
    # Re-sent by beat2's tick or by the reaper on the worker, whichever looked first (the
    # worker's reaper won once in CI on RabbitMQ).
    assert "event=runs_dispatched" in processes.log("beat2") + processes.log("worker")


def test_same_run_delivered_twice_executes_once(
    env: dict[str, str], processes: ProcessGroup, db: Db
) -> None:
    async def setup() -> tuple[int, int]:
        async with _manager(env) as manager:
            user = await manager.create_user("Dee")
            task = await manager.create_task(
                user.id, "Once only", schedule={"kind": "daily", "times": ["04:00"]}
            )
            run_row = await manager.run_now(task.id, user.id)
            return task.id, run_row.id

    task_id, run_id = run(setup())
    app = client_app(settings_for(env))
    send_runs(app, [run_id])
    send_runs(app, [run_id])
    processes.worker(env)
    wait_until(
        lambda: db.scalar("SELECT state FROM task_runs WHERE id = :r", r=run_id) == "succeeded",
        timeout=30,
        message="the run to succeed",
    )
    wait_until(
        lambda: "event=runs_not_claimed" in processes.log("worker"),
        timeout=15,
        message="the second delivery to be refused",
    )
    assert db.scalar("SELECT attempt FROM task_runs WHERE id = :r", r=run_id) == 1
    assert db.scalar("SELECT count(*) FROM notifications WHERE run_id = :r", r=run_id) == 1
    assert db.scalar("SELECT count(*) FROM task_runs WHERE task_id = :t", t=task_id) == 1
