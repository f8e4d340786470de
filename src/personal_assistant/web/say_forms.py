"""The "Say it" field: a task said in plain English, read, shown, then created on request.

``POST /tasks/say`` reads the text with the façade's ``propose_task``, in the visitor's time
zone, and shows the reading: the title, the instruction, the type, the schedule in words, its
zone, who read it (when a model took part), and its next three firings, with a "Create this
task" button. Reading creates nothing. A request not read for sure shows the reason, with the
closest reading ("Did you mean:") and a second one ("Or:") when there are, each with its own
button; the text stays in the field, to be said again another way.

"Create this task" posts the reading itself (title, instruction, type, and the schedule's JSON
form) to ``/tasks/say/create``, which creates it with ``create_task`` as the task form does:
validated again, and never read again at a later ``now``. "Edit before creating" posts the
same reading to the task form's "Preview" (``/tasks/new``), which shows it filled in; it is
offered only when the form can hold the schedule as it is (:func:`edit_fields`).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from personal_assistant.api.security import App
from personal_assistant.app.assistant import Assistant
from personal_assistant.core.phrases import MAX_CHARS, Proposal, Refusal
from personal_assistant.core.schedule_json import parse_schedule, schedule_to_dict
from personal_assistant.core.states import CatchUp
from personal_assistant.errors import PersonalAssistantError, ValidationError
from personal_assistant.tasks import proposals
from personal_assistant.web.errors import PageRoute
from personal_assistant.web.pages import chrome
from personal_assistant.web.rendering import render
from personal_assistant.web.schedule_form import KINDS, from_schedule, to_schedule
from personal_assistant.web.session import Posted, Visiting, Visitor

__all__ = ["SHOWN", "edit_fields", "router", "source_text"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)

#: How many firings a reading shows.
SHOWN = 3
#: Who read a proposal, said on its page; the offline parser alone is not mentioned.
_SOURCES = {
    "offline+model": "read offline and checked by the model",
    "model": "read by the model",
}
#: The schedule's fields of the task form, in the order its hidden copies are sent.
_SCHEDULE_FIELDS = (
    "kind",
    "timezone",
    "at",
    "every",
    "times",
    "day",
    "expression",
    "start",
    "end",
    "step",
)


def source_text(source: str) -> str | None:
    """What the page says of who read a proposal; ``None`` for the offline parser alone."""
    return _SOURCES.get(source)


def edit_fields(schedule: dict[str, Any], max_retries: int) -> list[tuple[str, str]] | None:
    """The task form's fields, as ``(name, value)`` pairs, holding a proposal's schedule
    (pure); ``None`` when the form cannot hold that schedule as it is (every other week, a
    kind it has no fields for), so that editing would change it unseen."""
    try:
        fields = from_schedule(schedule)
        if fields.kind not in KINDS:
            return None
        if schedule_to_dict(parse_schedule(to_schedule(fields))) != schedule:
            return None
    except PersonalAssistantError:
        return None
    pairs = [(name, str(getattr(fields, name))) for name in _SCHEDULE_FIELDS]
    pairs += [("weekdays", day) for day in fields.weekdays]
    pairs += [("channels", "in_app"), ("catch_up", CatchUp.ONCE.value)]
    return [*pairs, ("max_retries", str(max_retries))]


async def _reading(app: Assistant, me: Visitor, proposal: Proposal) -> dict[str, Any]:
    """What the page shows of one proposal: its JSON view, who read it, its next firings (or
    why it has none), the schedule to post back, and the task form's fields to edit it."""
    shown = proposals.view(proposal)
    try:
        _, firings = await app.tasks.preview_schedule(me.user.id, proposal.schedule, SHOWN)
        problem = None
    except ValidationError as exc:
        firings, problem = [], exc.message
    return shown | {
        "source_text": source_text(proposal.source),
        "firings": firings,
        "firings_error": problem,
        "schedule_json": json.dumps(proposal.schedule, separators=(",", ":")),
        "edit": edit_fields(proposal.schedule, app.settings.default_max_retries),
    }


async def _page(
    request: Request,
    app: Assistant,
    me: Visitor,
    text: str,
    reading: Proposal | Refusal | None = None,
    *,
    error: str | None = None,
) -> HTMLResponse:
    """The "Say it" page: the field holding ``text``, and the reading of it, if any."""
    context: dict[str, Any] = {"proposal": None, "refusal": None, "closest": None, "other": None}
    if isinstance(reading, Proposal):
        context["proposal"] = await _reading(app, me, reading)
    elif isinstance(reading, Refusal):
        context["refusal"] = reading.reason
        for name in ("closest", "other"):
            offered = getattr(reading, name)
            if offered is not None:
                context[name] = await _reading(app, me, offered)
    failed = error is not None or isinstance(reading, Refusal)
    return render(
        request,
        "say.html",
        422 if failed else 200,
        text=text,
        say_max=MAX_CHARS,
        error=error,
        **context,
        **await chrome(app, me, request),
    )


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@router.get("/tasks/say")
async def say_form(request: Request, me: Visiting, app: App) -> HTMLResponse:
    """The "Say it" field, empty."""
    return await _page(request, app, me, "")


@router.post("/tasks/say")
async def say(request: Request, me: Visiting, app: App, form: Posted) -> HTMLResponse:
    """The reading of the text said, with its next firings; nothing is created."""
    text = _text(form, "text")
    return await _page(request, app, me, text, await app.tasks.propose_task(me.user.id, text))


@router.post("/tasks/say/create")
async def create_said(request: Request, me: Visiting, app: App, form: Posted) -> Response:
    """Create the task of a reading shown ("Create this task"), as it was shown."""
    try:
        made = await app.tasks.create_task(
            me.user.id,
            _text(form, "title"),
            schedule=_schedule(_text(form, "schedule")),
            description=_text(form, "instruction"),
            task_type=_text(form, "task_type"),
        )
    except ValidationError as exc:
        where = f"{exc.field}: " if exc.field else ""
        return await _page(request, app, me, _text(form, "text"), error=where + exc.message)
    return RedirectResponse(f"/tasks/{made.id}?done=created", status_code=303)


def _schedule(posted: str) -> dict[str, Any]:
    """The schedule's JSON form as posted back; anything but an object is a ValidationError
    naming ``schedule`` (``create_task`` checks the object itself)."""
    try:
        found = json.loads(posted)
    except (ValueError, RecursionError):
        found = None
    if not isinstance(found, dict):
        raise ValidationError("must be a schedule in its JSON form", field="schedule")
    return found
