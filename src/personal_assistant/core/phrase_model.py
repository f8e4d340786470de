"""A model's reading of a request said in plain English, checked, and weighed against ours (pure).

A language model is asked to call one function, :data:`TOOL_NAME`, whose arguments
(:data:`PARAMETERS`, a JSON Schema) are a task: title, instruction, task type and a schedule in
its JSON form (:mod:`~personal_assistant.core.schedule_json`), plus ``unsure`` when the request
could mean two things. :func:`messages` is what it is told; :func:`from_model` checks its answer
as strictly as any other input and makes it a :class:`~personal_assistant.core.phrases.Proposal`
(``source="model"``) or a :class:`~personal_assistant.core.phrases.Refusal` saying what was
wrong. :func:`combine` weighs it against the offline reading
(:func:`~personal_assistant.core.phrases.parse_request`): when both agree the offline proposal
stands (``source="offline+model"``); when they differ, or only the model read it, the answer is
a question. A model's reading is never applied without a human answering.

The HTTP call is :mod:`personal_assistant.agents.task_reader`; this module does no I/O.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from personal_assistant.core import schedule_kinds as kinds
from personal_assistant.core.next_run import preview, validate_for_creation
from personal_assistant.core.phrases import Proposal, Refusal
from personal_assistant.core.schedule_json import parse_schedule, schedule_to_dict
from personal_assistant.core.states import TaskType
from personal_assistant.core.wallclock import check_zone
from personal_assistant.errors import ScheduleError

__all__ = [
    "DISAGREE",
    "PARAMETERS",
    "TOOL_DESCRIPTION",
    "TOOL_NAME",
    "combine",
    "from_model",
    "messages",
    "same_schedule",
]

TOOL_NAME = "propose_task"
TOOL_DESCRIPTION = (
    "Record the one scheduled task the user's request asks for: a title, the instruction, "
    "the task type and the schedule; say in `unsure` what is unclear instead of guessing."
)
DISAGREE = (
    "The offline reader and the model read this differently; say which you mean, or rephrase."
)

TITLE_CHARS = 80
INSTRUCTION_CHARS = 2000
UNSURE_CHARS = 300
_VALUE_CHARS = 200  # any one string inside a schedule
_LIST_ITEMS = 50  # any one list inside a schedule
_REASON_CHARS = 300  # of a reason built from a ScheduleError's message
_KINDS = ("once", "interval", "daily", "weekly", "monthly", "cron")
_FIELDS = frozenset({"title", "instruction", "task_type", "schedule", "unsure"})
_PROBE_STEP = timedelta(days=61, minutes=7, seconds=13)  # off any round number on purpose
_PROBES = 6  # later starting points for same_schedule: a year ahead, both DST changes

_TIME = {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"}
_LOCAL = {
    "type": "string",
    "description": "ISO-8601 local date-time without an offset, e.g. 2026-03-20T08:15",
}

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": TITLE_CHARS},
        "instruction": {"type": "string", "minLength": 1, "maxLength": INSTRUCTION_CHARS},
        "task_type": {"type": "string", "enum": [t.value for t in TaskType]},
        "schedule": {
            "type": "object",
            "properties": {
                "kind": {"type": "string", "enum": list(_KINDS)},
                "at": _LOCAL,
                "every_seconds": {"type": "integer", "minimum": 60, "maximum": 315_360_000},
                "times": {"type": "array", "items": _TIME, "minItems": 1},
                "weekdays": {
                    "type": "array",
                    "items": {"type": "string", "enum": list(kinds.WEEKDAY_NAMES)},
                    "minItems": 1,
                },
                "day": {"type": "integer", "minimum": 1, "maximum": 31},
                "expression": {"type": "string", "description": "5-field cron expression"},
                "every_days": {"type": "integer", "minimum": 1},
                "every_weeks": {"type": "integer", "minimum": 1},
                "timezone": {"type": "string", "description": "IANA zone, e.g. Europe/Paris"},
                "start": _LOCAL,
                "end": _LOCAL,
            },
            "required": ["kind"],
            "additionalProperties": False,
        },
        "unsure": {"type": "string", "maxLength": UNSURE_CHARS},
    },
    "required": ["title", "instruction", "task_type", "schedule"],
    "additionalProperties": False,
}
"""The JSON Schema of :data:`TOOL_NAME`'s arguments."""

