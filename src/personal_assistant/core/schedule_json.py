"""The JSON form of a schedule: :func:`parse_schedule` reads what people type, and
:func:`schedule_to_dict` writes the canonical form back.

``{"kind": "daily", "times": ["09:00", "18:30"], "timezone": "Europe/Paris"}``; the kinds are
in :mod:`~personal_assistant.core.schedule_kinds`. Every error is a ScheduleError naming the
bad field (``schedule.times``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import TypedDict, assert_never
from zoneinfo import ZoneInfo

from personal_assistant.core import schedule_kinds as kinds
from personal_assistant.core.schedule_text import time_text
from personal_assistant.core.wallclock import check_zone, resolve_local
from personal_assistant.errors import ScheduleError

__all__ = ["parse_schedule", "schedule_to_dict"]

_FULL_WEEKDAY_NAMES = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
_ONE_SECOND = timedelta(seconds=1)
_TIME_RE = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_DURATION_RE = re.compile(
    r"(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?",
    re.IGNORECASE | re.ASCII,
)
#: More digits than any duration up to MAX_INTERVAL has in any unit: refused before ``int()``,
#: which refuses more than 4,300 digits with a ValueError of its own.
_DURATION_DIGITS_MAX = 12

_COMMON_KEYS = frozenset({"kind", "timezone", "start", "end"})
_KIND_KEYS: dict[str, frozenset[str]] = {
    "once": frozenset({"at"}),
    "interval": frozenset({"every", "every_seconds"}),
    "daily": frozenset({"times", "time", "every_days"}),
    "weekly": frozenset({"weekdays", "times", "time", "every_weeks"}),
    "monthly": frozenset({"day", "times", "time"}),
    "cron": frozenset({"expression"}),
}


class _Bounds(TypedDict):
    """The fields every kind has, read and checked: the keyword arguments of each kind."""

    timezone: str
    start: datetime | None
    end: datetime | None


def parse_schedule(data: Mapping[str, object]) -> kinds.Schedule:
    """Build a schedule from its JSON form; raise ScheduleError naming the bad field.

    ``{"kind": "daily", "times": ["09:00", "18:30"], "timezone": "Europe/Paris"}``; see
    :mod:`~personal_assistant.core.schedule_kinds` for the kinds. ``timezone`` defaults to
    "UTC"; ``start``, ``end`` and ``at`` are ISO-8601 strings, read as wall-clock times in the
    schedule's time zone when they carry no offset.
    """
    if not isinstance(data, Mapping):
        raise ScheduleError("must be an object", field="schedule")
    kind = _parse_kind(data)
    zone, bounds = _parse_bounds(data)
    return _KIND_PARSERS[kind](data, zone, bounds)


def _parse_kind(data: Mapping[str, object]) -> str:
    """The schedule's ``kind``, once every key of ``data`` is known to that kind."""
    kind = data.get("kind")
    if kind is None:
        raise ScheduleError(f"is required, one of {', '.join(_KIND_KEYS)}", field="schedule.kind")
    if not isinstance(kind, str) or kind not in _KIND_KEYS:
        raise ScheduleError(
            f"unknown kind {kind!r}, expected one of {', '.join(_KIND_KEYS)}",
            field="schedule.kind",
        )
    allowed = _COMMON_KEYS | _KIND_KEYS[kind]
    for key in data:
        if not isinstance(key, str):
            raise ScheduleError("keys must be strings", field="schedule")
        if key not in allowed:
            raise ScheduleError(f"unknown key for a {kind} schedule", field=f"schedule.{key}")
    return kind


def _parse_bounds(data: Mapping[str, object]) -> tuple[ZoneInfo, _Bounds]:
    """The schedule's zone, and its ``timezone``, ``start`` and ``end``."""
    timezone = data.get("timezone")
    timezone = "UTC" if timezone is None else timezone
    zone = check_zone(timezone)
    assert isinstance(timezone, str)
    start = _parse_instant(data.get("start"), zone, "schedule.start")
    end = _parse_instant(data.get("end"), zone, "schedule.end")
    if start is not None and end is not None and end <= start:
        raise ScheduleError("must be after start", field="schedule.end")
    return zone, _Bounds(timezone=timezone, start=start, end=end)


def _parse_once(data: Mapping[str, object], zone: ZoneInfo, bounds: _Bounds) -> kinds.Once:
    at = _parse_instant(data.get("at"), zone, "schedule.at")
    if at is None:
        raise ScheduleError("is required", field="schedule.at")
    return kinds.Once(at=at, **bounds)


