"""The canary: a task of a reserved user, fired now and followed through the running system.

It is created in the database like any task (once, due in a moment); the scheduler claims and
dispatches it, a worker runs it with the configured agent and writes the in-app notification.
Doctor only watches the rows: queued, running, succeeded, notification delivered, each with its
time. Its rows are deleted afterwards, whatever happened (the user's, which cascade).

``--deep`` adds a canary that fails on purpose (the offline agent's ``simulate_failure``) and
must retry and end ``failed``, and a burst of runs due at one instant (throughput, lateness).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.config import Settings
from personal_assistant.database.models import AITask, Notification, TaskRun, User
from personal_assistant.tasks import inputs as check
from personal_assistant.tasks import rows
from personal_assistant.tasks.manager import AITaskManager

#: The reserved user's display name: its rows are doctor's, and doctor deletes them.
CANARY_USER = "pa doctor canary"
#: How far ahead of "now" the canary is due (a task due in the past would be a catch-up).
LEAD = timedelta(seconds=1)
POLL_S = 0.05


@dataclass(frozen=True)
class RunTrace:
    """What happened to one canary run, read from its rows."""

    state: str | None = None  # None: no run was made
    scheduled_for: datetime | None = None
    queued_at: datetime | None = None
    published_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    delivered_at: datetime | None = None
    attempts: int = 0
    error: str | None = None
    waited_s: float = 0.0
    timed_out: bool = False


@dataclass(frozen=True)
class Burst:
    """A burst of runs due at one instant."""

    runs: int
    finished: int
    lateness_s: tuple[float, ...]  # started_at - scheduled_for, of the runs that started
    seconds: float  # from the due instant to the last run finished
    timed_out: bool


class Canary:
    """Creates the reserved user on first use; :meth:`cleanup` deletes it and everything it has."""

    def __init__(self, settings: Settings, engine: AsyncEngine, clock: Callable[[], datetime]):
        self._engine = engine
        self._clock = clock
        self._manager = AITaskManager(settings, engine=engine, clock=clock)
        self._per_user = settings.user_dispatch_limit or None  # fair dispatch's pace per tick
        self._user_id: int | None = None

    async def _user(self) -> int:
        if self._user_id is None:
            self._user_id = (await self._manager.create_user(CANARY_USER)).id
        return self._user_id

    async def fire(self, *, fail: bool = False, timeout_s: float = 60.0) -> RunTrace:
        """A canary due now, followed until its run ends (and, succeeded, its notification is
        delivered) or ``timeout_s`` passes. ``fail``: it fails on purpose and retries once."""
        user = await self._user()
        context = {"simulate_failure": "pa doctor: a failure on purpose"} if fail else None
        task = await self._manager.create_task(
            user,
            "pa doctor canary" + (" (failing)" if fail else ""),
            description="Reply briefly: pa doctor checks that runs flow end to end.",
            schedule={"kind": "once", "at": (self._clock() + LEAD).isoformat()},
            ai_context=context,
            notification_channels=["in_app"],
            max_retries=1 if fail else 0,
        )
        started = asyncio.get_running_loop().time()
        while True:
            trace = await self._trace(task.id)
            waited = asyncio.get_running_loop().time() - started
            done = trace.state in ("failed",) or (
                trace.state == "succeeded" and trace.delivered_at is not None
            )
            if done or waited > timeout_s:
                return replace(trace, waited_s=waited, timed_out=not done)
            await asyncio.sleep(POLL_S)

    async def _trace(self, task_id: int) -> RunTrace:
        async with self._engine.connect() as conn:
            runs = (
                await conn.execute(
                    select(TaskRun).where(TaskRun.task_id == task_id).order_by(TaskRun.id)
                )
            ).all()
            delivered = await conn.scalar(
                select(func.max(Notification.delivered_at)).where(
                    Notification.task_id == task_id, Notification.channel == "in_app"
                )
            )
        if not runs:
            return RunTrace()
        last = runs[-1]
        return RunTrace(
            state=last.state,
            scheduled_for=last.scheduled_for,
            queued_at=last.queued_at,
            published_at=last.published_at,
            started_at=last.started_at,
            finished_at=last.finished_at,
            delivered_at=delivered,
            attempts=int(last.attempt),
            error=last.error,
        )

    async def burst(self, runs: int, *, timeout_s: float = 60.0) -> Burst:
        """``runs`` tasks due at one instant, followed until all end or ``timeout_s``.

        Written in one statement, from the row builder every task is made by, so that the
        instant is still ahead when the last is written however many there are. Spread over
        as many reserved users as fair dispatch needs to send them all in one tick
        (``USER_DISPATCH_LIMIT`` a user): the burst measures throughput, not fairness."""
        per_user = self._per_user or runs
        owners = [await self._user()]
        for _ in range((runs - 1) // per_user):
            owners.append((await self._manager.create_user(CANARY_USER)).id)
        now = self._clock()
        due = now + timedelta(seconds=2)
        schedule, first = check.schedule({"kind": "once", "at": due.isoformat()}, "UTC", now)
        fields = {
            "description": "pa doctor: one of a burst of runs due at once",
            "task_type": "reminder",
            "ai_context": {},
            "notification_channels": ["in_app"],
            "catch_up": "once",
            "max_retries": 0,
        }
        row = rows.new_task(fields, schedule=schedule, next_run_at=first, now=now)
        async with self._engine.begin() as conn:
            inserted = await conn.execute(
                insert(AITask).returning(AITask.id),
                [
                    {**row, "user_id": owners[n // per_user], "title": f"pa doctor burst {n}"}
                    for n in range(runs)
                ],
            )
            ids = list(inserted.scalars())
        started = asyncio.get_running_loop().time()
        while True:
            async with self._engine.connect() as conn:
                found = (
                    await conn.execute(
                        select(
                            TaskRun.state,
                            TaskRun.scheduled_for,
                            TaskRun.started_at,
                            TaskRun.finished_at,
                        ).where(TaskRun.task_id.in_(ids))
                    )
                ).all()
            ended = [r for r in found if r.state in ("succeeded", "failed")]
            waited = asyncio.get_running_loop().time() - started
            if len(ended) == runs or waited > timeout_s:
                late = tuple(
                    sorted((r.started_at - r.scheduled_for).total_seconds() for r in ended)
                )
                last = max((r.finished_at for r in ended), default=due)
                return Burst(
                    runs,
                    len(ended),
                    late,
                    max(0.0, (last - due).total_seconds()),
                    len(ended) < runs,
                )
            await asyncio.sleep(0.2)

    async def cleanup(self) -> None:
        """Delete the reserved user (a leftover of an interrupted doctor's too), its tasks, runs
        and notifications: explicitly, since SQLite enforces no cascade here."""
        users = select(User.id).where(User.display_name == CANARY_USER).scalar_subquery()
        tasks = select(AITask.id).where(AITask.user_id.in_(users)).scalar_subquery()
        async with self._engine.begin() as conn:
            await conn.execute(delete(Notification).where(Notification.user_id.in_(users)))
            await conn.execute(delete(TaskRun).where(TaskRun.task_id.in_(tasks)))
            await conn.execute(delete(AITask).where(AITask.user_id.in_(users)))
            await conn.execute(delete(User).where(User.id.in_(users)))
        await self._manager.close()
