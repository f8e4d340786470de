"""Items pushed onto a queue by hand cannot stop a worker (issue 10, item 8).

Whoever can write to Redis can ``LPUSH`` anything onto ``<prefix>ai_tasks``. Before the fix, one
non-JSON item (a pickle, a line of text) made a real worker exit with "Unrecoverable error:
JSONDecodeError", and 17 more of the items of :mod:`support.poison` made it exit or reconnect
for ever. Each is pushed here ahead of a valid run: the worker must refuse each one, log it
without its content, and then run the valid run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kombu import Connection, Exchange, Queue

from personal_assistant.tasks.manager import AITaskManager
from personal_assistant.workers.celery_app import REDIS_TRANSPORT
from support.poison import BIG, CELERY, SECRET, TRANSPORT
from support.processes import ProcessGroup, wait_until
from support.services import REDIS_URL
from support.stack import Db, client_app, run, send_runs, settings_for

pytestmark = pytest.mark.integration

#: The hostile items add up to ~4 MB; what the worker logs about them stays far below that.
LOG_BOUND = 64 * 1024


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    handle = redis.Redis.from_url(REDIS_URL)
    yield handle
    handle.close()


def _queued_run(env: dict[str, str]) -> int:
    async def setup() -> int:
        async with AITaskManager(settings_for(env)) as manager:
            user = await manager.create_user("Ada")
            task = await manager.create_task(
                user.id, "Still here", schedule={"kind": "daily", "times": ["04:00"]}
            )
            return (await manager.run_now(task.id, user.id)).id

    return run(setup())


@pytest.mark.parametrize(
    ("layer", "items", "event"),
    [
        ("transport", TRANSPORT, "event=broker_message_refused"),
        ("celery", CELERY, "event=task_message_refused"),
    ],
    ids=["transport", "celery"],
)
def test_a_worker_refuses_hostile_items_and_runs_the_next_valid_run(
    layer: str,
    items: dict[str, bytes],
    event: str,
    stack_env: dict[str, str],
    redis_prefix: str,
    processes: ProcessGroup,
    db: Db,
    client: redis.Redis,
) -> None:
    run_id = _queued_run(stack_env)
    queue = f"{redis_prefix}ai_tasks"
    for item in items.values():
        client.lpush(queue, item)  # BRPOP pops from the right: the order they were pushed in
    send_runs(client_app(settings_for(stack_env)), [run_id])
    assert client.llen(queue) == len(items) + 1

    worker = processes.worker(stack_env)
    wait_until(
        lambda: (
            worker.poll() is not None
            or db.scalar("SELECT state FROM task_runs WHERE id = :r", r=run_id) == "succeeded"
        ),
        timeout=60,
        message="the valid run to succeed, or the worker to exit",
    )
    log = processes.log("worker")
    assert worker.poll() is None, f"the worker exited ({layer}):\n{log[-3000:]}"
    assert "Unrecoverable error" not in log
    assert "Connection to broker lost" not in log  # a refusal is not a reconnect
    assert db.scalar("SELECT state FROM task_runs WHERE id = :r", r=run_id) == "succeeded"
    assert client.llen(queue) == 0
    wait_until(
        lambda: client.hlen(f"{redis_prefix}unacked") == 0,
        timeout=15,
        message="nothing left unacknowledged",
    )

    refusals = [line for line in log.splitlines() if event in line]
    assert len(refusals) == len(items), "\n".join(refusals)
    assert all("bytes=" in line and "sha256=" in line for line in refusals)
    assert SECRET not in log
    assert len(log) < LOG_BOUND < BIG


def test_the_channel_drops_what_is_not_an_envelope_and_delivers_the_next_message(
    redis_prefix: str, client: redis.Redis
) -> None:
    """kombu's Redis channel alone (a plain ``drain_events``, no Celery, no event loop)."""
    exchange = Exchange("personal_assistant", type="direct")
    queue = Queue("ai_tasks", exchange, routing_key="ai_tasks")
    received: list[Any] = []
    conn = Connection(
        REDIS_URL,
        transport=REDIS_TRANSPORT,
        transport_options={"global_keyprefix": redis_prefix},
    )
    try:
        consumer = conn.Consumer(
            [queue], callbacks=[lambda body, message: received.append((body, message))]
        )
        consumer.consume()
        for item in TRANSPORT.values():
            client.lpush(f"{redis_prefix}ai_tasks", item)
        with conn.Producer() as producer:
            producer.publish({"run_ids": [7]}, exchange=exchange, routing_key="ai_tasks")

        def delivered() -> bool:
            with contextlib.suppress(TimeoutError):
                conn.drain_events(timeout=0.5)
            return bool(received)

        wait_until(delivered, timeout=20, message="the valid message after the hostile ones")
        body, message = received[0]
        assert body == {"run_ids": [7]}
        message.ack()
        assert client.llen(f"{redis_prefix}ai_tasks") == 0
    finally:
        conn.release()
