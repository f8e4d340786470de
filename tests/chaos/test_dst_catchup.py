"""Scenario 8: the scheduler down across a DST change, for each catch-up policy.

No processes: ``TaskScheduler.tick(now)`` is called with chosen instants against a real
PostgreSQL database (on the suite's own cluster). Four downtimes, each spanning one DST
transition of 2027: New York's spring-forward (14 March) and fall-back (7 November), Paris's
(28 March and 31 October). In each, four tasks per policy: ``daily`` at 01:30 and 02:30,
``cron`` every 30 minutes from 01:00 to 03:59, an hourly ``cron``, and an ``interval`` of one
hour (elapsed time). Each task's ``start`` and ``end`` bound its firings to its window, so the
windows do not see each other's tasks.

The scheduler is down from ``start`` until the recovery tick; then it ticks every 15 minutes
(on time for every firing) until ``end``. The runs recorded must be exactly the documented ones
(docs/explanation-schedules.md, "The DST policy"; docs/explanation-run-states.md, "Catch-up
after downtime"): a wall time inside a spring-forward gap fires once at the transition instant
(several such times collapse into that one firing); a wall time inside a fall-back fold fires
once, at its first occurrence; but the two cron tasks are Debian "wildcard" jobs (a minute or
hour field beginning with ``*``) and follow elapsed time: no firing at a wall time inside a gap,
both passes of a repeated hour. Interval firings are elapsed time, one per UTC hour. At the
recovery tick, ``all`` runs every due firing, ``once`` only the most recent (the others are
recorded ``skipped``), ``skip`` only those within the grace (300 s). Every firing after the
recovery runs. The expected instants below are written out by hand from those rules, not
computed by the code under test.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chaos import report
from chaos.harness import Outcome, fresh_database
from chaos.servers import PostgresServer
from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.runs.scheduler import TaskScheduler
from personal_assistant.tasks.manager import AITaskManager
from support.stack import Db

POLICIES = ("skip", "once", "all")
CREATED = datetime(2027, 3, 1, tzinfo=UTC)
GRACE = timedelta(seconds=300)  # MISFIRE_GRACE, the default
FOLLOW_UP = timedelta(minutes=15)

SCHEDULES: dict[str, dict[str, Any]] = {
    "daily": {"kind": "daily", "times": ["01:30", "02:30"]},
    "cron_30": {"kind": "cron", "expression": "*/30 1-3 * * *"},
    "hourly": {"kind": "cron", "expression": "0 * * * *"},
    "interval": {"kind": "interval", "every": "1h"},
}


def utc(text: str) -> datetime:
    """``"2027-03-14 06:30"`` (UTC) -> an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def on(day: str, *times: str) -> list[datetime]:
    """Instants on one UTC day: ``on("2027-03-14", "06:30", "07:00")``."""
    return [utc(f"{day} {t}") for t in times]


@dataclass(frozen=True)
class Window:
    """One downtime across a DST transition; ``expected``: every firing in [start, end]."""

    name: str
    zone: str
    start: datetime  # the scheduler stopped here (before the transition); the tasks start here
    recovery: datetime  # its first tick after the transition
    end: datetime  # follow-up ticks until here; the tasks end here
    expected: dict[str, list[datetime]]


