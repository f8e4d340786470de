"""The Redis broker transport: a lost connection cannot make a worker exit.

Reproduces, on a throw-away ``redis-server`` that is killed, what a Celery worker's consumer
does when Redis goes away under load (``tests/chaos/test_redis_faults.py`` found it): two
channels each wait on a ``BRPOP``, one holds an unacknowledged message; Celery collects the
lost connection, closes it once more, and a task that finishes later acknowledges its message.
With kombu's own Redis transport the second close and the late ack raise ``AttributeError``
(the detached transport has no connection details), which Celery treats as unrecoverable.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue

from chaos.servers import RedisServer
from personal_assistant.workers.celery_app import REDIS_TRANSPORT

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if not RedisServer.available():
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing, and CI is set")
        pytest.skip("redis-server is missing")
    with RedisServer(tmp_path / "redis") as server:
        yield server


def test_lost_connection_closes_cleanly_and_a_late_ack_is_a_connection_error(
    redis_server: RedisServer,
) -> None:
    exchange = Exchange("x", type="direct")
    queues = [Queue(name, exchange, routing_key=name) for name in ("q1", "q2")]
    received: list[Any] = []
    conn = Connection(redis_server.url, transport=REDIS_TRANSPORT)
    try:
        channels = [conn.default_channel, conn.channel()]
        for channel, queue in zip(channels, queues, strict=True):
            consumer = conn.Consumer(
                [queue],
                channel=channel,
                callbacks=[lambda _body, message: received.append(message)],
            )
            consumer.consume()
        with conn.Producer() as producer:
            producer.publish(
                {"run_ids": [1]}, exchange=exchange, routing_key="q1", declare=[queues[0]]
            )
        conn.drain_events(timeout=5)
        assert len(received) == 1  # delivered, not acknowledged (late acks)
        for channel in channels:
            # As the worker's event loop does (kombu's Redis channel): a BRPOP in flight on each.
            channel._brpop_start()  # type: ignore[attr-defined]  # typed as the base channel

        redis_server.kill()
        conn.collect(socket_timeout=1)  # Celery, on losing the connection...
        conn.close()  # ...then closes it once more: no AttributeError

        with pytest.raises(conn.connection_errors):
            received[0].ack()  # a task finishing after the loss: "Couldn't ack", logged
    finally:
        conn.release()
