"""Health measured by progress, not by pings.

A worker can answer a ping and still consume nothing (celery#8030 after a Redis reconnect),
so health here is read from the database: how old the oldest owed run is, how overdue the
most overdue task is, how many runs hold an expired lease, and which workers hold running
runs but stopped beating (:mod:`~personal_assistant.health.heartbeat`): stopped,
frozen or stuck, they are named before their runs' leases expire. With
``Thresholds.require_processes`` (``pa status``), it also says when no worker or no scheduler is
alive, and which queues no live worker consumes (the processes' rows say what they are:
:mod:`~personal_assistant.workers.presence`). :func:`assess` is pure; the snapshot is one read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from personal_assistant.core.states import ProcessRole, RunState, TaskStatus
from personal_assistant.database.models import AITask, TaskRun, WorkerHeartbeat
from personal_assistant.workers.routing import QUEUES


@dataclass(frozen=True)
class WorkerLoad:
    """A worker that holds running runs, and when it last beat (None: never)."""

    worker_id: str
    running: int
    last_beat_at: datetime | None
    first_claimed_at: datetime | None  # when it claimed the oldest of those runs

    def silent_for(self, now: datetime) -> float:
        """Seconds since its last beat; without one, since it claimed its oldest run."""
        since = self.last_beat_at or self.first_claimed_at
        return 0.0 if since is None else max(0.0, (now - since).total_seconds())


@dataclass(frozen=True)
class ProcessBeat:
    """A worker or scheduler process's row: when it last beat, and what it said it is."""

    worker_id: str
    role: str
    beat_at: datetime
    started_at: datetime
    queues: tuple[str, ...] = ()
    version: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)

    def silent_for(self, now: datetime) -> float:
        return max(0.0, (now - self.beat_at).total_seconds())


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    open_runs: dict[str, int]
    oldest_queued_at: datetime | None
    most_overdue_at: datetime | None
    expired_running: int
    last_finished_at: datetime | None
    active_tasks: int
    workers: tuple[WorkerLoad, ...] = ()  # those holding running runs
    processes: tuple[ProcessBeat, ...] = ()  # every beating process's row
    oldest_expired_lease_at: datetime | None = None  # of a running run

    def live(self, role: ProcessRole, max_age_s: float) -> list[ProcessBeat]:
        """The processes of ``role`` that beat within ``max_age_s``."""
        return [
            p for p in self.processes if p.role == role and p.silent_for(self.taken_at) <= max_age_s
        ]

    def live_workers(self, max_age_s: float) -> list[ProcessBeat]:
        """The live workers' main processes: those that consume queues (a pool child's row
        names none)."""
        return [p for p in self.live(ProcessRole.WORKER, max_age_s) if p.queues]

    def age(self, then: datetime | None) -> float | None:
        """Seconds from ``then`` to when the snapshot was taken (None: no such time)."""
        return None if then is None else max(0.0, (self.taken_at - then).total_seconds())


@dataclass(frozen=True)
class Thresholds:
    max_queue_age_s: float = 60.0
    max_overdue_s: float = 30.0
    #: ``STALE_AFTER_BEATS`` x ``HEARTBEAT_INTERVAL`` (``pa status`` derives it from settings).
    max_heartbeat_age_s: float = 30.0
    #: Report no live worker, no live scheduler, and queues without a live consumer.
    require_processes: bool = False


@dataclass(frozen=True)
class Health:
    snapshot: Snapshot
    problems: tuple[str, ...] = field(default_factory=tuple)
    stalled: tuple[WorkerLoad, ...] = ()  # workers silent too long, the most silent first
    max_heartbeat_age_s: float = 30.0  # a process silent longer is not live

    def live(self, role: ProcessRole) -> list[ProcessBeat]:
        return self.snapshot.live(role, self.max_heartbeat_age_s)

    def live_workers(self) -> list[ProcessBeat]:
        return self.snapshot.live_workers(self.max_heartbeat_age_s)

    @property
    def healthy(self) -> bool:
        return not self.problems


#: Stalled workers named one per line; more are counted.
STALLED_LISTED = 5


