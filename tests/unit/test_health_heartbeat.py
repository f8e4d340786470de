"""Stalled workers in ``assess``: named when silent too long while they hold running runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from personal_assistant.workers.utils.health import Snapshot, Thresholds, WorkerLoad, assess

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def snapshot(*workers: WorkerLoad) -> Snapshot:
    return Snapshot(
        taken_at=NOW,
        open_runs={"running": sum(w.running for w in workers)},
        oldest_queued_at=None,
        most_overdue_at=None,
        expired_running=0,
        last_finished_at=None,
        active_tasks=3,
        workers=workers,
    )


def load(worker_id: str, beat_s_ago: float | None, claimed_s_ago: float = 60) -> WorkerLoad:
    beat = None if beat_s_ago is None else NOW - timedelta(seconds=beat_s_ago)
    return WorkerLoad(worker_id, 2, beat, NOW - timedelta(seconds=claimed_s_ago))


def test_workers_that_beat_recently_are_healthy() -> None:
    health = assess(snapshot(load("h:1", 5), load("h:2", 29.9)))
    assert health.healthy and health.stalled == ()


def test_a_silent_worker_holding_runs_is_named_most_silent_first() -> None:
    health = assess(snapshot(load("h:1", 5), load("h:2", 45), load("h:3", 400)))
    assert [w.worker_id for w in health.stalled] == ["h:3", "h:2"]
    assert health.problems == (
        "worker h:3 holds 2 running run(s) and has not reported for 400 s: stopped or stuck? "
        "its runs are retried when their lease expires",
        "worker h:2 holds 2 running run(s) and has not reported for 45 s: stopped or stuck? "
        "its runs are retried when their lease expires",
    )


def test_a_worker_that_never_beat_counts_from_its_oldest_claim() -> None:
    assert assess(snapshot(load("old:1", None, claimed_s_ago=10))).healthy
    assert [w.worker_id for w in assess(snapshot(load("old:1", None, 31))).stalled] == ["old:1"]


def test_the_threshold_follows_the_heartbeat_interval() -> None:
    quick = Thresholds(max_heartbeat_age_s=3.0)
    assert [w.worker_id for w in assess(snapshot(load("h:1", 4)), quick).stalled] == ["h:1"]


def test_many_stalled_workers_are_counted_beyond_five() -> None:
    health = assess(snapshot(*(load(f"h:{i}", 100 + i) for i in range(8))))
    assert len(health.stalled) == 8
    assert health.problems[-1] == "3 more worker(s) stalled the same way"
    assert len(health.problems) == 6
