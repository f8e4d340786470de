"""Health measured by progress, not by pings.

A worker can answer a ping and still consume nothing (celery#8030 after a Redis reconnect),
so health here is read from the database: how old the oldest owed run is, how overdue the
most overdue task is, how many runs hold an expired lease, and which workers hold running
runs but stopped beating (:mod:`~personal_assistant.health.heartbeat`): stopped,
frozen or stuck, they are named before their runs' leases expire. With
``Thresholds.require_processes`` (``pa status``), it also says when no worker or no scheduler is
alive, and which queues no live worker consumes (the processes' rows say what they are:
:mod:`~personal_assistant.workers.presence`). :func:`assess` is pure; the snapshot is one read
(:mod:`~personal_assistant.workers.utils.snapshot_reads`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from personal_assistant.core.states import ProcessRole
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


def status_health(
    snapshot: Snapshot, stale_after_s: float, broker_url: str, broker_error: str | None
) -> Health:
    """What ``pa status`` says (pure): the snapshot assessed with live processes required, and
    first of all a broker that does not answer (``broker_url`` masked)."""
    health = assess(snapshot, Thresholds(max_heartbeat_age_s=stale_after_s, require_processes=True))
    if broker_error is None:
        return health
    line = f"the broker at {broker_url} is unreachable ({broker_error}): nothing is dispatched"
    return replace(health, problems=(line, *health.problems))
