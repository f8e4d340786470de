from __future__ import annotations

from datetime import UTC, datetime, timedelta

from personal_assistant.workers.routing import QUEUES
from personal_assistant.workers.utils.health import ProcessBeat, Snapshot, Thresholds, assess

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def snapshot(**overrides: object) -> Snapshot:
    fields: dict[str, object] = dict(
        taken_at=NOW,
        open_runs={},
        oldest_queued_at=None,
        most_overdue_at=None,
        expired_running=0,
        last_finished_at=None,
        active_tasks=3,
    )
    fields.update(overrides)
    return Snapshot(**fields)  # type: ignore[arg-type]


def test_idle_system_is_healthy() -> None:
    assert assess(snapshot()).healthy


def test_fresh_queue_and_small_lateness_are_healthy() -> None:
    health = assess(
        snapshot(
            oldest_queued_at=NOW - timedelta(seconds=5), most_overdue_at=NOW - timedelta(seconds=1)
        )
    )
    assert health.healthy


def test_stalled_workers_scheduler_and_dead_worker_are_reported() -> None:
    health = assess(
        snapshot(
            oldest_queued_at=NOW - timedelta(minutes=5),
            most_overdue_at=NOW - timedelta(minutes=2),
            expired_running=2,
        )
    )
    assert not health.healthy
    assert [p.split(":")[0] for p in health.problems] == [
        "a run has waited 300 s for a worker",
        "a task is 120 s overdue",
        "2 running run(s) hold an expired lease",
    ]


# -- live processes (pa status) ------------------------------------------------------------------

STATUS = Thresholds(max_heartbeat_age_s=30, require_processes=True)


def beating(
    worker_id: str, role: str, silent_s: float, queues: tuple[str, ...] = ()
) -> ProcessBeat:
    at = NOW - timedelta(seconds=silent_s)
    return ProcessBeat(worker_id, role, beat_at=at, started_at=at, queues=queues)


def test_status_needs_a_live_worker_and_a_live_scheduler() -> None:
    problems = assess(snapshot(), STATUS).problems
    assert len(problems) == 2
    assert "no worker has reported in the last 30 s" in problems[0]
    assert "no scheduler has reported" in problems[1]


def test_a_live_worker_on_every_queue_and_a_live_scheduler_are_healthy() -> None:
    processes = (beating("h:1", "worker", 5, QUEUES), beating("h:2", "scheduler", 1))
    assert assess(snapshot(processes=processes), STATUS).healthy


def test_each_queue_without_a_live_consumer_is_named() -> None:
    processes = (
        beating("h:1", "worker", 5, ("ai_tasks", "email_tasks", "file_tasks")),
        beating("h:2", "worker", 31, ("sync_tasks",)),  # silent: not live
        beating("h:3", "scheduler", 1),
    )
    problems = assess(snapshot(processes=processes), STATUS).problems
    assert [p.split(":")[0] for p in problems] == [
        "no live worker consumes sync_tasks",
        "no live worker consumes maintenance_tasks",
    ]


def test_a_stale_scheduler_is_no_scheduler() -> None:
    processes = (beating("h:1", "worker", 5, QUEUES), beating("h:2", "scheduler", 45))
    (problem,) = assess(snapshot(processes=processes), STATUS).problems
    assert problem.startswith("no scheduler has reported in the last 30 s")


def test_without_require_processes_the_progress_checks_alone_decide() -> None:
    assert assess(snapshot()).healthy
