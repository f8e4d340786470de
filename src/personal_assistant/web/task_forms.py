"""The task form: create and edit a task, with a live preview of the schedule's next firings.

The form works without script: "Preview" submits it and shows the next firings. With the
script (``static/dashboard.js``), every change posts the schedule's fields to
``/schedule/preview`` and shows the fragment it answers. Bad input shows the form again (422)
with the field at fault named, marked and described.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any
from zoneinfo import available_timezones

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from personal_assistant.api.security import App
from personal_assistant.app.assistant import Assistant
from personal_assistant.core.schedule_json import parse_schedule, schedule_to_dict
from personal_assistant.core.schedule_text import describe
from personal_assistant.core.states import CatchUp, TaskType
from personal_assistant.errors import ValidationError
from personal_assistant.web.errors import PageRoute
from personal_assistant.web.pages import chrome
from personal_assistant.web.rendering import render
from personal_assistant.web.schedule_form import (
    KINDS,
    WEEKDAYS,
    ScheduleFields,
    form_field,
    from_schedule,
    to_schedule,
)
from personal_assistant.web.session import Posted, Visiting, Visitor

if TYPE_CHECKING:
    from personal_assistant.database.models import AITask

router = APIRouter(route_class=PageRoute, include_in_schema=False)

#: How many firings the preview shows.
PREVIEWED = 5


@dataclass(frozen=True)
class TaskFields:
    """What the task form holds, as typed."""

    title: str = ""
    instruction: str = ""
    task_type: str = TaskType.REMINDER.value
    channels: tuple[str, ...] = ("in_app",)
    catch_up: str = CatchUp.ONCE.value
    max_retries: str = "3"
    schedule: ScheduleFields = field(default_factory=ScheduleFields)

    @classmethod
    def read(cls, form: FormData) -> TaskFields:
        def text(name: str) -> str:
            value = form.get(name)
            return value if isinstance(value, str) else ""

        return cls(
            title=text("title"),
            instruction=text("instruction"),
            task_type=text("task_type"),
            channels=tuple(c for c in form.getlist("channels") if isinstance(c, str)),
            catch_up=text("catch_up"),
            max_retries=text("max_retries").strip(),
            schedule=ScheduleFields.read(form, form.getlist("weekdays")),
        )

    @classmethod
    def of(cls, task: AITask) -> TaskFields:
        return cls(
            title=task.title,
            instruction=task.description,
            task_type=str(task.task_type),
            channels=tuple(task.notification_channels),
            catch_up=str(task.catch_up),
            max_retries=str(task.max_retries),
            schedule=from_schedule(task.schedule),
        )

    def changes(self) -> dict[str, Any]:
        """The manager's keyword arguments, the schedule aside."""
        retries = self.max_retries
        if not digits(retries):
            raise ValidationError("must be a whole number", field="max_retries")
        return {
            "title": self.title,
            "description": self.instruction,
            "task_type": self.task_type,
            "notification_channels": list(self.channels),
            "catch_up": self.catch_up,
            "max_retries": int(retries),
        }


@cache
def _zones() -> list[str]:
    """The IANA zone names the time zone field suggests (read once)."""
    return sorted(available_timezones())


async def preview_of(app: Assistant, me: Visitor, fields: ScheduleFields) -> dict[str, Any]:
    """The preview fragment's context: the schedule's description and next firings, or the
    error naming the field at fault."""
    try:
        schedule, firings = await app.tasks.preview_schedule(
            me.user.id, to_schedule(fields), PREVIEWED
        )
    except ValidationError as exc:
        return {"error": exc.message, "error_field": form_field(exc.field)}
    return {
        "error": None,
        "description": describe(schedule),
        "schedule_zone": schedule.timezone,
        "firings": firings,
    }


