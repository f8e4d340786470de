"""The ``ai_tasks`` row (pure): the one builder of a new row, and what a schedule edit changes.

Three paths create tasks: the manager (a task someone asked for), the calendar sync (a
reminder per upcoming event) and the import of an export. Each checks what it was given, then
builds its row with :func:`new_task`, so a new column gets its value in one place, and the
columns that follow from a schedule (:func:`schedule_columns`) are written the same way by a
creation and an edit.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from personal_assistant.core.schedule_json import schedule_to_dict
from personal_assistant.core.schedule_kinds import Schedule
from personal_assistant.core.states import TaskStatus


def schedule_columns(schedule: Schedule) -> dict[str, Any]:
    """The columns that follow from a task's schedule."""
    stored = schedule_to_dict(schedule)
    return {"schedule_kind": str(stored["kind"]), "schedule": stored, "timezone": schedule.timezone}


def new_task(
    fields: Mapping[str, Any],
    *,
    schedule: Schedule,
    next_run_at: datetime | None,
    now: datetime,
) -> dict[str, Any]:
    """A new active task: its checked ``fields`` (title, description, type, context, channels,
    catch-up, retries), its schedule and first firing, and fresh counters. Its owner is set
    where the row is written, with the owner's row locked (the quotas count under that lock)."""
    return {
        **fields,
        **schedule_columns(schedule),
        "next_run_at": next_run_at,
        "status": TaskStatus.ACTIVE,
        "consecutive_failures": 0,
        "created_at": now,
        "updated_at": now,
    }


def status_after_edit(
    status: TaskStatus, following: datetime | None, *, ran: datetime, open_run: bool
) -> dict[str, Any]:
    """The status changes of a schedule edit whose next firing without a run is ``following``.

    A firing to come makes a finished task active again. With none left, a run in flight
    finishes the task as usual; without one, an active (or completed) task is completed, with
    the reason. A failed or paused task keeps its status and reason.
    """
    if following is not None:
        if status in (TaskStatus.COMPLETED, TaskStatus.FAILED):
            return {"status": TaskStatus.ACTIVE, "status_reason": None, "consecutive_failures": 0}
        return {}
    if open_run or status not in (TaskStatus.ACTIVE, TaskStatus.COMPLETED):
        return {}
    when = ran.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return {
        "status": TaskStatus.COMPLETED,
        "status_reason": f"its schedule has no firing left: the one at {when} already ran",
    }
