"""``pa metrics serve``: the deployment's figures on ``/metrics``, once per deployment.

Queue depths, live processes, overdue tasks, waiting runs and broken channels are facts of the
deployment, not of a process: were every worker to publish them, a dashboard would count them
once per worker. One exporter reads them, at each scrape, from the database (the heartbeats
table, the runs and tasks) and the broker, with the readers ``pa status`` and ``pa doctor`` use.

A scrape runs on the HTTP server's thread; it hands the reading to the command's event loop
(the one that owns the database engine) and waits for it, at most :data:`SCRAPE_TIMEOUT_S`.
A broker that is away leaves its figures out (and ``pa_broker_up`` 0); a database that is away
fails the scrape, which Prometheus records as ``up == 0``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.config import Settings
from personal_assistant.core.states import ChannelStatus, ProcessRole, TaskStatus
from personal_assistant.database.models import AITask, NotificationChannel
from personal_assistant.doctor.broker_facts import read_broker
from personal_assistant.health.heartbeat import STALE_AFTER_BEATS
from personal_assistant.metrics import catalogue as c
from personal_assistant.workers.routing import QUEUES
from personal_assistant.workers.utils.health import Thresholds, take_snapshot

if TYPE_CHECKING:
    from celery import Celery
    from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Figures:
    """What one scrape publishes (``None``: not known, left out)."""

    consumers: dict[str, int]
    live: dict[str, int]
    scheduler_age_s: float | None
    tasks_overdue: int
    oldest_queued_age_s: float
    channels_broken: int
    broker_up: bool
    depths: dict[str, int] = field(default_factory=dict)
    oldest_message_age_s: dict[str, float] = field(default_factory=dict)


async def read_figures(
    settings: Settings, engine: AsyncEngine, now: datetime, app: Celery
) -> Figures:
    snapshot = await take_snapshot(engine, now)
    beats = STALE_AFTER_BEATS * settings.heartbeat_interval_seconds
    workers = snapshot.live_workers(beats)
    schedulers = [p for p in snapshot.processes if p.role == ProcessRole.SCHEDULER]
    freshest = max((p.beat_at for p in schedulers), default=None)
    overdue_before = now - timedelta(seconds=Thresholds().max_overdue_s)
    async with engine.connect() as conn:
        overdue = await conn.scalar(
            select(func.count())
            .select_from(AITask)
            .where(AITask.status == TaskStatus.ACTIVE, AITask.next_run_at < overdue_before)
        )
        broken = await conn.scalar(
            select(func.count())
            .select_from(NotificationChannel)
            .where(NotificationChannel.status == ChannelStatus.BROKEN)
        )
    broker = await asyncio.to_thread(read_broker, settings, app)
    return Figures(
        consumers={q: sum(q in w.queues for w in workers) for q in QUEUES},
        live={
            ProcessRole.WORKER.value: len(workers),
            ProcessRole.SCHEDULER.value: len(snapshot.live(ProcessRole.SCHEDULER, beats)),
        },
        scheduler_age_s=snapshot.age(freshest),
        tasks_overdue=int(overdue or 0),
        oldest_queued_age_s=snapshot.age(snapshot.oldest_queued_at) or 0.0,
        channels_broken=int(broken or 0),
        broker_up=broker.reachable,
        depths={q.name: q.depth for q in broker.queues if q.depth is not None},
        oldest_message_age_s={
            q.name: q.oldest_age_s for q in broker.queues if q.oldest_age_s is not None
        },
    )


def families(figures: Figures) -> Iterator[Any]:
    """The figures as Prometheus metric families (gauges), named by the catalogue."""
    from prometheus_client.core import GaugeMetricFamily

    def gauge(metric: c.Metric, values: dict[str, float] | float | None) -> Any:
        family = GaugeMetricFamily(metric.name, metric.help, labels=metric.labels or None)
        if isinstance(values, dict):
            for label, value in sorted(values.items()):
                family.add_metric([label], value)
        elif values is not None:
            family.add_metric([], values)
        return family

    yield gauge(c.BROKER_UP, 1.0 if figures.broker_up else 0.0)
    yield gauge(c.QUEUE_DEPTH, dict(figures.depths))
    yield gauge(c.QUEUE_OLDEST_AGE, dict(figures.oldest_message_age_s))
    yield gauge(c.QUEUE_CONSUMERS, dict(figures.consumers))
    yield gauge(c.PROCESSES_LIVE, dict(figures.live))
    yield gauge(c.SCHEDULER_LAST_BEAT_AGE, figures.scheduler_age_s)
    yield gauge(c.TASKS_OVERDUE, figures.tasks_overdue)
    yield gauge(c.RUN_QUEUED_OLDEST_AGE, figures.oldest_queued_age_s)
    yield gauge(c.CHANNELS_BROKEN, figures.channels_broken)


class DeploymentCollector:
    """A prometheus_client collector that reads the figures on ``loop`` at each scrape."""

    def __init__(self, read: Callable[[], Any], loop: asyncio.AbstractEventLoop) -> None:
        self._read = read  # a coroutine function answering Figures
        self._loop = loop

    def collect(self) -> Iterator[Any]:
        future = asyncio.run_coroutine_threadsafe(self._read(), self._loop)
        figures: Figures = future.result(timeout=SCRAPE_TIMEOUT_S)
        yield from families(figures)

    def describe(self) -> list[Any]:
        return []  # nothing read at registration: the database is asked at scrape time


def registry_for(collector: DeploymentCollector) -> Collector:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
