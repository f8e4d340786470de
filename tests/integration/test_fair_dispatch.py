"""Fair dispatch: one user's backlog does not delay everyone (issue 10, items 9 and 10).

With Bob's 1,000 runs queued, Alice's one run waited 74 s instead of 2.5 s: every due run went
into the broker at once, first in, first out. Now at most ``USER_DISPATCH_LIMIT`` runs of a user
are in the broker or running; the rest wait in PostgreSQL and are sent round robin across users
as their earlier runs finish, and ``MAX_RUNS_PER_HOUR`` bounds how many a user is sent an hour.

The first two tests drive the real processes (beat's scheduler, a worker, Redis) and assert on
the order runs finished in, never on how long they took. The others call the scheduler's step
with a chosen ``now``, on both backends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from personal_assistant.config import Settings
from personal_assistant.core.backoff import RetryPolicy
from personal_assistant.database.engine import make_async_engine
from personal_assistant.database.models import TaskRun
from personal_assistant.runs import reaping
from personal_assistant.runs.scheduler import TaskScheduler
from personal_assistant.tasks.manager import AITaskManager
from support.processes import ProcessGroup, wait_until
from support.stack import Db, run, settings_for

pytestmark = pytest.mark.integration

BOB_RUNS = 1000
CAP = 20
#: Alice's run must finish before this many of Bob's have (10 %); FIFO: after nearly all.
AHEAD_AT_MOST = BOB_RUNS // 10


def _copy_task(db: Db, task_id: int, copies: int) -> None:
    """``copies`` more tasks like ``task_id`` (same owner, schedule and next run), in one insert."""
    columns = [
        name
        for (name,) in db.rows(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'ai_tasks' AND column_name <> 'id' ORDER BY ordinal_position"
        )
    ]
    listed = ", ".join(columns)
    db.execute(
        f"INSERT INTO ai_tasks ({listed}) SELECT {listed} FROM ai_tasks, "  # names from the catalog
        "generate_series(1, :n) WHERE id = :t",
        n=copies,
        t=task_id,
    )


def _finished_ahead_of_alice(db: Db, bob: int, alice: int) -> int:
    """How many of Bob's runs had finished when Alice's did (ties count as ahead)."""
    return int(
        db.scalar(
            "SELECT count(*) FROM task_runs r JOIN ai_tasks t ON t.id = r.task_id "
            "WHERE t.user_id = :bob AND r.finished_at <= ("
            "  SELECT max(r2.finished_at) FROM task_runs r2 JOIN ai_tasks t2 ON t2.id = r2.task_id"
            "  WHERE t2.user_id = :alice AND r2.state = 'succeeded')",
            bob=bob,
            alice=alice,
        )
    )


def _succeeded(db: Db, user_id: int) -> int:
    return int(
        db.scalar(
            "SELECT count(*) FROM task_runs r JOIN ai_tasks t ON t.id = r.task_id "
            "WHERE t.user_id = :u AND r.state = 'succeeded'",
            u=user_id,
        )
    )


@pytest.fixture
def env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, "USER_DISPATCH_LIMIT": str(CAP)}


def _run_all(env: dict[str, str], processes: ProcessGroup, db: Db, bob: int, alice: int) -> int:
    """Start a worker and beat, wait until every run of both succeeded; Bob's runs ahead."""
    processes.worker(env)
    processes.beat(env)
    wait_until(lambda: _succeeded(db, alice) == 1, timeout=120, message="Alice's run")
    wait_until(
        lambda: _succeeded(db, bob) == BOB_RUNS, timeout=180, message=f"Bob's {BOB_RUNS} runs"
    )
    return _finished_ahead_of_alice(db, bob, alice)


