"""Rows as plain dicts, one shape for the CLI's ``--json`` and the HTTP API; datetimes become
ISO-8601 UTC strings."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import TYPE_CHECKING

from personal_assistant.core.schedule_json import parse_schedule
from personal_assistant.core.schedule_text import describe

if TYPE_CHECKING:
    from personal_assistant.database.models import AITask, Notification, TaskRun, User
    from personal_assistant.tasks.page import TaskRow


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC, or None."""
    return None if moment is None else moment.astimezone(UTC).isoformat()


def user(row: User) -> dict[str, object]:
    return {
        "id": row.id,
        "display_name": row.display_name,
        "email": row.email,
        "phone": row.phone,
        "timezone": row.timezone,
        "is_admin": row.is_admin,
        "digest": digest(row.digest_at, row.digest_channel, row.next_digest_at),
        "created_at": iso(row.created_at),
    }


def clock(at: time) -> str:
    """A wall-clock time: ``20:00``, or ``20:00:30`` when it has seconds."""
    return at.strftime("%H:%M:%S" if at.second else "%H:%M")


def digest(
    at: time | None, channel: str | None, next_at: datetime | None
) -> dict[str, object] | None:
    """A user's daily digest (``pa user digest``); None when they have none."""
    if at is None:
        return None
    return {"at": clock(at), "channel": channel, "next_at": iso(next_at)}


def task(row: AITask | TaskRow) -> dict[str, object]:
    return {
        "id": row.id,
        "user_id": row.user_id,
        "title": row.title,
        "instruction": row.description,
        "task_type": str(row.task_type),
        "status": str(row.status),
        "status_reason": row.status_reason,
        "schedule": row.schedule,
        "schedule_description": describe(parse_schedule(row.schedule)),
        "timezone": row.timezone,
        "next_run_at": iso(row.next_run_at),
        "last_run_at": iso(row.last_run_at),
        "notification_channels": list(row.notification_channels),
        "catch_up": str(row.catch_up),
        "max_retries": row.max_retries,
        "consecutive_failures": row.consecutive_failures,
        "ai_context": row.ai_context,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def run(row: TaskRun) -> dict[str, object]:
    return {
        "id": row.id,
        "task_id": row.task_id,
        "scheduled_for": iso(row.scheduled_for),
        "state": str(row.state),
        "attempt": row.attempt,
        "queued_at": iso(row.queued_at),
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
        "result": row.result,
        "error": row.error,
        "agent_name": row.agent_name,
        "agent_model": row.agent_model,
    }


def notification(row: Notification) -> dict[str, object]:
    return {
        "id": row.id,
        "run_id": row.run_id,
        "task_id": row.task_id,
        "user_id": row.user_id,
        "channel": row.channel,
        "status": str(row.status),
        "title": row.title,
        "body": row.body,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "created_at": iso(row.created_at),
        "delivered_at": iso(row.delivered_at),
        "read_at": iso(row.read_at),
    }
