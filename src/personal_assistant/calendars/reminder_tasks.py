"""The reminder task of a calendar occurrence, made as ``AITaskManager.create_task`` makes one.

Whoever can edit a feed writes its events' text, not the subscriber's instructions: the task's
instruction (``description``) is :func:`reminder_instruction`, made from the subscription and
the event's times; the event's text (summary, place, notes, uid) goes to
``ai_context["calendar"]``, which the prompt quotes as untrusted data
(:mod:`personal_assistant.agents.prompt`). The title is ``Reminder: <summary>``, for the lists
and the notification; bidi controls are dropped from the event's text (free text refuses them,
``task_inputs.text``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant.calendars import properties, reminders, store
from personal_assistant.calendars.ics import Occurrence
from personal_assistant.core.schedule_json import schedule_to_dict
from personal_assistant.core.schedule_kinds import Once
from personal_assistant.core.states import CatchUp, TaskType
from personal_assistant.database.models import AITask
from personal_assistant.safe_text import without_bidi
from personal_assistant.tasks import inputs as check
from personal_assistant.tasks import rows

__all__ = ["LOCATION_KEPT", "NOTES_KEPT", "REWRITTEN", "ReminderTasks", "reminder_instruction"]

#: Characters of an event's place and notes kept in its reminder's ``ai_context`` (the event's
#: row keeps them whole): the context stays well under ``CONTEXT_MAX_BYTES``.
LOCATION_KEPT = 500
NOTES_KEPT = 4000
#: The task columns a changed occurrence rewrites (``notification_channels`` stay as made).
REWRITTEN = ("title", "description", "ai_context", "schedule", "next_run_at")


def reminder_instruction(feed_name: str, when: str) -> str:
    """A reminder's instruction: the subscription's, with nothing of the event's text."""
    return (
        f'Remind me of an event from my calendar "{feed_name}": {when}. '
        "Its title, place and notes are in the calendar event data."
    )


def _kept(text: str, limit: int) -> str:
    return properties.trim(without_bidi(text), limit)


class ReminderTasks:
    """The reminder tasks of one feed's occurrences, for one sync (module doc)."""

    def __init__(self, feed: store.Feed, timezone: str, now: datetime, max_retries: int) -> None:
        self.feed = feed
        self.timezone = timezone
        self.zone = ZoneInfo(timezone)
        self.now = now
        self.max_retries = check.max_retries(max_retries)
        self._prepared: dict[tuple[str, str], dict[str, Any]] = {}

    def prepare(self, occurrences: Sequence[Occurrence]) -> None:
        """Compute the :meth:`fields` of ``occurrences`` now (CPU-bound: call it in a thread)."""
        for occurrence in occurrences:
            self._prepared[(occurrence.uid, occurrence.key)] = self._fields(occurrence)

    def fields(self, occurrence: Occurrence) -> dict[str, Any]:
        """The columns that follow from the occurrence (:data:`REWRITTEN`)."""
        prepared = self._prepared.get((occurrence.uid, occurrence.key))
        return prepared if prepared is not None else self._fields(occurrence)

    def _fields(self, occurrence: Occurrence) -> dict[str, Any]:
        fire = reminders.fire_at(occurrence, self.feed.lead_minutes, self.zone, self.now)
        when = reminders.reminder_when(occurrence, self.timezone)
        ends = occurrence.ends_at
        event = {
            "feed": self.feed.name,
            "uid": _kept(occurrence.uid, properties.UID_MAX),
            "starts_at": occurrence.starts_at.isoformat(),
            "ends_at": None if ends is None else ends.isoformat(),
            "all_day": occurrence.all_day,
            "when": when,
            "summary": _kept(occurrence.summary, properties.SUMMARY_MAX),
            "location": _kept(occurrence.location, LOCATION_KEPT),
            "description": _kept(occurrence.description, NOTES_KEPT),
        }
        title = without_bidi(reminders.reminder_title(occurrence))
        return {
            "title": check.title(title),
            "description": check.description(reminder_instruction(self.feed.name, when)),
            "ai_context": check.ai_context({"calendar": event}),
            "schedule": schedule_to_dict(Once(at=fire, timezone=self.timezone)),
            "next_run_at": fire,
        }

    def row(self, occurrence: Occurrence) -> dict[str, Any]:
        """The new task of ``occurrence``: a ``once`` reminder at its firing."""
        fields = dict(self.fields(occurrence))
        fire = fields.pop("next_run_at")
        del fields["schedule"]
        fields |= {
            "task_type": TaskType.REMINDER.value,
            "notification_channels": list(self.feed.channels),
            "catch_up": CatchUp.ONCE.value,
            "max_retries": self.max_retries,
        }
        schedule = Once(at=fire, timezone=self.timezone)
        row = rows.new_task(fields, schedule=schedule, next_run_at=fire, now=self.now)
        return {"user_id": self.feed.user_id, **row}

    async def insert(self, conn: AsyncConnection, occurrences: Sequence[Occurrence]) -> list[int]:
        """Insert one task per occurrence; their ids, in the same order."""
        if not occurrences:
            return []
        result = await conn.execute(
            insert(AITask).returning(AITask.id, sort_by_parameter_order=True),
            [self.row(o) for o in occurrences],
        )
        return [int(task_id) for task_id in result.scalars()]
