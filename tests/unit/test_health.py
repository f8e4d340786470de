from __future__ import annotations

from datetime import UTC, datetime, timedelta

from personal_assistant.workers.utils.health import Snapshot, assess

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