def test_alice_is_not_queued_behind_bobs_due_runs(
    env: dict[str, str], processes: ProcessGroup, db: Db
) -> None:
    """Bob's 1,000 tasks fell due half a second before Alice's one: she is not served last.

    Both are due when the scheduler starts, so one tick claims them, Bob's first (the claim
    takes the oldest first): before fair dispatch, all of Bob's runs went into the broker
    ahead of hers.
    """
    created = datetime.now(UTC) - timedelta(seconds=10)
    at = created + timedelta(seconds=5)

    async def setup() -> tuple[int, int, int]:
        async with AITaskManager(settings_for(env), clock=lambda: created) as manager:
            bob = await manager.create_user("Bob")
            alice = await manager.create_user("Alice")
            first = await manager.create_task(
                bob.id, "Bob's", schedule={"kind": "once", "at": at.isoformat()}
            )
            later = (at + timedelta(seconds=0.5)).isoformat()
            await manager.create_task(alice.id, "Alice's", schedule={"kind": "once", "at": later})
            return bob.id, alice.id, first.id

    bob, alice, first = run(setup())
    _copy_task(db, first, BOB_RUNS - 1)
    ahead = _run_all(env, processes, db, bob, alice)
    assert ahead < AHEAD_AT_MOST, f"{ahead} of Bob's {BOB_RUNS} runs finished before Alice's"


def test_alice_is_not_queued_behind_bobs_run_now_backlog(
    env: dict[str, str], processes: ProcessGroup, db: Db
) -> None:
    """Bob asked for 1,000 runs now (never-published runs), then Alice for one."""

    async def setup() -> tuple[int, int]:
        async with AITaskManager(settings_for(env)) as manager:
            bob = await manager.create_user("Bob")
            alice = await manager.create_user("Alice")
            daily = {"kind": "daily", "times": ["03:00"]}
            first = await manager.create_task(bob.id, "Bob's", schedule=daily)
            _copy_task(db, first.id, BOB_RUNS - 1)
            tasks = [r[0] for r in db.rows("SELECT id FROM ai_tasks ORDER BY id")]
            for start in range(0, len(tasks), 10):  # ten at a time: quicker, still in order
                chunk = tasks[start : start + 10]
                await asyncio.gather(*(manager.run_now(t, bob.id) for t in chunk))
            own = await manager.create_task(alice.id, "Alice's", schedule=daily)
            await manager.run_now(own.id, alice.id)
            return bob.id, alice.id

    bob, alice = run(setup())
    ahead = _run_all(env, processes, db, bob, alice)
    assert ahead < AHEAD_AT_MOST, f"{ahead} of Bob's {BOB_RUNS} runs finished before Alice's"


# --- The scheduler's step, with a chosen ``now`` ---------------------------------------------

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TICK = 0.5


class Step:
    """Users, tasks and ticks on one database; records what was published, in order."""

    def __init__(self, url: str, **env: str) -> None:
        self.settings = Settings(  # type: ignore[call-arg]  # aliases are the init names
            DATABASE_URL=url, SCHEDULER_TICK_SECONDS=str(TICK), DISPATCH_LEASE="60", **env
        )
        self.published: list[int] = []
        self.db = Db(url)
        self._scheduler: TaskScheduler | None = None

    def publish(self, ids: Sequence[int]) -> None:
        self.published.extend(ids)

    def user(self, name: str) -> int:
        async def go() -> int:
            async with AITaskManager(self.settings, clock=lambda: NOW) as manager:
                return (await manager.create_user(name)).id

        return run(go())

    def tasks(self, user_id: int, count: int, *, at: datetime = NOW) -> list[int]:
        """``count`` once-tasks of ``user_id`` due at ``at``."""

        async def go() -> list[int]:
            async with AITaskManager(self.settings, clock=lambda: NOW - timedelta(hours=2)) as m:
                ids = []
                for i in range(count):
                    schedule = {"kind": "once", "at": at.isoformat()}
                    ids.append((await m.create_task(user_id, f"t{i}", schedule=schedule)).id)
                return ids

        return run(go())

    def run_now(self, task_id: int, user_id: int, now: datetime) -> int:
        async def go() -> int:
            async with AITaskManager(self.settings, clock=lambda: now) as manager:
                return (await manager.run_now(task_id, user_id)).id

        return run(go())

    def tick(self, now: datetime) -> float:
        async def go() -> float:
            engine = make_async_engine(self.settings.database_url)
            try:
                scheduler = TaskScheduler(engine, self.settings, self.publish)
                return await scheduler.tick(now)
            finally:
                await engine.dispose()

        return run(go())

    def dispatch(self, now: datetime) -> int:
        async def go() -> int:
            engine = make_async_engine(self.settings.database_url)
            try:
                return await TaskScheduler(engine, self.settings, self.publish).dispatch_owed(now)
            finally:
                await engine.dispose()

        return run(go())

    def owner_of(self, run_ids: Sequence[int]) -> list[int]:
        return [
            int(
                self.db.scalar(
                    "SELECT t.user_id FROM task_runs r JOIN ai_tasks t ON t.id = r.task_id "
                    "WHERE r.id = :r",
                    r=run_id,
                )
            )
            for run_id in run_ids
        ]

    def set_run(self, run_id: int, **values: Any) -> None:
        """Change a run as a worker or the reaper would (typed: datetimes right on SQLite)."""
        with self.db.engine.begin() as conn:
            conn.execute(update(TaskRun).where(TaskRun.id == run_id).values(**values))

    def finish(self, run_ids: Sequence[int], now: datetime) -> None:
        """As a worker would: the runs ran and succeeded."""
        for run_id in run_ids:
            self.set_run(run_id, state="succeeded", finished_at=now, lease_expires_at=None)

    def reap(self, now: datetime) -> int:
        """The reaper's step: runs whose worker vanished become retries."""

        async def go() -> int:
            engine = make_async_engine(self.settings.database_url)
            try:
                async with engine.begin() as conn:
                    reaped = await reaping.reap(
                        conn, now=now, policy=RetryPolicy(10.0, 600.0), pause_after=3
                    )
                return reaped.count
            finally:
                await engine.dispose()

        return run(go())

    def states(self, user_id: int) -> dict[str, int]:
        rows = self.db.rows(
            "SELECT CASE WHEN r.state = 'queued' AND r.published_at IS NULL THEN 'waiting' "
            "ELSE r.state END AS s, count(*) FROM task_runs r JOIN ai_tasks t ON t.id = r.task_id "
            "WHERE t.user_id = :u GROUP BY 1",
            u=user_id,
        )
        return {str(s): int(n) for s, n in rows}

    def close(self) -> None:
        self.db.close()