_SYSTEM = """\
You turn one request, said in plain English, into one scheduled task by calling the function \
{tool}. Now is {now} ({weekday}) in {tz}, the user's time zone. Every time the user says is a \
wall-clock time in that zone unless the request names another zone.

Fields:
- title: a short name for the task (at most 80 characters), without the schedule words.
- instruction: what to do or to remind, without the schedule words ("Remind me to stretch").
- task_type: "reminder" for a reminder; "periodic_task" for a recurring summary, digest or \
report; "automated_task" for checking, watching or fetching something.
- schedule: one of the kinds below, with "timezone" (an IANA name; the user's by default) and \
optional "start" and "end" (the last moment a firing may happen). Write "at", "start" and "end" \
as local date-times without an offset, in the schedule's zone ("2026-03-20T08:15"); times as \
24-hour "HH:MM"; weekdays as mon tue wed thu fri sat sun.
  {{"kind": "once", "at": "2026-03-02T09:00"}}
  {{"kind": "interval", "every_seconds": 5400}}  every N minutes or hours, counted from when the \
task is created; add "start" to anchor it
  {{"kind": "daily", "times": ["08:30", "18:00"]}}  add "every_days": N and "start" for every N \
days, counted from start's date
  {{"kind": "weekly", "weekdays": ["mon", "thu"], "times": ["19:00"]}}  add "every_weeks": N \
and "start" for every N weeks, counted from start's week
  {{"kind": "monthly", "day": 15, "times": ["09:00"]}}  day 29-31 fires on the last day of \
shorter months
  {{"kind": "cron", "expression": "0 16 * * 5L"}}  5 numeric fields, Sunday 0; only for what \
no other kind says (the last Friday of the month, the 1st and 15th, hour ranges)
- unsure: leave it out when the request has one clear reading. When it could mean two things \
(an hour of 1 to 6 with no am or pm, "next Friday" said early in the week, "tomorrow at \
midnight", "biweekly", no day or time at all), still fill the other fields with the likeliest \
reading and say in one short sentence what is unclear. Never guess silently.

Defaults: a day with no time is at 09:00; morning 09:00, afternoon 15:00, evening 19:00, \
tonight 20:00; a time with no day is its next occurrence after now; a bare hour of 7 to 11 is \
the morning, 12 is noon; "until <day>" ends at 23:59:59 that day.

Examples, read at 2026-03-01T11:00 (Sunday) in Europe/Paris:
"remind me every weekday at 8:30 to stretch" -> {{"title": "Stretch", "instruction": "Remind \
me to stretch", "task_type": "reminder", "schedule": {{"kind": "weekly", "weekdays": ["mon", \
"tue", "wed", "thu", "fri"], "times": ["08:30"], "timezone": "Europe/Paris"}}}}
"tomorrow at 5pm call mum" -> {{"title": "Call mum", "instruction": "Call mum", "task_type": \
"reminder", "schedule": {{"kind": "once", "at": "2026-03-02T17:00", "timezone": \
"Europe/Paris"}}}}
"summarise my inbox every morning at 7 until Friday" -> {{"title": "Summarise my inbox", \
"instruction": "Summarise my inbox", "task_type": "periodic_task", "schedule": {{"kind": \
"daily", "times": ["07:00"], "timezone": "Europe/Paris", "end": "2026-03-06T23:59:59"}}}}
"last Friday of each month at 4pm review the budget" -> {{"title": "Review the budget", \
"instruction": "Review the budget", "task_type": "reminder", "schedule": {{"kind": "cron", \
"expression": "0 16 * * 5L", "timezone": "Europe/Paris"}}}}
"at 4 call the bank" -> {{"title": "Call the bank", "instruction": "Call the bank", \
"task_type": "reminder", "schedule": {{"kind": "once", "at": "2026-03-01T16:00", "timezone": \
"Europe/Paris"}}, "unsure": "4 could be 4am or 4pm."}}
"""


