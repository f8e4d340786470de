"""Celery settings that depend on which broker the deployment runs (Redis, RabbitMQ, embedded).

:func:`broker_options` is merged last into :func:`~.celery_app.celery_config`;
:func:`queue_arguments` are the arguments every one of the five queues is declared with. Redis
and the embedded broker get nothing here (their transport options are set in ``celery_app``).
On RabbitMQ (``amqp://``, ``amqps://``, ``pyamqp://``):

* **Publisher confirms**, always. Without them kombu's pyamqp transport returns once the message
  is written to the socket: a message RabbitMQ refuses, or loses because it died a moment later,
  leaves a run marked as sent that waits ``DISPATCH_LEASE`` for nothing. With them a publish
  returns once RabbitMQ has taken the message into the durable queue, and a refusal raises, so
  the run stays unsent and goes out on the next tick. The cost is one round trip per message,
  not per run: a message carries up to ``RUNS_PER_MESSAGE`` run ids.
* **Quorum queues** when ``BROKER_QUORUM_QUEUES`` is set: the five queues are declared
  ``x-queue-type: quorum`` (replicated, they survive the loss of a minority of nodes) with a
  delivery limit. Quorum queues refuse a channel-wide (global) prefetch limit, so Celery must
  give each consumer its own (``worker_detect_quorum_queues``). Their trade-offs are in
  docs/howto-rabbitmq.md: no priorities before RabbitMQ 4.0, a message returned more than
  :data:`QUORUM_DELIVERY_LIMIT` times is dropped.

Existing queues keep the arguments they were declared with: RabbitMQ refuses to declare them
again with others (``PRECONDITION_FAILED``), so switching queue types needs new queues (a new
virtual host, or the old queues deleted once drained).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from personal_assistant.config import AMQP_SCHEMES, Settings

#: How many times a quorum queue hands out one message before dropping it (RabbitMQ 4's default).
#: A message comes back when the worker holding it dies or loses its connection; one that keeps
#: coming back is dropped, and the runs it carried are sent again from the database (the
#: scheduler re-sends ``queued`` runs after ``DISPATCH_LEASE``, the reaper retries ``running``
#: ones whose lease ran out).
QUORUM_DELIVERY_LIMIT = 20


def is_amqp(broker_url: str) -> bool:
    """Is the broker RabbitMQ (an AMQP 0-9-1 URL kombu serves with py-amqp)?"""
    return urlsplit(broker_url).scheme.lower() in AMQP_SCHEMES


def broker_options(settings: Settings) -> dict[str, Any]:
    """Extra Celery settings for the configured broker (pure)."""
    if not is_amqp(settings.broker_url):
        return {}
    # Replaces celery_config's transport options, which are empty for AMQP.
    options: dict[str, Any] = {"broker_transport_options": {"confirm_publish": True}}
    if settings.broker_quorum_queues:
        options.update(
            {
                # Per-consumer prefetch: a quorum queue refuses a global QoS limit.
                "worker_detect_quorum_queues": True,
                # Any queue Celery itself declares is a quorum queue too.
                "task_default_queue_type": "quorum",
                "task_create_missing_queue_type": "quorum",
            }
        )
    return options


def queue_arguments(settings: Settings) -> dict[str, Any] | None:
    """The ``x-`` arguments of the five queues (RabbitMQ); None: the broker's defaults."""
    if not (settings.broker_quorum_queues and is_amqp(settings.broker_url)):
        return None
    return {"x-queue-type": "quorum", "x-delivery-limit": QUORUM_DELIVERY_LIMIT}
