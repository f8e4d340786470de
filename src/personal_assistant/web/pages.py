"""The dashboard's pages that only read: the tasks, one task with its runs, the inbox and the
health page (the channels page is :mod:`.channel_forms`). Every object is the visitor's:
another user's task is the 404 page, as an unknown one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from personal_assistant.api.security import App
from personal_assistant.app.assistant import Assistant
from personal_assistant.app.views import task as task_view
from personal_assistant.core.next_run import preview
from personal_assistant.core.phrases import MAX_CHARS
from personal_assistant.core.schedule_json import parse_schedule
from personal_assistant.core.states import TaskStatus
from personal_assistant.web.chart import layout
from personal_assistant.web.errors import PageRoute
from personal_assistant.web.rendering import render
from personal_assistant.web.session import Visiting, Visitor

router = APIRouter(route_class=PageRoute, include_in_schema=False)

#: The most tasks, runs and notifications one page lists.
TASKS_SHOWN, RUNS_SHOWN, NOTES_SHOWN = 200, 50, 100
#: Said after a form's redirect (``?done=``): fixed texts, nothing of the query is shown.
DONE = {
    "created": "Task created.",
    "saved": "Task saved.",
    "paused": "Task paused: it creates no run until resumed.",
    "resumed": "Task resumed.",
    "queued": "A run is queued: the scheduler sends it on its next tick.",
    "deleted": "Task deleted, with its runs and notifications.",
    "read": "Marked read.",
    "channel-added": "Channel added. Send a test to check that it delivers.",
    "channel-removed": "Channel removed: tasks that name it fail their notifications to it.",
}


async def chrome(app: Assistant, me: Visitor, request: Request) -> dict[str, Any]:
    """What every signed-in page shows around its content."""
    done = request.query_params.get("done")
    return {
        "me": me,
        "csrf": me.csrf,
        "unread": await app.tasks.count_unread(me.user.id),
        "zone": me.user.timezone,
        "done": DONE.get(done or ""),
        "path": request.url.path,
    }


@router.get("/")
async def tasks(request: Request, me: Visiting, app: App) -> HTMLResponse:
    """The visitor's tasks: their schedule, next firing and last outcome; the "Say it" field."""
    rows = await app.tasks.list_tasks(me.user.id, limit=TASKS_SHOWN)
    last = await app.dashboard.last_runs(me.user.id, [t.id for t in rows])
    items = [task_view(t) | {"last": last.get(t.id)} for t in rows]
    return render(
        request, "tasks.html", tasks=items, say_max=MAX_CHARS, **await chrome(app, me, request)
    )


@router.get("/tasks/{task_id:int}")
async def task(task_id: int, request: Request, me: Visiting, app: App) -> HTMLResponse:
    """One task: its settings, its next firings and its runs, newest first."""
    row = await app.tasks.get_task(task_id, me.user.id)
    runs = await app.tasks.list_runs(me.user.id, task_id=task_id, limit=RUNS_SHOWN)
    firings = []
    if row.status == TaskStatus.ACTIVE and row.next_run_at is not None:
        schedule = parse_schedule(row.schedule)
        firings = [row.next_run_at, *preview(schedule, row.next_run_at, 4)]
    return render(
        request,
        "task.html",
        task=task_view(row),
        firings=firings,
        runs=runs,
        **await chrome(app, me, request),
    )


@router.get("/inbox")
async def inbox(request: Request, me: Visiting, app: App) -> HTMLResponse:
    """The visitor's notifications, newest first, the unread ones marked."""
    notes = await app.tasks.list_notifications(me.user.id, limit=NOTES_SHOWN)
    unread_ids = [n.id for n in notes if n.read_at is None]
    return render(
        request, "inbox.html", notes=notes, unread_ids=unread_ids, **await chrome(app, me, request)
    )


@router.get("/health")
async def health(request: Request, me: Visiting, app: App) -> HTMLResponse:
    """Is the deployment making progress; the quick checks of ``pa doctor`` (admins); the
    visitor's figures and chart of the last 24 hours."""
    from personal_assistant.core.wallclock import named_zone
    from personal_assistant.doctor.run import Options

    activity = await app.dashboard.activity(me.user.id)
    health = await app.system.health()
    report = await app.system.doctor(Options(quick=True)) if me.user.is_admin else None
    return render(
        request,
        "health.html",
        health=health,
        report=report,
        activity=activity,
        chart=layout(activity.hours, named_zone(me.user.timezone)),
        **await chrome(app, me, request),
    )
