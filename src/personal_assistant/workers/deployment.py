"""The deployment's figures in one reading: the processes live and the queues they consume (the
heartbeats), the scheduler's last beat, overdue tasks, the oldest queued run, broken channels,
and the broker (reachable, each queue's depth and oldest message).

``pa metrics serve`` publishes them (:mod:`~personal_assistant.doctor.exporter`) and the alert
evaluator judges them (:mod:`~personal_assistant.workers.alerting`); both read them here, with
the readers ``pa status`` and ``pa doctor`` use.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.config import Settings
from personal_assistant.core.states import ChannelStatus, ProcessRole, TaskStatus
from personal_assistant.database.models import AITask, NotificationChannel
from personal_assistant.health.heartbeat import STALE_AFTER_BEATS
from personal_assistant.workers.broker_facts import read_broker
from personal_assistant.workers.routing import QUEUES
from personal_assistant.workers.utils.health import Thresholds
from personal_assistant.workers.utils.snapshot_reads import take_snapshot

if TYPE_CHECKING:
    from celery import Celery

__all__ = ["Figures", "read_figures"]


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