def assess(snapshot: Snapshot, thresholds: Thresholds = Thresholds()) -> Health:
    """The problems a snapshot shows (pure)."""
    now = snapshot.taken_at
    problems = []
    queued_age = snapshot.age(snapshot.oldest_queued_at)
    if queued_age is not None and queued_age > thresholds.max_queue_age_s:
        problems.append(
            f"a run has waited {queued_age:.0f} s for a worker: are workers consuming ai_tasks?"
        )
    overdue = snapshot.age(snapshot.most_overdue_at)
    if overdue is not None and overdue > thresholds.max_overdue_s:
        problems.append(f"a task is {overdue:.0f} s overdue: is the scheduler (beat) running?")
    if snapshot.expired_running:
        problems.append(
            f"{snapshot.expired_running} running run(s) hold an expired lease: a "
            "worker died; the reaper (maintenance_tasks) will retry them"
        )
    stalled = sorted(
        (w for w in snapshot.workers if w.silent_for(now) > thresholds.max_heartbeat_age_s),
        key=lambda w: -w.silent_for(now),
    )
    for worker in stalled[:STALLED_LISTED]:
        problems.append(
            f"worker {worker.worker_id} holds {worker.running} running run(s) and has not "
            f"reported for {worker.silent_for(now):.0f} s: stopped or stuck? its runs are "
            "retried when their lease expires"
        )
    if len(stalled) > STALLED_LISTED:
        problems.append(f"{len(stalled) - STALLED_LISTED} more worker(s) stalled the same way")
    if thresholds.require_processes:  # the causes first: no worker, no scheduler
        problems[:0] = process_problems(snapshot, thresholds.max_heartbeat_age_s)
    return Health(snapshot, tuple(problems), tuple(stalled), thresholds.max_heartbeat_age_s)


def unconsumed(workers: list[ProcessBeat], queues: tuple[str, ...] = QUEUES) -> list[str]:
    """The queues that none of ``workers`` consumes, in routing order."""
    consumed = {queue for worker in workers for queue in worker.queues}
    return [queue for queue in queues if queue not in consumed]


def process_problems(snapshot: Snapshot, max_age_s: float) -> list[str]:
    """No live worker, queues no live worker consumes, no live scheduler (pure)."""
    problems = []
    workers = snapshot.live_workers(max_age_s)
    if not workers:
        problems.append(
            f"no worker has reported in the last {max_age_s:.0f} s: start one (pa worker)"
        )
    else:
        for queue in unconsumed(workers):
            problems.append(
                f"no live worker consumes {queue}: its tasks wait (start one: pa worker -Q {queue})"
            )
    if not snapshot.live(ProcessRole.SCHEDULER, max_age_s):
        problems.append(
            f"no scheduler has reported in the last {max_age_s:.0f} s: no task fires "
            "(start one: pa beat)"
        )
    return problems


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
        expired, oldest_expired = (
            await conn.execute(
                select(func.count(), func.min(TaskRun.lease_expires_at))
                .select_from(TaskRun)
                .where(TaskRun.state == RunState.RUNNING, TaskRun.lease_expires_at <= now)
            )
        ).one()
        workers = await conn.execute(
            select(
                TaskRun.worker_id,
                func.count(),
                func.max(WorkerHeartbeat.beat_at),
                func.min(TaskRun.started_at),
            )
            .select_from(TaskRun)
            .outerjoin(WorkerHeartbeat, WorkerHeartbeat.worker_id == TaskRun.worker_id)
            .where(TaskRun.state == RunState.RUNNING, TaskRun.worker_id.is_not(None))
            .group_by(TaskRun.worker_id)
        )
        loads = tuple(WorkerLoad(str(w), int(n), beat, claimed) for w, n, beat, claimed in workers)
        processes = tuple(await _processes(conn))
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
        workers=loads,
        processes=processes,
        oldest_expired_lease_at=oldest_expired,
    )


async def _processes(conn: AsyncConnection) -> list[ProcessBeat]:
    rows = await conn.execute(
        select(
            WorkerHeartbeat.worker_id,
            WorkerHeartbeat.role,
            WorkerHeartbeat.beat_at,
            WorkerHeartbeat.started_at,
            WorkerHeartbeat.queues,
            WorkerHeartbeat.version,
            WorkerHeartbeat.config,
        ).order_by(WorkerHeartbeat.worker_id)
    )
    return [
        ProcessBeat(
            worker_id=row.worker_id,
            role=row.role,
            beat_at=row.beat_at,
            started_at=row.started_at,
            queues=tuple(q for q in (row.queues or "").split(",") if q),
            version=row.version,
            config=row.config or {},
        )
        for row in rows
    ]