@pytest.fixture
def step(url: str) -> Iterator[Any]:
    made: list[Step] = []

    def make(**env: str) -> Step:
        made.append(Step(url, **env))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_runs_beyond_the_cap_wait_as_data_and_follow_as_earlier_ones_finish(step: Any) -> None:
    s: Step = step(USER_DISPATCH_LIMIT="3")
    bob = s.user("Bob")
    s.tasks(bob, 8)
    delay = s.tick(NOW)
    assert len(s.published) == 3
    assert s.states(bob) == {"queued": 3, "waiting": 5}
    # The waiting runs are owed a tick interval later, not at once: the step does not spin.
    assert delay == pytest.approx(TICK)
    # Still at the cap: nothing more is sent, and the step asks to be called a tick later.
    later = NOW + timedelta(seconds=1)
    assert s.tick(later) == pytest.approx(TICK)
    assert len(s.published) == 3
    # Two of them finished: two more are sent, the oldest first.
    s.finish(s.published[:2], later)
    s.tick(later + timedelta(seconds=1))
    assert len(s.published) == 5
    assert s.states(bob) == {"queued": 3, "succeeded": 2, "waiting": 3}


def test_a_user_with_one_run_is_sent_while_another_waits_at_the_cap(step: Any) -> None:
    s: Step = step(USER_DISPATCH_LIMIT="2")
    bob, alice, cy = s.user("Bob"), s.user("Alice"), s.user("Cy")
    s.tasks(bob, 6)
    s.tick(NOW)
    assert s.owner_of(s.published) == [bob, bob]
    alice_task = s.tasks(alice, 1, at=NOW + timedelta(days=1))[0]
    cy_task = s.tasks(cy, 1, at=NOW + timedelta(days=1))[0]
    s.run_now(alice_task, alice, NOW + timedelta(seconds=1))
    s.run_now(cy_task, cy, NOW + timedelta(seconds=2))
    s.tick(NOW + timedelta(seconds=3))
    assert sorted(s.owner_of(s.published[2:])) == sorted([alice, cy])
    assert s.states(bob) == {"queued": 2, "waiting": 4}


def test_fair_order_serves_each_user_once_before_anyone_twice(step: Any) -> None:
    """More owed runs than one dispatch sends: round robin across users, oldest first."""
    s: Step = step(USER_DISPATCH_LIMIT="100", SCHEDULER_BATCH="4")
    bob, alice, cy = s.user("Bob"), s.user("Alice"), s.user("Cy")
    later = NOW + timedelta(days=1)
    tasks = {u: s.tasks(u, n, at=later) for u, n in ((bob, 5), (alice, 2), (cy, 1))}
    for i, (u, ids) in enumerate(tasks.items()):
        for j, task_id in enumerate(ids):
            s.run_now(task_id, u, NOW + timedelta(seconds=10 * i + j))  # Bob's are the oldest
    assert s.dispatch(NOW + timedelta(minutes=1)) == 4
    # Rank 1 of each user, then rank 2 by age: Bob's second run before Alice's second.
    assert sorted(s.owner_of(s.published)) == sorted([bob, bob, alice, cy])