async def _form(
    request: Request,
    app: Assistant,
    me: Visitor,
    fields: TaskFields,
    *,
    task: AITask | None = None,
    error: ValidationError | None = None,
) -> HTMLResponse:
    channels = ["in_app", *(c.name for c in await app.channels.list_for(me.user.id))]
    preview = await preview_of(app, me, fields.schedule)
    return render(
        request,
        "task_form.html",
        422 if error else 200,
        task=task,
        fields=fields,
        channel_names=list(dict.fromkeys([*channels, *fields.channels])),
        kinds=KINDS,
        weekdays=WEEKDAYS,
        task_types=[t.value for t in TaskType],
        catch_ups=[c.value for c in CatchUp],
        zones=_zones(),
        error=None if error is None else error.message,
        error_field=None if error is None else form_field(error.field),
        preview=preview,
        **await chrome(app, me, request),
    )


@router.get("/tasks/new")
async def new_task(request: Request, me: Visiting, app: App) -> HTMLResponse:
    """The form of a new task, in the visitor's time zone."""
    fields = TaskFields(
        max_retries=str(app.settings.default_max_retries),
        schedule=ScheduleFields(timezone=me.user.timezone),
    )
    return await _form(request, app, me, fields)


@router.post("/tasks/new")
async def create_task(request: Request, me: Visiting, app: App, form: Posted) -> Response:
    """Create the task ("Create"), or show the form with its preview ("Preview")."""
    fields = TaskFields.read(form)
    if form.get("action") == "preview":
        return await _form(request, app, me, fields)
    try:
        made = await app.tasks.create_task(
            me.user.id, schedule=to_schedule(fields.schedule), **fields.changes()
        )
    except ValidationError as exc:
        return await _form(request, app, me, fields, error=exc)
    return RedirectResponse(f"/tasks/{made.id}?done=created", status_code=303)


@router.get("/tasks/{task_id:int}/edit")
async def edit_task(task_id: int, request: Request, me: Visiting, app: App) -> HTMLResponse:
    """The form of one of the visitor's tasks."""
    row = await app.tasks.get_task(task_id, me.user.id)
    return await _form(request, app, me, TaskFields.of(row), task=row)


@router.post("/tasks/{task_id:int}/edit")
async def save_task(
    task_id: int, request: Request, me: Visiting, app: App, form: Posted
) -> Response:
    """Save the task ("Save"; a schedule left as it was keeps its next firing), or show the
    form with its preview ("Preview")."""
    row = await app.tasks.get_task(task_id, me.user.id)
    fields = TaskFields.read(form)
    if form.get("action") == "preview":
        return await _form(request, app, me, fields, task=row)
    try:
        changes = fields.changes()
        if _rescheduled(fields.schedule, row, me.user.timezone):
            changes["schedule"] = to_schedule(fields.schedule)
        await app.tasks.update_task(task_id, me.user.id, **changes)
    except ValidationError as exc:
        return await _form(request, app, me, fields, task=row, error=exc)
    return RedirectResponse(f"/tasks/{task_id}?done=saved", status_code=303)


def _rescheduled(fields: ScheduleFields, task: AITask, user_zone: str) -> bool:
    """Whether the form's schedule is another than the task's: not as the form showed it, nor
    equal once read (an interval's anchor is shown to the second, and stored finer)."""
    typed = to_schedule(fields)
    if typed == to_schedule(from_schedule(task.schedule)):
        return False
    return schedule_to_dict(parse_schedule({"timezone": user_zone, **typed})) != task.schedule


@router.post("/schedule/preview")
async def schedule_preview(request: Request, me: Visiting, app: App, form: Posted) -> Response:
    """The preview fragment of the schedule fields posted (the form's script calls it)."""
    context = await preview_of(app, me, ScheduleFields.read(form, form.getlist("weekdays")))
    status = 422 if context["error"] else 200
    return render(request, "preview.html", status, preview=context, zone=me.user.timezone)


def digits(text: str) -> bool:
    """An id as a form sends it: ASCII digits, no more than a 64-bit id has."""
    return text.isascii() and text.isdigit() and len(text) <= 19