WINDOWS = (
    # New York, 14 March 2027: 02:00 EST (07:00 UTC) jumps to 03:00 EDT.
    Window(
        "new_york_spring",
        "America/New_York",
        start=utc("2027-03-14 04:15"),  # 13 March 23:15 EST
        recovery=utc("2027-03-14 10:00"),  # 06:00 EDT
        end=utc("2027-03-14 12:00"),
        expected={
            # 01:30 EST; 02:30 does not exist: 03:00 EDT
            "daily": on("2027-03-14", "06:30", "07:00"),
            # 01:00, 01:30 EST; 02:00 and 02:30 do not exist; 03:00, 03:30 EDT
            "cron_30": on("2027-03-14", "06:00", "06:30", "07:00", "07:30"),
            # 00:00, 01:00 EST, then 03:00 EDT: every UTC hour (the local day has 23)
            "hourly": on("2027-03-14", *(f"{h:02d}:00" for h in range(5, 13))),
            "interval": on("2027-03-14", *(f"{h:02d}:15" for h in range(4, 12))),
        },
    ),
    # Paris, 28 March 2027: 02:00 CET (01:00 UTC) jumps to 03:00 CEST.
    Window(
        "paris_spring",
        "Europe/Paris",
        start=utc("2027-03-27 22:15"),  # 23:15 CET
        recovery=utc("2027-03-28 04:00"),  # 06:00 CEST
        end=utc("2027-03-28 06:00"),
        expected={
            "daily": on("2027-03-28", "00:30", "01:00"),  # 01:30 CET; 02:30 -> 03:00 CEST
            "cron_30": on("2027-03-28", "00:00", "00:30", "01:00", "01:30"),
            "hourly": on("2027-03-27", "23:00")
            + on("2027-03-28", *(f"{h:02d}:00" for h in range(0, 7))),
            "interval": on("2027-03-27", "22:15", "23:15")
            + on("2027-03-28", *(f"{h:02d}:15" for h in range(0, 6))),
        },
    ),
    # Paris, 31 October 2027: 03:00 CEST (01:00 UTC) falls back to 02:00 CET.
    Window(
        "paris_fall",
        "Europe/Paris",
        start=utc("2027-10-30 21:15"),  # 23:15 CEST
        recovery=utc("2027-10-31 05:00"),  # 06:00 CET
        end=utc("2027-10-31 07:00"),
        expected={
            # 01:30 CEST; 02:30 is shown twice: its first occurrence, 02:30 CEST
            "daily": on("2027-10-30", "23:30") + on("2027-10-31", "00:30"),
            # wildcard jobs: 01:00 .. 02:30 CEST, the repeated 02:00 and 02:30 CET, 03:00, 03:30 CET
            "cron_30": on("2027-10-30", "23:00", "23:30")
            + on("2027-10-31", "00:00", "00:30", "01:00", "01:30", "02:00", "02:30"),
            # 00:00 .. 02:00 CEST, 02:00 CET (01:00 UTC), 03:00 CET ..: every UTC hour
            "hourly": on("2027-10-30", "22:00", "23:00")
            + on("2027-10-31", *(f"{h:02d}:00" for h in range(0, 8))),
            # elapsed time: every UTC hour, the repeated hour included
            "interval": on("2027-10-30", "21:15", "22:15", "23:15")
            + on("2027-10-31", *(f"{h:02d}:15" for h in range(0, 7))),
        },
    ),
    # New York, 7 November 2027: 02:00 EDT (06:00 UTC) falls back to 01:00 EST.
    Window(
        "new_york_fall",
        "America/New_York",
        start=utc("2027-11-07 03:15"),  # 6 November 23:15 EDT
        recovery=utc("2027-11-07 11:00"),  # 06:00 EST
        end=utc("2027-11-07 13:00"),
        expected={
            "daily": on("2027-11-07", "05:30", "07:30"),  # 01:30 EDT (first of two); 02:30 EST
            # wildcard jobs: 01:00, 01:30 EDT, 01:00, 01:30 EST again, 02:00 .. 03:30 EST
            "cron_30": on(
                "2027-11-07", "05:00", "05:30", "06:00", "06:30", "07:00", "07:30", "08:00", "08:30"
            ),
            # 00:00, 01:00 EDT, 01:00 EST (06:00 UTC), 02:00 EST ..: every UTC hour
            "hourly": on("2027-11-07", *(f"{h:02d}:00" for h in range(4, 14))),
            "interval": on("2027-11-07", *(f"{h:02d}:15" for h in range(3, 13))),
        },
    ),
)


def expected_state(window: Window, policy: str, firing: datetime, due: Sequence[datetime]) -> str:
    """The state a firing's run must have: the documented catch-up rules, written out."""
    if firing > window.recovery:
        return "queued"  # after the recovery the scheduler ticks on time
    if policy == "all":
        return "queued"
    if policy == "once":
        return "queued" if firing == max(due) else "skipped"
    return "queued" if firing >= window.recovery - GRACE else "skipped"


@pytest.fixture
def dst_database(chaos_pg: PostgresServer) -> str:
    return fresh_database(chaos_pg, "chaos_dst")


@dataclass(frozen=True)
class Seeded:
    task: int
    window: Window
    schedule: str
    policy: str


async def _seed(settings: Settings) -> list[Seeded]:
    seeded: list[Seeded] = []
    async with AITaskManager(settings, clock=lambda: CREATED) as manager:
        user = await manager.create_user("DST", timezone="UTC")
        for window in WINDOWS:
            for name, schedule in SCHEDULES.items():
                for policy in POLICIES:
                    task = await manager.create_task(
                        user.id,
                        f"{window.name} {name} {policy}",
                        schedule={
                            **schedule,
                            "timezone": window.zone,
                            "start": window.start.isoformat(),
                            "end": window.end.isoformat(),
                        },
                        catch_up=policy,
                    )
                    seeded.append(Seeded(task.id, window, name, policy))
    return seeded


