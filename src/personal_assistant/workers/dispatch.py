"""Sending runs to the workers: many run ids per message, many messages per round trip.

Messages are sent by task name (``send_task``), routed by the routing table, so a process
that only publishes (beat, a scheduler) does not import the task modules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from personal_assistant.workers.routing import queue_for

log = logging.getLogger(__name__)

EXECUTE = "personal_assistant.workers.tasks.ai_tasks.execute_ai_task"
DELIVER = "personal_assistant.workers.tasks.email_tasks.deliver_notifications"


def chunks(ids: Sequence[int], size: int) -> list[list[int]]:
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def publish_runs(app: Celery, run_ids: Sequence[int], *, per_message: int) -> int:
    """Send ``execute_ai_task`` messages for ``run_ids``; returns the number of messages."""
    messages = chunks(list(run_ids), per_message)
    if not messages:
        return 0
    with app.producer_or_acquire() as producer, producer.batch(max_size=1000):
        for ids in messages:
            # Results live in the database: no result subscription, and a short argsrepr
            # instead of a printable copy of every id list.
            app.send_task(
                EXECUTE,
                args=[ids],
                producer=producer,
                ignore_result=True,
                argsrepr=f"[{len(ids)} run ids]",
            )
    return len(messages)


def run_publisher(app: Celery, *, per_message: int) -> Callable[[Sequence[int]], None]:
    """A ``publish`` for :class:`TaskScheduler`: sends run ids through ``app``."""

    def publish(run_ids: Sequence[int]) -> None:
        publish_runs(app, run_ids, per_message=per_message)

    return publish


def waiting_runs(app: Celery) -> int | None:
    """How many ``execute_ai_task`` messages wait in the broker; None if it cannot be read.

    A queue declaration answers with the queue's depth on every kombu transport (on Redis, the
    length of the queue's list; declaring an existing queue changes nothing). Not a passive
    one: kombu's Redis transport checks that the list exists without the key prefix
    (``REDIS_KEY_PREFIX``), so with a prefix it always reports "no such queue".
    """
    queue = queue_for(EXECUTE)
    try:
        with app.connection_or_acquire() as conn:
            # A hint, not worth waiting for: one try, not the pool's retries over seconds.
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=1)
            # kombu's StdChannel type omits queue_declare, which every transport's channel has.
            channel: Any = conn.default_channel
            declared = channel.queue_declare(queue=queue)
    except (OperationalError, RedisError, OSError) as exc:
        log.warning("event=backlog_unknown queue=%s error=%s", queue, type(exc).__name__)
        return None
    return int(declared.message_count)


def run_backlog(app: Celery) -> Callable[[], int | None]:
    """A ``backlog`` for :class:`TaskScheduler`: the run messages waiting in ``app``'s broker."""
    return lambda: waiting_runs(app)


def publish_notifications(app: Celery, notification_ids: Sequence[int]) -> None:
    if notification_ids:
        app.send_task(DELIVER, args=[list(notification_ids)], ignore_result=True)
