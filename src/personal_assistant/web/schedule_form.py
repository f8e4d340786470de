"""The task form's schedule fields and the schedule's JSON form, both ways (pure).

The form has one field per part of every kind (``kind``, ``timezone``, ``at``, ``every``,
``times``, ``weekdays``, ``day``, ``expression``, ``start``, ``end``, and ``step``: a daily
schedule's ``every_days`` or a weekly one's ``every_weeks``); :func:`to_schedule` takes
those of the chosen kind into the JSON form that :func:`~personal_assistant.core.schedule_json.
parse_schedule` reads (its errors name ``schedule.<field>``: :func:`form_field` gives the
form's field back), and :func:`from_schedule` fills the form from a stored schedule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from personal_assistant.core.schedule_kinds import WEEKDAY_NAMES
from personal_assistant.core.schedule_text import duration_text
from personal_assistant.core.wallclock import named_zone
from personal_assistant.errors import ScheduleError

__all__ = ["KINDS", "ScheduleFields", "form_field", "from_schedule", "to_schedule"]

KINDS = ("once", "interval", "daily", "weekly", "monthly", "cron")
#: The fields each kind reads, beyond ``kind``, ``timezone``, ``start`` and ``end``.
KIND_FIELDS = {
    "once": ("at",),
    "interval": ("every",),
    "daily": ("times", "step"),
    "weekly": ("weekdays", "times", "step"),
    "monthly": ("day", "times"),
    "cron": ("expression",),
}
_SPLIT = re.compile(r"[\s,]+")
#: The JSON key of the form's ``step`` field, by kind.
_STEP_KEYS = {"daily": "every_days", "weekly": "every_weeks"}


@dataclass(frozen=True)
class ScheduleFields:
    """What the form's schedule fields hold, as typed."""

    kind: str = "daily"
    timezone: str = ""
    at: str = ""
    every: str = "1h"
    times: str = "09:00"
    weekdays: tuple[str, ...] = ("mon",)
    day: str = "1"
    expression: str = "0 9 * * 1-5"
    start: str = ""
    end: str = ""
    step: str = "1"

    @classmethod
    def read(cls, form: Mapping[str, object], weekdays: Sequence[object]) -> ScheduleFields:
        """The fields of a submitted form (``weekdays``: every value of that field)."""

        def text(name: str) -> str:
            value = form.get(name)
            return value.strip() if isinstance(value, str) else ""

        return cls(
            kind=text("kind"),
            timezone=text("timezone"),
            at=text("at"),
            every=text("every"),
            times=text("times"),
            weekdays=tuple(d for d in weekdays if isinstance(d, str)),
            day=text("day"),
            expression=text("expression"),
            start=text("start"),
            end=text("end"),
            step=text("step"),
        )


def to_schedule(fields: ScheduleFields) -> dict[str, object]:
    """The JSON form of the chosen kind's fields; a blank time zone is left out (the user's
    applies). An unknown kind is a ScheduleError naming ``schedule.kind``."""
    kind = fields.kind
    if kind not in KINDS:
        raise ScheduleError(f"choose one of {', '.join(KINDS)}", field="schedule.kind")
    out: dict[str, object] = {"kind": kind}
    if fields.timezone:
        out["timezone"] = fields.timezone
    for name in KIND_FIELDS[kind]:
        if name == "times":
            out["times"] = [t for t in _SPLIT.split(fields.times) if t]
        elif name == "weekdays":
            out["weekdays"] = list(fields.weekdays)
        elif name == "day":
            out["day"] = _number(fields.day)
        elif name == "step":
            if fields.step not in ("", "1"):
                out[_STEP_KEYS[kind]] = _number(fields.step)
        else:
            value = getattr(fields, name)
            out[name] = value or None
    for bound in ("start", "end"):
        if getattr(fields, bound):
            out[bound] = getattr(fields, bound)
    return {k: v for k, v in out.items() if v is not None}


def from_schedule(data: Mapping[str, object]) -> ScheduleFields:
    """The form's fields for a stored schedule (its canonical JSON form): instants on the
    schedule's wall clock, as a ``datetime-local`` input shows them; the other kinds' fields
    keep their defaults (a change of kind starts from them)."""
    zone_name = str(data.get("timezone") or "UTC")
    zone = named_zone(zone_name)
    found: dict[str, Any] = {"kind": str(data.get("kind", "daily")), "timezone": zone_name}
    for name in ("at", "start", "end"):
        found[name] = _wall_clock(data.get(name), zone)
    if isinstance(every := data.get("every_seconds"), int):
        found["every"] = duration_text(timedelta(seconds=every))
    if isinstance(times := data.get("times"), list):
        found["times"] = ", ".join(str(t) for t in times)
    if isinstance(weekdays := data.get("weekdays"), list):
        found["weekdays"] = tuple(str(d) for d in weekdays)
    if "day" in data:
        found["day"] = str(data["day"])
    if isinstance(expression := data.get("expression"), str):
        found["expression"] = expression
    for key in _STEP_KEYS.values():
        if key in data:
            found["step"] = str(data[key])
    return ScheduleFields(**found)


def form_field(error_field: str | None) -> str | None:
    """The form's field of an error's ``field``: ``schedule.times`` -> ``times``,
    ``schedule.every_seconds`` -> ``every``, ``description`` -> ``instruction``."""
    if error_field is None:
        return None
    name = error_field.removeprefix("schedule.")
    if name == "schedule":
        return "kind"
    return {
        "every_seconds": "every",
        "time": "times",
        "description": "instruction",
        "every_days": "step",
        "every_weeks": "step",
    }.get(name, name)


def _number(text: str) -> int | str | None:
    """A whole number typed, as an int; anything else as typed (the schedule's check names
    the field), and blank as None."""
    return int(text) if text.isascii() and text.isdigit() else (text or None)


def _wall_clock(value: object, zone: ZoneInfo) -> str:
    if not isinstance(value, str):
        return ""
    moment = datetime.fromisoformat(value).astimezone(zone)
    return moment.strftime("%Y-%m-%dT%H:%M:%S" if moment.second else "%Y-%m-%dT%H:%M")


#: The weekdays as the form offers them: (value, label).
WEEKDAYS = tuple(zip(WEEKDAY_NAMES, ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), strict=True))