async def _run_ticks(settings: Settings, published: list[int]) -> dict[str, float]:
    """Recovery tick then follow-up ticks, window after window; the recovery ticks' seconds."""
    engine = make_async_engine(settings.database_url)
    scheduler = TaskScheduler(engine, settings, published.extend)
    took: dict[str, float] = {}
    try:
        for window in WINDOWS:
            started = time.perf_counter()
            await scheduler.tick(window.recovery)
            took[window.name] = time.perf_counter() - started
            now = window.recovery
            while now < window.end:
                now = min(now + FOLLOW_UP, window.end)
                await scheduler.tick(now)
    finally:
        await engine.dispose()
    return took


def test_downtime_across_dst_for_each_catch_up_policy(dst_database: str) -> None:
    # No worker finishes these runs, and they all belong to one user: with fair dispatch's
    # per-user cap, the runs past it would wait unsent (tests/integration/test_fair_dispatch.py).
    settings = Settings(DATABASE_URL=dst_database, USER_DISPATCH_LIMIT=0)  # type: ignore[call-arg]  # alias
    seeded = asyncio.run(_seed(settings))
    published: list[int] = []
    took = asyncio.run(_run_ticks(settings, published))

    db = Db(dst_database)
    try:
        recorded = db.rows("SELECT id, task_id, scheduled_for, state FROM task_runs")
        tasks = {
            row.id: row
            for row in db.rows("SELECT id, status, next_run_at, status_reason FROM ai_tasks")
        }
    finally:
        db.close()
    by_task: dict[int, list[Any]] = {}
    for row in recorded:
        by_task.setdefault(row.task_id, []).append(row)
    last_tick = max(w.end for w in WINDOWS)

    outcomes = []
    for policy in POLICIES:
        mine = [s for s in seeded if s.policy == policy]
        scheduled = completed = lost = duplicated = wrong = stuck = 0
        states: Counter[str] = Counter()
        mismatches: list[str] = []
        for s in mine:
            fires = s.window.expected[s.schedule]
            due = [f for f in fires if f <= s.window.recovery]
            want = {f: expected_state(s.window, policy, f, due) for f in fires}
            rows = by_task.get(s.task, [])
            seen = Counter(row.scheduled_for.astimezone(UTC) for row in rows)
            scheduled += len(fires)
            lost += sum(1 for f in fires if f not in seen)
            duplicated += sum(n - 1 for n in seen.values() if n > 1)
            duplicated += sum(n for at, n in seen.items() if at not in want)  # never due
            for row in rows:
                at = row.scheduled_for.astimezone(UTC)
                states[row.state] += 1
                if at in want and seen[at] == 1:
                    if row.state == want[at]:
                        completed += 1
                    else:
                        wrong += 1
                        mismatches.append(f"{s.window.name} {s.schedule} {at:%m-%d %H:%M}")
            task = tasks[s.task]
            if task.status == "active" and task.next_run_at is not None:
                stuck += task.next_run_at <= last_tick  # due, yet never claimed
            if policy == "skip" and not any(want[f] == "queued" for f in fires):
                # Every firing skipped and none left: the task is completed, and says why.
                assert task.status == "completed", (s, task)
                assert "skipped" in (task.status_reason or "")
        queued_ids = {r.id for s in mine for r in by_task.get(s.task, []) if r.state == "queued"}
        assert queued_ids <= set(published), "a queued run was never sent"
        outcome = Outcome(
            scenario=f"dst_catchup_{policy}",
            scheduled=scheduled,
            completed=completed,
            lost=lost,
            duplicated=duplicated,
            stuck=stuck,
            notifications_duplicated=0,
            notifications_redelivered=0,
            notifications_undelivered=0,
            recover_s=round(sum(took.values()), 1),
            notes=(
                f"catch_up={policy}: 4 downtimes across DST (New York, Paris; spring, fall), "
                f"{states['queued']} run, {states['skipped']} skipped; "
                f"{wrong} in the wrong state"
            ),
            extra={
                "states": dict(states),
                "wrong_state": mismatches,
                "recovery_tick_ms": {k: round(v * 1000, 1) for k, v in took.items()},
            },
        )
        report.record(outcome)
        outcomes.append(outcome)
    for outcome in outcomes:
        assert outcome.clean and not outcome.extra["wrong_state"], outcome
        assert outcome.completed == outcome.scheduled, outcome
