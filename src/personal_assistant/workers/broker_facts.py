"""What the broker says about itself: reachable and how fast, Redis's eviction policy and
persistence, and each queue's depth (RabbitMQ: its consumers, durability and type).

Read only: Redis is asked ``PING``, ``INFO`` and ``CONFIG GET``; each queue is read with a
passive declaration (RabbitMQ) or a plain one that changes nothing (kombu's virtual
transports, :func:`~personal_assistant.workers.dispatch.waiting_runs` says why). RabbitMQ's
durability is read by declaring the queue again with the arguments Celery declares it with, on
a channel of its own: the broker accepts an identical declaration and refuses a different one
(``PRECONDITION_FAILED - inequivalent arg 'durable'``), which names what differs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from celery import Celery

from personal_assistant.config import Settings
from personal_assistant.redaction import one_line
from personal_assistant.workers.broker_ping import broker_kind
from personal_assistant.workers.celery_app import SENT_AT_HEADER
from personal_assistant.workers.routing import QUEUES

#: How long one broker operation of doctor may take.
TIMEOUT_S = 3


@dataclass(frozen=True)
class QueueFacts:
    name: str
    depth: int | None = None
    consumers: int | None = None  # RabbitMQ only
    exists: bool = True
    declared_as_configured: bool | None = None  # RabbitMQ: None when not checked
    mismatch: str = ""  # the broker's words when the declaration differs
    oldest_age_s: float | None = None  # Redis: how long the oldest message has waited


@dataclass(frozen=True)
class BrokerFacts:
    kind: str  # "redis", "amqp" or "embedded"
    url: str  # masked
    reachable: bool
    error: str = ""
    rtt_ms: float | None = None
    version: str = ""
    maxmemory_policy: str = ""  # Redis
    aof: bool | None = None  # Redis: appendonly
    rdb_save: str = ""  # Redis: CONFIG GET save
    queues: tuple[QueueFacts, ...] = ()
    quorum_expected: bool = False
    info: dict[str, Any] = field(default_factory=dict)


def _redis_facts(settings: Settings) -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(
        settings.broker_url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
    )
    try:
        client.ping()  # connects
        started = time.perf_counter()
        client.ping()
        rtt = (time.perf_counter() - started) * 1000
        info = client.info("server")
        persistence = client.info("persistence")
        try:
            policy = client.config_get("maxmemory-policy").get("maxmemory-policy", "")
            save = client.config_get("save").get("save", "")
        except redis.ResponseError:  # a managed Redis that disables or renames CONFIG
            policy = save = ""
    finally:
        client.close()
    return {
        "rtt_ms": rtt,
        "version": str(info.get("redis_version", "")),
        "maxmemory_policy": str(policy),
        "aof": bool(persistence.get("aof_enabled")),
        "rdb_save": str(save),
    }


def oldest_ages(settings: Settings, queues: tuple[str, ...] = QUEUES) -> dict[str, float]:
    """Redis: how long the oldest message of each queue has waited, from the sent-at header
    of the message at the list's tail (kombu pushes at the head and pops at the tail). A
    queue that is empty, or whose oldest message has no header, is left out."""
    import json

    import redis

    client = redis.Redis.from_url(
        settings.broker_url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
    )
    ages: dict[str, float] = {}
    try:
        for queue in queues:
            raw = client.lindex(f"{settings.redis_key_prefix}{queue}", -1)
            if raw is None:
                continue
            try:
                sent = float(json.loads(raw)["headers"][SENT_AT_HEADER])
            except (ValueError, KeyError, TypeError):  # not ours, or not an envelope
                continue
            ages[queue] = max(0.0, time.time() - sent)
    finally:
        client.close()
    return ages


def _amqp_rtt(conn: Any) -> tuple[float, str]:
    started = time.perf_counter()
    with conn.channel() as channel:
        channel.basic_qos(0, 1, False)  # one round trip
    rtt = (time.perf_counter() - started) * 1000
    props = getattr(conn.connection, "server_properties", {}) or {}
    version = props.get("version", b"")
    return rtt, version.decode() if isinstance(version, bytes) else str(version)


def _queue(conn: Any, app: Celery, name: str, amqp: bool) -> QueueFacts:
    from kombu.transport import virtual

    if isinstance(conn.transport, virtual.Transport):
        channel: Any = conn.default_channel
        return QueueFacts(name, depth=int(channel.queue_declare(queue=name).message_count))
    from amqp.exceptions import NotFound, PreconditionFailed

    with conn.channel() as own:
        try:
            declared: Any = own.queue_declare(queue=name, passive=True)
        except NotFound:
            return QueueFacts(name, exists=False)
    depth, consumers = int(declared.message_count), int(declared.consumer_count)
    if not amqp:
        return QueueFacts(name, depth=depth, consumers=consumers)
    queue = next(q for q in app.conf.task_queues if q.name == name)
    with conn.channel() as own:
        try:
            queue.bind(own).declare()  # the same arguments as Celery's: a no-op when equal
        except PreconditionFailed as exc:
            return QueueFacts(name, depth, consumers, True, False, one_line(exc))
    return QueueFacts(name, depth, consumers, True, True)


def read_broker(settings: Settings, app: Celery, *, queues: bool = True) -> BrokerFacts:
    """Everything :mod:`.broker_checks` judges; never raises for a broker that is away."""
    from personal_assistant.redaction import mask_url

    kind = broker_kind(settings)
    base: dict[str, Any] = {
        "kind": kind,
        "url": mask_url(settings.broker_url),
        "quorum_expected": settings.broker_quorum_queues,
    }
    try:
        extra: dict[str, Any] = _redis_facts(settings) if kind == "redis" else {}
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=TIMEOUT_S)
            if kind == "amqp":
                extra["rtt_ms"], extra["version"] = _amqp_rtt(conn)
            found = tuple(_queue(conn, app, q, kind == "amqp") for q in QUEUES) if queues else ()
        if kind == "redis" and found:
            ages = oldest_ages(settings)
            found = tuple(replace(q, oldest_age_s=ages.get(q.name)) for q in found)
    except Exception as exc:  # every way a broker can be away or refuse us
        return BrokerFacts(reachable=False, error=one_line(exc), **base)
    return BrokerFacts(reachable=True, queues=found, **base, **extra)