def messages(text: str, now: datetime, tz: str) -> list[dict[str, str]]:
    """The chat messages asking for ``text`` read at ``now`` (aware) for a user in ``tz``."""
    if now.tzinfo is None:
        raise ValueError("messages takes an aware datetime")
    local = now.astimezone(check_zone(tz))
    system = _SYSTEM.format(
        tool=TOOL_NAME,
        now=local.replace(tzinfo=None).isoformat(timespec="minutes"),
        weekday=local.strftime("%A"),
        tz=tz,
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


def from_model(arguments: object, now: datetime, tz: str) -> Proposal | Refusal:
    """The model's answer checked: a Proposal (``source="model"``), a Refusal whose closest is
    that proposal when the model said it was unsure, or a Refusal naming what was wrong."""
    if not isinstance(arguments, Mapping):
        return _bad("it is not an object")
    problem = _fields_problem(arguments)
    if problem is not None:
        return _bad(problem)
    schedule = _schedule(arguments["schedule"], now, tz)
    if isinstance(schedule, str):
        return _bad(schedule)
    proposal = Proposal(
        title=arguments["title"].strip(),
        instruction=arguments["instruction"].strip(),
        task_type=arguments["task_type"],
        schedule=schedule,
        spans=(),
        source="model",
    )
    unsure = arguments.get("unsure")
    if isinstance(unsure, str) and unsure.strip():
        return Refusal(f"The model is not sure: {' '.join(unsure.split())}", proposal)
    return proposal


def _bad(problem: str) -> Refusal:
    return Refusal(f"The model's answer was not usable: {problem}.", None)


def _fields_problem(arguments: Mapping[Any, Any]) -> str | None:
    """What is wrong with the answer's fields other than the schedule, or None."""
    unknown = sorted(str(key)[:40] for key in arguments if key not in _FIELDS)
    if unknown:
        return f"unknown field {unknown[0]!r}"
    missing = sorted({"title", "instruction", "task_type", "schedule"} - set(arguments))
    if missing:
        return f"no {missing[0]}"
    for name, limit, lines in (
        ("title", TITLE_CHARS, False),
        ("instruction", INSTRUCTION_CHARS, True),
    ):
        problem = _text_problem(arguments[name], name, limit, lines)
        if problem is not None:
            return problem
    if not isinstance(arguments["task_type"], str) or arguments["task_type"] not in set(TaskType):
        return "task_type is not one of " + ", ".join(t.value for t in TaskType)
    unsure = arguments.get("unsure")
    if unsure is not None:
        return _text_problem(unsure, "unsure", UNSURE_CHARS, True, empty=True)
    return None


def _text_problem(
    value: object, name: str, limit: int, lines: bool, *, empty: bool = False
) -> str | None:
    """What is wrong with a text field: its type, its length, control characters."""
    if not isinstance(value, str):
        return f"{name} is not a string"
    if len(value) > limit:
        return f"{name} is {len(value)} characters long; at most {limit}"
    if not empty and not value.strip():
        return f"{name} is empty"
    allowed = "\t\n\r" if lines else ""
    if any(unicodedata.category(c) == "Cc" and c not in allowed for c in value):
        return f"{name} holds control characters"
    return None


def _schedule(raw: object, now: datetime, tz: str) -> dict[str, Any] | str:
    """The canonical JSON form of the model's schedule, or what is wrong with it."""
    if not isinstance(raw, Mapping):
        return "schedule is not an object"
    problem = _shape_problem(raw)
    if problem is not None:
        return problem
    data = {key: value for key, value in raw.items() if value is not None}  # null: not given
    data.setdefault("timezone", tz)
    try:
        schedule = parse_schedule(data)
        validate_for_creation(schedule, now)
    except ScheduleError as exc:
        return _trimmed(f"the schedule is not valid: {exc}")
    return dict(schedule_to_dict(schedule))


def _shape_problem(raw: Mapping[Any, Any]) -> str | None:
    """Keys that are short strings, values that are short strings, integers or short lists."""
    if len(raw) > len(PARAMETERS["properties"]["schedule"]["properties"]):
        return "schedule has too many fields"
    for key, value in raw.items():
        if not isinstance(key, str) or len(key) > 40:
            return "schedule has a key that is not a short string"
        problem = _value_problem(value)
        if problem is not None:
            return f"schedule.{key} {problem}"
    return None


def _value_problem(value: object) -> str | None:
    """What is wrong with one schedule value (None, in JSON null, is no value)."""
    items = value if isinstance(value, list) else [] if value is None else [value]
    if len(items) > _LIST_ITEMS:
        return f"has more than {_LIST_ITEMS} items"
    for item in items:
        if isinstance(item, str) and len(item) > _VALUE_CHARS:
            return f"is longer than {_VALUE_CHARS} characters"
        if not isinstance(item, str | int) or isinstance(item, bool):
            return "is not a string, an integer or a list of them"
    return None


def _trimmed(text: str) -> str:
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"


def same_schedule(a: dict[str, Any], b: dict[str, Any], now: datetime, count: int = 10) -> bool:
    """Whether two schedules in JSON form fire alike: equal canonical forms, or the same zone,
    the same end and the same next ``count`` firings after ``now`` (weekly mon-fri at 09:00 and
    cron ``0 9 * * 1-5``). The firings are compared from later starting points too, over the
    year ahead (both DST changes) and off the round minute, so an interval of 24 hours is not
    taken for a daily time, nor an interval from creation for a cron on the half hour."""
    try:
        first, second = parse_schedule(a), parse_schedule(b)
    except ScheduleError:
        return False
    if schedule_to_dict(first) == schedule_to_dict(second):
        return True
    if first.timezone != second.timezone or first.end != second.end:
        return False
    probes = [now + k * _PROBE_STEP for k in range(_PROBES + 1)]
    return all(preview(first, at, count) == preview(second, at, count) for at in probes)


def combine(
    offline: Proposal | Refusal, model: Proposal | Refusal | None, now: datetime
) -> Proposal | Refusal:
    """The answer given both readings of a request; ``model`` None when no model answered.

    Both proposals alike: the offline one, ``source="offline+model"``. Proposals that differ:
    a Refusal offering both. Only the model proposes: a Refusal with the offline reason,
    offering the model's reading (beside the offline closest one, when they differ). Otherwise
    the offline answer stands."""
    if model is None or isinstance(model, Refusal):
        return offline
    if isinstance(offline, Proposal):
        if same_schedule(offline.schedule, model.schedule, now):
            return replace(offline, source="offline+model")
        return Refusal(DISAGREE, offline, other=model)
    closest = offline.closest
    if closest is None:
        return replace(offline, closest=model, other=None)
    other = None if same_schedule(closest.schedule, model.schedule, now) else model
    return replace(offline, other=other)
