"""The dashboard's reads of the façade: each task's last run, and a user's last hours of
activity (runs per hour, their lateness, the figures the health page shows).

Read only, one short connection per call; every query is scoped to the user.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from personal_assistant.app._base import Part
from personal_assistant.core.states import RunState, TaskStatus
from personal_assistant.database.failures import explained
from personal_assistant.database.models import AITask, Notification, TaskRun

__all__ = ["Activity", "Dashboard", "Hour", "LastRun"]

#: The most runs one activity read looks at (the newest first).
ROWS_MAX = 10_000


@dataclass(frozen=True)
class LastRun:
    """A task's newest run: its state, and when it was due and finished."""

    task_id: int
    run_id: int
    state: str
    scheduled_for: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class Hour:
    """One hour of a user's runs: how many were due in it, how many failed, and how late the
    started ones started (seconds after they were due; None: none started)."""

    start: datetime
    runs: int = 0
    failed: int = 0
    max_late_s: float | None = None


@dataclass(frozen=True)
class Activity:
    """A user's last hours, oldest hour first, and the figures around them."""

    hours: tuple[Hour, ...]
    active_tasks: int
    runs_last_hour: int
    failed: int  # in the whole period
    unread: int


class Dashboard(Part):
    """What the web dashboard reads beyond the task manager's operations."""

    async def last_runs(self, owner_id: int, task_ids: Iterable[int]) -> dict[int, LastRun]:
        """The newest run (by due time) of each of the user's tasks of ``task_ids`` that has
        one."""
        wanted = list(task_ids)
        if not wanted:
            return {}
        newest = (
            select(TaskRun.task_id, func.max(TaskRun.scheduled_for).label("due"))
            .join(AITask, AITask.id == TaskRun.task_id)
            .where(AITask.user_id == owner_id, TaskRun.task_id.in_(wanted))
            .group_by(TaskRun.task_id)
            .subquery()
        )
        query = select(
            TaskRun.task_id, TaskRun.id, TaskRun.state, TaskRun.scheduled_for, TaskRun.finished_at
        ).join(
            newest,
            (newest.c.task_id == TaskRun.task_id) & (newest.c.due == TaskRun.scheduled_for),
        )
        with explained("cannot read the database at", self.settings.database_url):
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        return {row[0]: LastRun(*row) for row in rows}

    async def activity(self, owner_id: int, hours: int = 24) -> Activity:
        """The user's runs due in the last ``hours`` whole hours (this one included), hour by
        hour, and their active tasks, runs of the last hour, failures and unread
        notifications."""
        now = self.clock()
        this_hour = now.replace(minute=0, second=0, microsecond=0)
        since = this_hour - timedelta(hours=hours - 1)
        runs = (
            select(TaskRun.scheduled_for, TaskRun.started_at, TaskRun.state)
            .join(AITask, AITask.id == TaskRun.task_id)
            .where(AITask.user_id == owner_id, TaskRun.scheduled_for >= since)
            .order_by(TaskRun.scheduled_for.desc())
            .limit(ROWS_MAX)
        )
        active = select(func.count()).where(
            AITask.user_id == owner_id, AITask.status == TaskStatus.ACTIVE
        )
        unread = select(func.count()).where(
            Notification.user_id == owner_id, Notification.read_at.is_(None)
        )
        with explained("cannot read the database at", self.settings.database_url):
            async with self.engine.connect() as conn:
                rows = (await conn.execute(runs)).all()
                active_count = int(await conn.scalar(active) or 0)
                unread_count = int(await conn.scalar(unread) or 0)
        buckets = hourly(since, hours, ((r[0], r[1], r[2]) for r in rows))
        return Activity(
            hours=buckets,
            active_tasks=active_count,
            runs_last_hour=sum(1 for r in rows if r[0] > now - timedelta(hours=1)),
            failed=sum(h.failed for h in buckets),
            unread=unread_count,
        )


def hourly(
    since: datetime, hours: int, runs: Iterable[tuple[datetime, datetime | None, str]]
) -> tuple[Hour, ...]:
    """Runs (due, started, state) counted into ``hours`` hours from ``since`` (pure); a run
    due outside them is left out."""
    counts = [0] * hours
    failed = [0] * hours
    late: list[float | None] = [None] * hours
    for due, started, state in runs:
        index = int((due - since) // timedelta(hours=1))
        if not 0 <= index < hours:
            continue
        counts[index] += 1
        failed[index] += state == RunState.FAILED
        if started is not None:
            seconds = max(0.0, (started - due).total_seconds())
            late[index] = max(late[index] or 0.0, seconds)
    return tuple(
        Hour(since + timedelta(hours=i), counts[i], failed[i], late[i]) for i in range(hours)
    )
