"""Retention on both backends: old finished runs go with their notifications, in batches; open
runs and recent ones stay."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.database.models import Notification, TaskRun
from personal_assistant.errors import ValidationError
from personal_assistant.runs import retention
from personal_assistant.tasks.manager import AITaskManager
from support.stack import Db, run

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 29, 7, 30, tzinfo=UTC)
KEEP = timedelta(days=30)
CUTOFF = NOW - KEEP


@pytest.fixture
def db(url: str) -> Iterator[Db]:
    handle = Db(url)
    yield handle
    handle.close()


async def _task_ids(url: str) -> tuple[int, int, int, int]:
    """Two users with one task each: (user, task, user, task)."""
    settings = Settings(DATABASE_URL=url)  # type: ignore[call-arg]
    async with AITaskManager(settings, clock=lambda: NOW - timedelta(days=400)) as manager:
        ada = await manager.create_user("Ada")
        bob = await manager.create_user("Bob")
        daily = {"kind": "daily", "times": ["09:00"]}
        first = await manager.create_task(ada.id, "Stand-up", schedule=daily)
        second = await manager.create_task(bob.id, "Plants", schedule=daily)
    return ada.id, first.id, bob.id, second.id


def _add_run(
    session: Session,
    user_id: int,
    task_id: int,
    state: str,
    scheduled_for: datetime,
    finished_at: datetime | None,
    notes: int = 0,
) -> int:
    row = TaskRun(
        task_id=task_id,
        scheduled_for=scheduled_for,
        state=state,
        attempt=1,
        queued_at=scheduled_for,
        finished_at=finished_at,
        lease_expires_at=scheduled_for if state in ("queued", "running", "retrying") else None,
    )
    session.add(row)
    session.flush()
    for channel in ["in_app", "email", "sms"][:notes]:
        session.add(
            Notification(
                run_id=row.id,
                task_id=task_id,
                user_id=user_id,
                channel=channel,
                status="delivered",
                title="t",
                body="b",
                created_at=scheduled_for,
            )
        )
    return row.id


def _seed(db: Db, url: str) -> tuple[set[int], set[int]]:
    """Runs on both sides of the cutoff; returns (ids to delete, ids to keep)."""
    ada, first, bob, second = run(_task_ids(url))
    old = CUTOFF - timedelta(days=10)
    gone: set[int] = set()
    kept: set[int] = set()
    with Session(db.engine) as session, session.begin():
        for i, state in enumerate(["succeeded", "failed", "skipped", "cancelled"] * 2):
            user, task = (ada, first) if i % 2 else (bob, second)
            at = old + timedelta(hours=i)
            gone.add(
                _add_run(session, user, task, state, at, at + timedelta(minutes=1), notes=i % 3)
            )
        # finished long ago, without finished_at: its scheduled_for dates it
        gone.add(_add_run(session, ada, first, "cancelled", old - timedelta(days=1), None, 1))
        for i, state in enumerate(["queued", "running", "retrying"]):  # open: never deleted
            kept.add(_add_run(session, ada, first, state, old - timedelta(hours=i + 1), None, 1))
        # scheduled long ago but finished recently; and finished exactly at the cutoff
        kept.add(_add_run(session, ada, first, "failed", old - timedelta(hours=9), NOW, 2))
        kept.add(_add_run(session, bob, second, "succeeded", CUTOFF, CUTOFF, 1))
        kept.add(_add_run(session, bob, second, "succeeded", NOW - timedelta(days=1), NOW, 3))
    return gone, kept


async def _purge(url: str, batch_size: int, max_batches: int | None = None) -> retention.Purged:
    engine = make_async_engine(url, pooled=False)
    try:
        return await retention.purge(
            engine, now=NOW, retention=KEEP, batch_size=batch_size, max_batches=max_batches
        )
    finally:
        await engine.dispose()


def _counted_notes(db: Db, run_ids: set[int]) -> int:
    rows = db.rows("SELECT run_id FROM notifications")
    return sum(1 for (run_id,) in rows if run_id in run_ids)


def test_old_finished_runs_go_in_batches_with_their_notifications(db: Db, url: str) -> None:
    gone, kept = _seed(db, url)
    notes_gone = _counted_notes(db, gone)
    notes_kept = _counted_notes(db, kept)
    assert notes_gone > 0

    purged = run(_purge(url, batch_size=4))
    assert purged == retention.Purged(runs=9, notifications=notes_gone, batches=3)
    assert {row[0] for row in db.rows("SELECT id FROM task_runs")} == kept
    assert db.scalar("SELECT count(*) FROM notifications") == notes_kept
    assert run(_purge(url, batch_size=4)) == retention.Purged()


def test_a_capped_purge_says_it_is_incomplete_and_the_next_one_finishes(db: Db, url: str) -> None:
    _, kept = _seed(db, url)
    first = run(_purge(url, batch_size=2, max_batches=2))
    assert (first.runs, first.batches, first.complete) == (4, 2, False)
    rest = run(_purge(url, batch_size=2))
    assert (rest.runs, rest.batches, rest.complete) == (5, 3, True)
    assert {row[0] for row in db.rows("SELECT id FROM task_runs")} == kept


def test_a_full_last_batch_ends_with_an_empty_check(db: Db, url: str) -> None:
    gone, _ = _seed(db, url)
    notes_gone = _counted_notes(db, gone)
    assert run(_purge(url, batch_size=9)) == retention.Purged(9, notes_gone, batches=1)
    with pytest.raises(ValidationError) as caught:
        run(_purge(url, batch_size=0))
    assert caught.value.field == "batch_size"


@pytest.mark.parametrize(
    ("now", "keep"),
    [
        (NOW, timedelta(0)),
        (NOW, timedelta(days=-1)),
    ],
)
def test_the_retention_must_be_positive(now: datetime, keep: timedelta) -> None:
    with pytest.raises(ValidationError) as caught:
        retention.cutoff(now, keep)
    assert caught.value.field == "retention"
    assert retention.cutoff(NOW, KEEP) == CUTOFF
    with pytest.raises(ValueError, match="aware"):
        retention.cutoff(NOW.replace(tzinfo=None), KEEP)
