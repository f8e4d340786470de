"""Sending runs to the workers: many run ids per message, many messages per round trip.

Messages are sent by task name (``send_task``), routed by the routing table, so a process
that only publishes (beat, a scheduler) does not import the task modules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from celery import Celery

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


def publish_notifications(app: Celery, notification_ids: Sequence[int]) -> None:
    if notification_ids:
        app.send_task(DELIVER, args=[list(notification_ids)], ignore_result=True)
