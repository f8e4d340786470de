"""The event feed of the façade: a user's new runs, their runs' changes of state, and their new
notifications, read by polling the database (what ``GET /v1/events`` streams).

A :class:`Feed` is where one reader is: the newest run and notification ids it has seen (its
:class:`Cursor`, sent as each event's id so that a reconnecting reader resumes from it) and the
state of each of its runs still open (queued, retrying or running), to tell when one moves.
:meth:`Events.poll` reads what is newer and returns the events with the feed moved on. Only the
user's own objects are read. A run that moved while no reader was connected is not replayed:
its newest state is ``GET /v1/runs/{id}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from personal_assistant.app import views
from personal_assistant.app._base import Part
from personal_assistant.core.states import OPEN_RUN_STATES
from personal_assistant.database.failures import explained
from personal_assistant.database.models import AITask, Notification, TaskRun

__all__ = ["BATCH", "Cursor", "Event", "Events", "Feed"]

#: The most runs, and notifications, one poll reads.
BATCH = 500
#: The largest id a column holds (64 bits): a larger one in a cursor is no cursor.
_ID_MAX = 2**63 - 1
_CURSOR = re.compile(r"([0-9]{1,19})\.([0-9]{1,19})")


@dataclass(frozen=True)
class Cursor:
    """The newest run id and notification id a reader has seen; ``"<run>.<notification>"``."""

    run: int = 0
    note: int = 0

    def __str__(self) -> str:
        return f"{self.run}.{self.note}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        """A cursor sent back (``Last-Event-ID``); None when absent or not one."""
        found = _CURSOR.fullmatch((text or "").strip())
        if found is None:
            return None
        run, note = int(found.group(1)), int(found.group(2))
        return cls(run, note) if max(run, note) <= _ID_MAX else None


@dataclass(frozen=True)
class Event:
    """One event: its kind, the run or notification as the API shows it, the cursor after it."""

    kind: Literal["run", "notification"]
    data: dict[str, object]
    cursor: Cursor


@dataclass(frozen=True)
class Feed:
    """Where a reader is: its cursor and the last state seen of each of its open runs."""

    cursor: Cursor
    open_runs: dict[int, str] = field(default_factory=dict)


class Events(Part):
    """A user's events, one poll at a time."""

    async def start(self, user_id: int, after: Cursor | None = None) -> Feed:
        """A feed from now, or from ``after`` (a cursor sent back): then what is newer than it
        comes on the first poll. The user's open runs are watched from here."""
        with explained("cannot read the database at", self.settings.database_url):
            async with self.engine.connect() as conn:
                if after is None:
                    last_run = await conn.scalar(
                        select(func.max(TaskRun.id))
                        .join(AITask, AITask.id == TaskRun.task_id)
                        .where(AITask.user_id == user_id)
                    )
                    last_note = await conn.scalar(
                        select(func.max(Notification.id)).where(Notification.user_id == user_id)
                    )
                    after = Cursor(last_run or 0, last_note or 0)
                rows = await conn.execute(
                    select(TaskRun.id, TaskRun.state)
                    .join(AITask, AITask.id == TaskRun.task_id)
                    .where(
                        AITask.user_id == user_id,
                        TaskRun.id <= after.run,
                        TaskRun.state.in_(OPEN_RUN_STATES),
                    )
                    .limit(BATCH)
                )
                watched = {int(r.id): str(r.state) for r in rows}
        return Feed(after, watched)

    async def poll(self, user_id: int, feed: Feed) -> tuple[list[Event], Feed]:
        """The events since ``feed`` (oldest first: runs that moved, new runs, new
        notifications) and the feed after them."""
        cursor = feed.cursor
        new_runs = (
            select(TaskRun)
            .join(AITask, AITask.id == TaskRun.task_id)
            .where(AITask.user_id == user_id, TaskRun.id > cursor.run)
            .order_by(TaskRun.id)
            .limit(BATCH)
        )
        notes = (
            select(Notification)
            .where(Notification.user_id == user_id, Notification.id > cursor.note)
            .order_by(Notification.id)
            .limit(BATCH)
        )
        with explained("cannot read the database at", self.settings.database_url):
            async with AsyncSession(self.engine) as session:
                moved = []
                if feed.open_runs:
                    moved = list(
                        await session.scalars(
                            select(TaskRun)
                            .join(AITask, AITask.id == TaskRun.task_id)
                            .where(AITask.user_id == user_id, TaskRun.id.in_(feed.open_runs))
                            .order_by(TaskRun.id)
                        )
                    )
                fresh = list(await session.scalars(new_runs))
                fresh_notes = list(await session.scalars(notes))
        events: list[Event] = []
        watched = dict(feed.open_runs)
        gone = set(watched) - {r.id for r in moved}  # deleted with their task
        for run_id in gone:
            del watched[run_id]
        for run in moved:
            if str(run.state) != watched[run.id]:
                events.append(Event("run", views.run(run), cursor))
            watched[run.id] = str(run.state)
        for run in fresh:
            cursor = Cursor(run.id, cursor.note)
            events.append(Event("run", views.run(run), cursor))
            watched[run.id] = str(run.state)
        for note in fresh_notes:
            cursor = Cursor(cursor.run, note.id)
            events.append(Event("notification", views.notification(note), cursor))
        still_open = {k: v for k, v in watched.items() if v in set(OPEN_RUN_STATES)}
        return events, Feed(cursor, still_open)
