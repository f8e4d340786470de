"""Health measured by progress, not by pings.

A worker can answer a ping and still consume nothing (celery#8030 after a Redis reconnect),
so health here is read from the database: how old the oldest owed run is, how overdue the
most overdue task is, how many runs hold an expired lease. :func:`assess` is pure; the
snapshot is one read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.core.states import RunState, TaskStatus
from personal_assistant.database.models import AITask, TaskRun


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    open_runs: dict[str, int]
    oldest_queued_at: datetime | None
    most_overdue_at: datetime | None
    expired_running: int
    last_finished_at: datetime | None
    active_tasks: int


@dataclass(frozen=True)
class Thresholds:
    max_queue_age_s: float = 60.0
    max_overdue_s: float = 30.0


@dataclass(frozen=True)
class Health:
    snapshot: Snapshot
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def healthy(self) -> bool:
        return not self.problems


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def assess(snapshot: Snapshot, thresholds: Thresholds = Thresholds()) -> Health:
    """The problems a snapshot shows (pure)."""
    now = snapshot.taken_at
    problems = []
    queued_age = _age(now, snapshot.oldest_queued_at)
    if queued_age is not None and queued_age > thresholds.max_queue_age_s:
        problems.append(
            f"a run has waited {queued_age:.0f} s for a worker: are workers consuming ai_tasks?"
        )
    overdue = _age(now, snapshot.most_overdue_at)
    if overdue is not None and overdue > thresholds.max_overdue_s:
        problems.append(f"a task is {overdue:.0f} s overdue: is the scheduler (beat) running?")
    if snapshot.expired_running:
        problems.append(
            f"{snapshot.expired_running} running run(s) hold an expired lease: a "
            "worker died; the reaper (maintenance_tasks) will retry them"
        )
    return Health(snapshot, tuple(problems))


async def take_snapshot(engine: AsyncEngine, now: datetime) -> Snapshot:
    open_states = (RunState.QUEUED, RunState.RETRYING, RunState.RUNNING)
    async with engine.connect() as conn:
        counts = {
            state: count
            for state, count in await conn.execute(
                select(TaskRun.state, func.count())
                .where(TaskRun.state.in_(open_states))
                .group_by(TaskRun.state)
            )
        }
        oldest_queued = await conn.scalar(
            select(func.min(TaskRun.queued_at)).where(TaskRun.state == RunState.QUEUED)
        )
        most_overdue = await conn.scalar(
            select(func.min(AITask.next_run_at)).where(
                AITask.status == TaskStatus.ACTIVE, AITask.next_run_at <= now
            )
        )
        expired = await conn.scalar(
            select(func.count())
            .select_from(TaskRun)
            .where(TaskRun.state == RunState.RUNNING, TaskRun.lease_expires_at <= now)
        )
        last_finished = await conn.scalar(select(func.max(TaskRun.finished_at)))
        active = await conn.scalar(
            select(func.count()).select_from(AITask).where(AITask.status == TaskStatus.ACTIVE)
        )
    return Snapshot(
        taken_at=now,
        open_runs={str(k): int(v) for k, v in counts.items()},
        oldest_queued_at=oldest_queued,
        most_overdue_at=most_overdue,
        expired_running=int(expired or 0),
        last_finished_at=last_finished,
        active_tasks=int(active or 0),
    )
