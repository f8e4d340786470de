"""Worker heartbeats on both backends: the beat, pruning, and the stalled worker in a snapshot."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from personal_assistant.database.engine import make_async_engine
from personal_assistant.health.heartbeat import Heartbeat, HeldRuns, beat
from personal_assistant.workers.utils.health import assess
from personal_assistant.workers.utils.snapshot_reads import take_snapshot
from support.stack import Db

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


@pytest.fixture
def db(url: str) -> Iterator[Db]:
    handle = Db(url)
    yield handle
    handle.close()


def _beats(db: Db) -> list[tuple[str, datetime, datetime]]:
    rows = db.rows("SELECT worker_id, started_at, beat_at FROM worker_heartbeats ORDER BY 1")
    return [(w, _utc(s), _utc(b)) for w, s, b in rows]


def _utc(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def test_a_beat_refreshes_the_row_and_prunes_long_silent_ones(url: str, db: Db) -> None:
    with db.engine.begin() as conn:
        beat(conn, "gone:1", now=NOW - timedelta(days=2))
        beat(conn, "h:1", now=NOW - timedelta(minutes=5))
    with db.engine.begin() as conn:
        beat(conn, "h:1", now=NOW, prune_before=NOW - timedelta(days=1))
    assert _beats(db) == [("h:1", NOW - timedelta(minutes=5), NOW)]


def test_heartbeat_beats_at_once_then_every_interval(url: str, db: Db) -> None:
    async def go() -> None:
        ticks = iter(NOW + timedelta(seconds=i) for i in range(1000))
        heartbeat = Heartbeat(
            url,
            "h:7",
            interval=0.05,
            lease=timedelta(seconds=1),
            held=HeldRuns(),
            wedged_after=60,
            clock=lambda: next(ticks),
        )
        heartbeat.ensure_started()
        heartbeat.ensure_started()  # idempotent: one thread
        await asyncio.sleep(0.5)
        await heartbeat.stop()

    asyncio.run(go())
    [(worker, started, last)] = _beats(db)
    assert worker == "h:7" and started == NOW and last >= NOW + timedelta(seconds=2)


def test_snapshot_names_the_silent_worker_that_holds_running_runs(url: str, db: Db) -> None:
    db.execute(
        "INSERT INTO users (display_name, timezone, created_at) VALUES ('A', 'UTC', :t)", t=NOW
    )
    db.execute(
        "INSERT INTO ai_tasks (user_id, title, description, task_type, schedule_kind, schedule, "
        "timezone, status, ai_context, notification_channels, catch_up, max_retries, "
        "consecutive_failures, created_at, updated_at) SELECT id, 'T', '', 'reminder', 'daily', "
        "'{}', 'UTC', 'active', '{}', '[\"in_app\"]', 'once', 3, 0, :t, :t FROM users",
        t=NOW,
    )
    for minute, worker in enumerate(("quiet:1", "quiet:1", "busy:2", None)):
        db.execute(
            "INSERT INTO task_runs (task_id, scheduled_for, state, attempt, queued_at, "
            "started_at, lease_expires_at, worker_id) SELECT id, :at, :state, 1, :at, :at, "
            ":lease, :w FROM ai_tasks",
            at=NOW - timedelta(minutes=minute + 1),
            state="running" if worker else "queued",
            lease=NOW + timedelta(minutes=5),
            w=worker,
        )

    with db.engine.begin() as conn:
        beat(conn, "quiet:1", now=NOW - timedelta(seconds=90))
        beat(conn, "busy:2", now=NOW - timedelta(seconds=2))

    async def go() -> list[str]:
        engine = make_async_engine(url)
        try:
            health = assess(await take_snapshot(engine, NOW))
        finally:
            await engine.dispose()
        assert {w.worker_id: w.running for w in health.snapshot.workers} == {
            "quiet:1": 2,
            "busy:2": 1,
        }
        return [w.worker_id for w in health.stalled]

    assert asyncio.run(go()) == ["quiet:1"]
