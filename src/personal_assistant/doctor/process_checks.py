"""Verdicts on the workers and the scheduler (pure), from the processes' rows
(``worker_heartbeats``), the progress snapshot, and Celery's remote control when the broker
has one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from personal_assistant.core.states import ProcessRole
from personal_assistant.doctor.remote import RemoteFacts
from personal_assistant.doctor.report import Check, failed, passed, skipped, warned
from personal_assistant.workers.routing import QUEUES
from personal_assistant.workers.utils.health import Snapshot

#: What delivery needs of every worker (FIELD_NOTES: late acks, rejected when the worker is
#: lost, one message prefetched, JSON only).
REQUIRED: Mapping[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "task_serializer": "json",
    "accept_content": ["json"],
}
#: A silent row older than this is history, not a stall (rows are pruned after a day).
FORGET_AFTER_S = 3600.0


@dataclass(frozen=True)
class Bounds:
    max_heartbeat_age_s: float = 30.0
    max_overdue_s: float = 30.0
    max_queue_age_s: float = 60.0
    reaper_grace_s: float = 45.0  # an expired lease older than this was not reaped


def consumers(snapshot: Snapshot, bounds: Bounds) -> Check:
    title = "Every queue has a live consumer"
    count = {q: 0 for q in QUEUES}
    for worker in snapshot.live_workers(bounds.max_heartbeat_age_s):
        for queue in worker.queues:
            count[queue] = count.get(queue, 0) + 1
    shown = ", ".join(f"{q} {n}" for q, n in count.items())
    missing = [q for q in QUEUES if not count[q]]
    if missing:
        return failed(
            "workers.consumers",
            title,
            f"no live worker consumes {', '.join(missing)} (workers per queue: {shown})",
            f"start a worker on it: pa worker -Q {','.join(missing)}",
        )
    return passed("workers.consumers", title, f"workers per queue: {shown}")


def versions(snapshot: Snapshot, bounds: Bounds, own: str) -> Check:
    title = "Every worker and scheduler runs the same code"
    live = [
        *snapshot.live_workers(bounds.max_heartbeat_age_s),
        *snapshot.live(ProcessRole.SCHEDULER, bounds.max_heartbeat_age_s),
    ]
    found = sorted({p.version or "unknown" for p in live})
    if not live:
        return skipped("workers.versions", title, "no live process")
    if len(found) > 1:
        by = "; ".join(f"{p.worker_id} {p.version or 'unknown'}" for p in live)
        return failed(
            "workers.versions",
            title,
            f"{len(found)} versions run at once: {by}",
            "deploy one version everywhere, then restart the others",
        )
    if found[0] != own:
        return warned(
            "workers.versions",
            title,
            f"they run {found[0]}, this pa doctor is {own}",
            "run pa doctor from the deployed version",
        )
    return passed("workers.versions", title, f"{len(live)} process(es) on {own}")


def delivery_settings(snapshot: Snapshot, bounds: Bounds) -> Check:
    title = "Every worker runs the delivery settings"
    wrong = []
    workers = snapshot.live_workers(bounds.max_heartbeat_age_s)
    for worker in workers:
        for name, wanted in REQUIRED.items():
            value = worker.config.get(name)
            if value != wanted:
                wrong.append(f"{worker.worker_id} {name}={value!r} (needs {wanted!r})")
    if wrong:
        return failed(
            "workers.settings",
            title,
            "; ".join(wrong),
            "start workers with the project's Celery app (pa worker, or celery -A "
            "personal_assistant.workers.celery_app worker) and no overriding option",
        )
    if not workers:
        return skipped("workers.settings", title, "no live worker")
    return passed(
        "workers.settings",
        title,
        f"{len(workers)} worker(s): acks_late, reject_on_worker_lost, prefetch 1, JSON only",
    )


def stalled(snapshot: Snapshot, bounds: Bounds) -> Check:
    title = "No stalled worker"
    now = snapshot.taken_at
    holding = {w.worker_id: w.running for w in snapshot.workers}
    silent = [
        p
        for p in snapshot.processes
        if bounds.max_heartbeat_age_s < p.silent_for(now) <= FORGET_AFTER_S
    ]
    if not silent:
        return passed("workers.stalled", title, "every process with a row beats")
    lines = [
        f"{p.role} {p.worker_id} silent for {p.silent_for(now):.0f} s"
        + (f", holding {holding[p.worker_id]} running run(s)" if p.worker_id in holding else "")
        for p in silent
    ]
    fix = (
        "a process that stops cleanly removes its row: this one was killed, crashed or is "
        "stopped (SIGSTOP, a frozen VM); restart it. Its runs are retried when their "
        "leases expire"
    )
    if any(p.worker_id in holding for p in silent):
        return failed("workers.stalled", title, "; ".join(lines), fix)
    return warned("workers.stalled", title, "; ".join(lines), fix)


def remote_control(snapshot: Snapshot, bounds: Bounds, remote: RemoteFacts | None) -> Check:
    title = "Workers answer Celery's remote control"
    if remote is None:
        return skipped("workers.remote", title, "not asked (--quick, or the broker is away)")
    if not remote.supported:
        return skipped("workers.remote", title, "the embedded broker has no remote control")
    if remote.error:
        return warned(
            "workers.remote",
            title,
            f"broadcast failed: {remote.error}",
            "check the broker (broker.reachable), then celery -A "
            "personal_assistant.workers.celery_app inspect ping",
        )
    beating = len(snapshot.live_workers(bounds.max_heartbeat_age_s))
    answered = len(remote.queues)
    evidence = f"{answered} worker(s) answered, {beating} beat in the database"
    if answered < beating:
        return warned(
            "workers.remote",
            title,
            evidence + ": a worker that beats but does not answer may have stopped consuming",
            "restart the workers that did not answer (celery -A "
            "personal_assistant.workers.celery_app inspect ping)",
        )
    return passed("workers.remote", title, evidence)


def scheduler_alive(snapshot: Snapshot, bounds: Bounds) -> Check:
    title = "A scheduler is ticking"
    live = snapshot.live(ProcessRole.SCHEDULER, bounds.max_heartbeat_age_s)
    if not live:
        return failed(
            "scheduler.alive",
            title,
            f"no scheduler has reported in the last {bounds.max_heartbeat_age_s:.0f} s",
            "start one: pa beat (or celery -A personal_assistant.workers.celery_app beat)",
        )
    freshest = min(p.silent_for(snapshot.taken_at) for p in live)
    return passed(
        "scheduler.alive",
        title,
        f"{len(live)} scheduler(s), last tick report {freshest:.1f} s ago",
    )


def overdue(snapshot: Snapshot, bounds: Bounds) -> Check:
    title = "No task overdue"
    age = snapshot.age(snapshot.most_overdue_at)
    if age is not None and age > bounds.max_overdue_s:
        return failed(
            "scheduler.overdue",
            title,
            f"a task is {age:.0f} s overdue (bound {bounds.max_overdue_s:.0f} s)",
            "is the scheduler running and reaching the database? pa beat, logs/core.log",
            overdue_s=round(age, 1),
        )
    shown = "none" if age is None else f"{age:.1f} s"
    return passed("scheduler.overdue", title, f"most overdue: {shown}")


def waiting(snapshot: Snapshot, bounds: Bounds) -> Check:
    title = "No run waits for a worker"
    age = snapshot.age(snapshot.oldest_queued_at)
    if age is not None and age > bounds.max_queue_age_s:
        return failed(
            "scheduler.waiting",
            title,
            f"a run has waited {age:.0f} s for a worker (bound {bounds.max_queue_age_s:.0f} s)",
            "start workers on ai_tasks, or check that they consume (pa status)",
            waiting_s=round(age, 1),
        )
    shown = "none queued" if age is None else f"oldest queued {age:.1f} s"
    return passed("scheduler.waiting", title, shown)


def leases(snapshot: Snapshot, bounds: Bounds) -> Check:
    title = "No expired lease left unreaped"
    age = snapshot.age(snapshot.oldest_expired_lease_at)
    if age is not None and age > bounds.reaper_grace_s:
        return failed(
            "scheduler.leases",
            title,
            f"{snapshot.expired_running} running run(s) hold an expired lease, the oldest "
            f"expired {age:.0f} s ago: the reaper is not running",
            "the reaper runs on maintenance_tasks, sent by beat: check both",
        )
    return passed(
        "scheduler.leases",
        title,
        f"{snapshot.expired_running} expired lease(s), none older than "
        f"{bounds.reaper_grace_s:.0f} s",
    )


def process_checks(
    snapshot: Snapshot, bounds: Bounds, own_version: str, remote: RemoteFacts | None
) -> list[Check]:
    return [
        consumers(snapshot, bounds),
        versions(snapshot, bounds, own_version),
        delivery_settings(snapshot, bounds),
        stalled(snapshot, bounds),
        remote_control(snapshot, bounds, remote),
        scheduler_alive(snapshot, bounds),
        overdue(snapshot, bounds),
        waiting(snapshot, bounds),
        leases(snapshot, bounds),
    ]