def _parse_interval(data: Mapping[str, object], zone: ZoneInfo, bounds: _Bounds) -> kinds.Interval:
    return kinds.Interval(every=_parse_every(data), **bounds)


def _parse_daily(data: Mapping[str, object], zone: ZoneInfo, bounds: _Bounds) -> kinds.Daily:
    step = _parse_step(data, "every_days")
    return kinds.Daily(times=_parse_times(data), every_days=step, **bounds)


def _parse_weekly(data: Mapping[str, object], zone: ZoneInfo, bounds: _Bounds) -> kinds.Weekly:
    weekdays = _parse_weekdays(data.get("weekdays"))
    times = _parse_times(data)
    step = _parse_step(data, "every_weeks")
    return kinds.Weekly(weekdays=weekdays, times=times, every_weeks=step, **bounds)


def _parse_step(data: Mapping[str, object], key: str) -> int:
    """``every_days`` or ``every_weeks``: a whole number, 1 when absent (checked by the kind)."""
    step = data.get(key, 1)
    if type(step) is not int:
        raise ScheduleError("must be a whole number", field=f"schedule.{key}")
    return step


def _parse_monthly(data: Mapping[str, object], zone: ZoneInfo, bounds: _Bounds) -> kinds.Monthly:
    day = _parse_day(data.get("day"))
    times = _parse_times(data)
    return kinds.Monthly(day=day, times=times, **bounds)


def _parse_cron(data: Mapping[str, object], zone: ZoneInfo, bounds: _Bounds) -> kinds.Cron:
    expression = data.get("expression")
    if expression is None:
        raise ScheduleError("is required", field="schedule.expression")
    if not isinstance(expression, str):
        raise ScheduleError("must be a string", field="schedule.expression")
    return kinds.Cron(expression=" ".join(expression.split()), **bounds)


_KIND_PARSERS: dict[str, Callable[[Mapping[str, object], ZoneInfo, _Bounds], kinds.Schedule]] = {
    "once": _parse_once,
    "interval": _parse_interval,
    "daily": _parse_daily,
    "weekly": _parse_weekly,
    "monthly": _parse_monthly,
    "cron": _parse_cron,
}


