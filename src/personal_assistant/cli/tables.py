"""Human tables of the domain rows: tasks, firings, runs, notifications."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from personal_assistant.cli.output import shorten, table, when
from personal_assistant.core.schedule_json import parse_schedule
from personal_assistant.core.schedule_text import describe

if TYPE_CHECKING:
    from personal_assistant.database.models import AITask, Notification, TaskRun
    from personal_assistant.tasks.page import TaskRow


def tasks(rows: Sequence[AITask | TaskRow]) -> str:
    body = [
        (
            t.id,
            shorten(t.title, 40),
            t.task_type,
            t.status,
            describe(parse_schedule(t.schedule)),
            when(t.next_run_at, t.timezone),
        )
        for t in rows
    ]
    headers = ("ID", "TITLE", "TYPE", "STATUS", "SCHEDULE", "NEXT RUN")
    return table(headers, body, empty="no tasks")


def firings(moments: Sequence[datetime], timezone: str) -> str:
    zone = ZoneInfo(timezone)
    body = [
        (
            n,
            m.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
            m.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z"),
        )
        for n, m in enumerate(moments, start=1)
    ]
    return table(("#", "UTC", f"LOCAL ({timezone})"), body, empty="no firings after now")


def runs(rows: Sequence[TaskRun], timezone: str | None = None) -> str:
    body = [
        (
            r.id,
            r.task_id,
            r.state,
            when(r.scheduled_for, timezone),
            r.attempt,
            when(r.finished_at),
            shorten(r.error or r.result, 40),
        )
        for r in rows
    ]
    headers = ("ID", "TASK", "STATE", "SCHEDULED FOR", "ATTEMPT", "FINISHED", "OUTCOME")
    return table(headers, body, empty="no runs")


def notifications(rows: Sequence[Notification]) -> str:
    body = [
        (
            n.id,
            n.task_id,
            n.channel,
            n.status,
            when(n.created_at),
            "yes" if n.read_at else "no",
            shorten(n.title, 30),
            shorten(n.body, 50),
        )
        for n in rows
    ]
    headers = ("ID", "TASK", "CHANNEL", "STATUS", "CREATED", "READ", "TITLE", "BODY")
    return table(headers, body, empty="no notifications")