def test_no_cap_sends_everything_at_once(step: Any) -> None:
    s: Step = step(USER_DISPATCH_LIMIT="0")
    bob = s.user("Bob")
    s.tasks(bob, 8)
    s.tick(NOW)
    assert len(s.published) == 8
    assert s.states(bob) == {"queued": 8}


def test_retries_and_run_now_runs_are_sent_within_the_cap(step: Any) -> None:
    s: Step = step(USER_DISPATCH_LIMIT="2")
    bob = s.user("Bob")
    ids = s.tasks(bob, 2)
    s.tick(NOW)
    assert len(s.published) == 2
    retry = s.published[1]
    # A run asked for now, and a retry that falls due after it: one place is free.
    extra = s.run_now(ids[0], bob, NOW + timedelta(seconds=1))
    s.set_run(retry, state="retrying", attempt=1, lease_expires_at=NOW + timedelta(seconds=2))
    s.tick(NOW + timedelta(seconds=3))
    assert s.published[2:] == [extra]
    assert s.states(bob) == {"queued": 2, "retrying": 1}
    s.finish(s.published[:1], NOW + timedelta(seconds=4))
    s.tick(NOW + timedelta(seconds=5))
    assert s.published[3:] == [retry]
    assert s.states(bob) == {"queued": 2, "succeeded": 1}


def test_a_run_the_reaper_retries_is_sent_again_within_the_cap(step: Any) -> None:
    s: Step = step(USER_DISPATCH_LIMIT="1")
    bob = s.user("Bob")
    s.tasks(bob, 2)
    s.tick(NOW)
    first = s.published[0]
    assert s.states(bob) == {"queued": 1, "waiting": 1}
    # A worker claimed it and vanished: the reaper makes it a retry, after a backoff.
    s.set_run(
        first,
        state="running",
        attempt=1,
        started_at=NOW,
        worker_id="w:1",
        lease_expires_at=NOW + timedelta(seconds=1),
    )
    assert s.reap(NOW + timedelta(seconds=2)) == 1
    s.tick(NOW + timedelta(seconds=3))  # the retry is not due yet: the waiting run goes
    assert len(s.published) == 2
    assert s.states(bob) == {"queued": 1, "retrying": 1}
    s.finish(s.published[1:], NOW + timedelta(seconds=4))
    s.tick(NOW + timedelta(minutes=11))  # the retry is due (backoff at most 600 s)
    assert s.published[2:] == [first]
    assert s.states(bob) == {"queued": 1, "succeeded": 1}


def test_runs_per_hour_beyond_the_limit_are_skipped_with_the_reason(step: Any) -> None:
    s: Step = step(USER_DISPATCH_LIMIT="0", MAX_RUNS_PER_HOUR="3")
    bob, alice = s.user("Bob"), s.user("Alice")
    s.tasks(bob, 5)
    s.tasks(alice, 1)
    s.tick(NOW)
    assert sorted(s.owner_of(s.published)) == sorted([bob, bob, bob, alice])
    assert s.states(bob) == {"queued": 3, "skipped": 2}
    reasons = s.db.rows("SELECT DISTINCT error FROM task_runs WHERE state = 'skipped'")
    assert len(reasons) == 1 and "MAX_RUNS_PER_HOUR" in reasons[0][0]
    s.finish(s.published, NOW + timedelta(seconds=1))
    # A run asked for later in the same hour waits; once the hour has passed, it is sent.
    task = s.tasks(bob, 1, at=NOW + timedelta(days=1))[0]
    extra = s.run_now(task, bob, NOW + timedelta(minutes=30))
    s.tick(NOW + timedelta(minutes=30))
    assert extra not in s.published
    assert s.states(bob)["waiting"] == 1
    s.tick(NOW + timedelta(minutes=61))
    assert s.published[-1] == extra
    assert s.states(bob) == {"queued": 1, "succeeded": 3, "skipped": 2}