def _parse_instant(value: object, zone: ZoneInfo, field: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise ScheduleError(f"not an ISO-8601 date-time: {value!r}", field=field) from exc
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise ScheduleError("must be an ISO-8601 date-time string", field=field)
    try:
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            return resolve_local(parsed.replace(tzinfo=None), zone)
        return parsed.astimezone(UTC)
    except OverflowError:  # the instant in UTC falls outside years 1..9999
        raise ScheduleError(f"is out of range: {value!r}", field=field) from None


def _parse_time(value: object, field: str) -> time:
    if isinstance(value, time):
        if value.tzinfo is not None or value.microsecond:
            raise ScheduleError("must be a naive time in whole seconds", field=field)
        return value.replace(fold=0)
    if not isinstance(value, str):
        raise ScheduleError("must be a time of day such as '09:00'", field=field)
    match = _TIME_RE.fullmatch(value.strip())
    if match is None:
        raise ScheduleError(f"not a time of day (HH:MM or HH:MM:SS): {value!r}", field=field)
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ScheduleError(f"not a time of day: {value!r}", field=field)
    return time(hour, minute, second)


def _parse_times(data: Mapping[str, object]) -> tuple[time, ...]:
    if "time" in data and "times" in data:
        raise ScheduleError("give either time or times, not both", field="schedule.time")
    if "time" in data:
        return (_parse_time(data["time"], "schedule.time"),)
    raw = _nonempty_list(data.get("times"), "schedule.times", "times such as ['09:00']")
    return tuple(sorted({_parse_time(item, "schedule.times") for item in raw}))


def _nonempty_list(raw: object, field: str, example: str) -> Sequence[object]:
    """``raw`` when it is a non-empty list (not a string); else a ScheduleError naming ``field``."""
    if raw is None:
        raise ScheduleError("is required", field=field)
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise ScheduleError(f"must be a list of {example}", field=field)
    if not raw:
        raise ScheduleError("must not be empty", field=field)
    return raw


def _parse_weekday(value: object) -> int:
    if type(value) is int:
        if 0 <= value <= 6:
            return value
    elif isinstance(value, str):
        name = value.strip().lower()
        if name in kinds.WEEKDAY_NAMES:
            return kinds.WEEKDAY_NAMES.index(name)
        if name in _FULL_WEEKDAY_NAMES:
            return _FULL_WEEKDAY_NAMES.index(name)
    raise ScheduleError(
        f"not a weekday (mon..sun or 0..6, 0 = Monday): {value!r}", field="schedule.weekdays"
    )


def _parse_weekdays(raw: object) -> tuple[int, ...]:
    days = _nonempty_list(raw, "schedule.weekdays", "weekdays such as ['mon']")
    return tuple(sorted({_parse_weekday(item) for item in days}))


def _parse_day(raw: object) -> int:
    if raw is None:
        raise ScheduleError("is required", field="schedule.day")
    if type(raw) is not int:
        raise ScheduleError("must be an integer 1..31", field="schedule.day")
    if not 1 <= raw <= 31:
        raise ScheduleError("must be a day of the month, 1..31", field="schedule.day")
    return raw


def _parse_every(data: Mapping[str, object]) -> timedelta:
    if "every" in data and "every_seconds" in data:
        raise ScheduleError("give either every or every_seconds, not both", field="schedule.every")
    key = "every_seconds" if "every_seconds" in data else "every"
    field = f"schedule.{key}"
    raw = data.get(key)
    if raw is None:
        raise ScheduleError("is required", field="schedule.every")
    if isinstance(raw, timedelta):
        every = raw
    elif type(raw) is int:
        if raw > kinds.MAX_INTERVAL // _ONE_SECOND:
            raise ScheduleError("must be between 60 s and 3650 days", field=field)
        every = timedelta(seconds=raw)
    elif isinstance(raw, str):
        every = _parse_duration(raw, field)
    else:
        raise ScheduleError("must be seconds or a duration such as '30m' or '1h30m'", field=field)
    if every.microseconds:
        raise ScheduleError("must be a whole number of seconds", field=field)
    if not kinds.MIN_INTERVAL <= every <= kinds.MAX_INTERVAL:
        raise ScheduleError("must be between 60 s and 3650 days", field=field)
    return every


def _parse_duration(text: str, field: str) -> timedelta:
    """ASCII digits only: ``str.isdigit`` is true of ``²`` and ``٣``, which ``int`` refuses
    or reads."""
    text = text.strip()
    bare = text.isascii() and text.isdigit()
    match = None if bare else _DURATION_RE.fullmatch(text)
    if not bare and (not text or match is None):
        raise ScheduleError(
            f"not a duration such as '90s', '30m', '2h', '1d' or '1h30m': {text!r}", field=field
        )
    parts = (text,) if match is None else tuple(part or "0" for part in match.groups())
    if any(len(part) > _DURATION_DIGITS_MAX for part in parts):
        raise ScheduleError("must be between 60 s and 3650 days", field=field)
    if match is None:
        seconds = int(text)
    else:
        days, hours, minutes, secs = (int(part) for part in parts)
        seconds = ((days * 24 + hours) * 60 + minutes) * 60 + secs
    if seconds > kinds.MAX_INTERVAL // _ONE_SECOND:
        raise ScheduleError("must be between 60 s and 3650 days", field=field)
    return timedelta(seconds=seconds)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def schedule_to_dict(s: kinds.Schedule) -> dict[str, object]:
    """The JSON form of ``s``; :func:`parse_schedule` turns it back into an equal schedule."""
    out: dict[str, object]
    match s:
        case kinds.Once():
            out = {"kind": "once", "at": _iso(s.at)}
        case kinds.Interval():
            out = {"kind": "interval", "every_seconds": s.every // _ONE_SECOND}
        case kinds.Daily():
            out = {"kind": "daily", "times": [time_text(t) for t in s.times]}
            if s.every_days != 1:
                out["every_days"] = s.every_days
        case kinds.Weekly():
            out = {
                "kind": "weekly",
                "weekdays": [kinds.WEEKDAY_NAMES[d] for d in s.weekdays],
                "times": [time_text(t) for t in s.times],
            }
            if s.every_weeks != 1:
                out["every_weeks"] = s.every_weeks
        case kinds.Monthly():
            out = {"kind": "monthly", "day": s.day, "times": [time_text(t) for t in s.times]}
        case kinds.Cron():
            out = {"kind": "cron", "expression": s.expression}
        case _:
            assert_never(s)
    out["timezone"] = s.timezone
    if s.start is not None:
        out["start"] = _iso(s.start)
    if s.end is not None:
        out["end"] = _iso(s.end)
    return out
