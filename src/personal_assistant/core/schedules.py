"""Schedule kinds and their maths: when does a task fire next?

A schedule is one of six frozen dataclasses (:data:`Schedule`). Each has a ``timezone`` (an IANA
name, "UTC" by default) and optional ``start`` and ``end`` bounds: firings happen at or after
``start`` and at or before ``end``. Every datetime going in must be aware; every datetime stored
or returned is in UTC.

* :class:`Once` fires once, at ``at``.
* :class:`Interval` fires every ``every`` (at least 60 s) of elapsed time, anchored at ``start``.
* :class:`Daily`, :class:`Weekly` and :class:`Monthly` fire at wall-clock ``times`` in the
  schedule's time zone. A monthly ``day`` of 29-31 fires on the month's last day in shorter
  months (day 31 fires on 28/29 February, 30 April...).
* :class:`Cron` fires on a 5-field cron expression (with ``L``, ``#``, ranges and steps), read
  in the schedule's time zone.

DST policy
----------
Wall-clock times become instants through :func:`resolve_local`, for every kind that names them
(daily, weekly, monthly, fixed-time cron, and the offset-less ISO strings of ``at``, ``start``,
``end``):

* A wall-clock time inside a spring-forward gap (a time the clocks skip) fires at the first
  instant after the gap: the transition instant itself. 02:30 on 2026-03-08 in New York fires at
  03:00 EDT (07:00 UTC); 02:15 on 2026-10-04 on Lord Howe Island, whose clocks move by 30
  minutes, fires at 02:30 (15:30 UTC the day before). Several wall times inside one gap collapse
  into that single firing.
* A wall-clock time inside a fall-back fold (a time the clocks show twice) fires once, at its
  first occurrence (``fold=0``).
* Intervals count elapsed time: ``start + k * every``, computed in UTC.

Cron follows Debian cron (cron(8), NOTES, on daylight saving time). A *fixed-time* job
(``30 1 * * *``, ``0-59/30 1 * * *``) follows the policy above. A *wildcard* job, whose minute
or hour field begins with ``*`` (``*/15 * * * *``, ``7 * * * *``), follows elapsed time
(:func:`_next_elapsed`): it fires at each instant at which the clocks show a time it names, so a
time inside a gap never fires and a time inside a fold fires in both passes.

No timedelta is ever added to a local wall-clock time: calendar steps are taken on dates, and a
wall-clock time becomes an instant by subtracting the zone's UTC offset for it.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, replace
from datetime import MAXYEAR, UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import TypeAlias, assert_never
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from personal_assistant.errors import ScheduleError

__all__ = [
    "WEEKDAY_NAMES",
    "Cron",
    "Daily",
    "Interval",
    "Monthly",
    "Once",
    "Schedule",
    "Weekly",
    "describe",
    "next_after",
    "parse_schedule",
    "preview",
    "resolve_local",
    "schedule_to_dict",
    "validate_for_creation",
    "with_interval_anchor",
]

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday names by index: 0 is Monday, 6 is Sunday (as :meth:`datetime.date.weekday`)."""

MIN_INTERVAL = timedelta(seconds=60)
MAX_INTERVAL = timedelta(days=3650)

_FULL_WEEKDAY_NAMES = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
_ONE_DAY = timedelta(days=1)
_ONE_SECOND = timedelta(seconds=1)
_EPSILON = timedelta(microseconds=1)
_TIME_RE = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_DURATION_RE = re.compile(
    r"(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?",
    re.IGNORECASE | re.ASCII,
)
#: More digits than any duration up to MAX_INTERVAL has in any unit: refused before ``int()``,
#: which refuses more than 4,300 digits with a ValueError of its own.
_DURATION_DIGITS_MAX = 12
_CRON_PROBE = datetime(2000, 1, 1)


# --- time zones and wall-clock times ----------------------------------------------------------


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _check_zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name or name == "localtime":
        raise ScheduleError(
            "must be an IANA time zone name such as 'Europe/Paris'", field="schedule.timezone"
        )
    try:
        return _zone(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ScheduleError(f"unknown time zone {name!r}", field="schedule.timezone") from exc


def resolve_local(naive: datetime, tz: ZoneInfo) -> datetime:
    """The instant (aware, UTC) at which the wall-clock time ``naive`` in ``tz`` fires.

    The DST policy: a time inside a spring-forward gap resolves to the transition instant (the
    first instant after the gap); a time inside a fall-back fold resolves to its first
    occurrence. ``naive`` must be naive; its ``fold`` attribute is ignored.
    """
    if naive.tzinfo is not None:
        raise ValueError("resolve_local takes a naive wall-clock time")
    before = naive.replace(tzinfo=tz, fold=0).utcoffset()
    after = naive.replace(tzinfo=tz, fold=1).utcoffset()
    assert before is not None and after is not None  # a ZoneInfo always has an offset
    if before >= after:  # an ordinary time, or a fold: the first occurrence uses `before`
        return (naive - before).replace(tzinfo=UTC, fold=0)
    return _transition_instant(naive - after, naive - before, after, tz)


def _transition_instant(
    earliest: datetime, latest: datetime, new: timedelta, tz: ZoneInfo
) -> datetime:
    """The first instant in (earliest, latest] (naive UTC) whose offset in ``tz`` is ``new``.

    Bisects on whole seconds (tz transitions happen on whole seconds), which also handles
    transitions of 30 minutes (Australia/Lord_Howe) or of a whole day.
    """
    low = earliest.replace(microsecond=0, tzinfo=UTC)  # before the transition
    high = latest.replace(tzinfo=UTC)  # at or after it
    while high - low > _ONE_SECOND:
        middle = (low + (high - low) / 2).replace(microsecond=0)
        if middle.astimezone(tz).utcoffset() == new:
            high = middle
        else:
            low = middle
    return low + _ONE_SECOND


def _as_utc(value: object, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ScheduleError("must be a datetime", field=field)
    if value.tzinfo is None or value.utcoffset() is None:
        raise ScheduleError("must be timezone-aware", field=field)
    return value.astimezone(UTC)


# --- the schedule kinds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Common:
    """The fields every kind has, keyword-only: ``timezone``, ``start``, ``end``."""

    _: KW_ONLY
    timezone: str = "UTC"
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        _check_zone(self.timezone)
        start = _as_utc(self.start, "schedule.start")
        end = _as_utc(self.end, "schedule.end")
        if start is not None and end is not None and end <= start:
            raise ScheduleError("must be after start", field="schedule.end")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.timezone)


def _check_times(times: object) -> None:
    if not isinstance(times, tuple) or not times:
        raise ScheduleError("must be a non-empty tuple of times", field="schedule.times")
    for item in times:
        if not isinstance(item, time) or item.tzinfo is not None or item.microsecond:
            raise ScheduleError(
                "must be naive times of day in whole seconds", field="schedule.times"
            )
    if any(a >= b for a, b in pairwise(times)):
        raise ScheduleError("must be sorted and unique", field="schedule.times")


@dataclass(frozen=True)
class Once(_Common):
    """Fires once, at ``at``."""

    at: datetime

    def __post_init__(self) -> None:
        super().__post_init__()
        at = _as_utc(self.at, "schedule.at")
        if at is None:
            raise ScheduleError("is required", field="schedule.at")
        object.__setattr__(self, "at", at)


@dataclass(frozen=True)
class Interval(_Common):
    """Fires every ``every`` of elapsed time from ``start`` (from the query time without one)."""

    every: timedelta

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.every, timedelta) or self.every.microseconds:
            raise ScheduleError("must be a whole number of seconds", field="schedule.every")
        if not MIN_INTERVAL <= self.every <= MAX_INTERVAL:
            raise ScheduleError("must be between 60 s and 3650 days", field="schedule.every")


@dataclass(frozen=True)
class Daily(_Common):
    """Fires every day at each of ``times`` (wall clock, sorted, unique)."""

    times: tuple[time, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_times(self.times)


@dataclass(frozen=True)
class Weekly(_Common):
    """Fires on each of ``weekdays`` (0 = Monday .. 6 = Sunday) at each of ``times``."""

    weekdays: tuple[int, ...]
    times: tuple[time, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        days = self.weekdays
        if (
            not isinstance(days, tuple)
            or not days
            or any(type(d) is not int or not 0 <= d <= 6 for d in days)
        ):
            raise ScheduleError("must be a non-empty tuple of 0..6", field="schedule.weekdays")
        if any(a >= b for a, b in pairwise(days)):
            raise ScheduleError("must be sorted and unique", field="schedule.weekdays")
        _check_times(self.times)


@dataclass(frozen=True)
class Monthly(_Common):
    """Fires on ``day`` (1..31, clamped to the month's last day) at each of ``times``."""

    day: int
    times: tuple[time, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        if type(self.day) is not int or not 1 <= self.day <= 31:
            raise ScheduleError("must be a day of the month, 1..31", field="schedule.day")
        _check_times(self.times)


@dataclass(frozen=True)
class Cron(_Common):
    """Fires on a 5-field cron ``expression`` read in the schedule's time zone."""

    expression: str

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.expression, str):
            raise ScheduleError("must be a string", field="schedule.expression")
        _check_cron(self.expression)


Schedule: TypeAlias = Once | Interval | Daily | Weekly | Monthly | Cron


# --- cron ---------------------------------------------------------------------------------------


def _cron_matches(expression: str, after: datetime) -> Iterator[datetime]:
    """Naive wall-clock times matching ``expression``, in order, strictly after naive ``after``.

    The one place that knows the cron library. Raises ValueError for a bad expression; the
    iterator ends when there is no match for 50 years.
    """
    try:
        return CronSim(expression, after)
    except CronSimError as exc:
        raise ValueError(str(exc)) from exc


def _cron_is_wildcard(expression: str) -> bool:
    """Debian cron's "wildcard" job: its minute or hour field begins with ``*``.

    Such a job follows elapsed time across DST changes; any other is a "fixed-time" job
    (cron(8), NOTES; cronsim draws the same line).
    """
    minute, hour = expression.split()[:2]
    return minute.startswith("*") or hour.startswith("*")


@lru_cache(maxsize=4096)
def _check_cron(expression: str) -> None:
    """Raise ScheduleError unless ``expression`` parses and has a firing (cached when valid)."""
    if len(expression.split()) != 5:
        raise ScheduleError(
            "must have 5 fields: minute hour day-of-month month day-of-week",
            field="schedule.expression",
        )
    try:
        first = next(_cron_matches(expression, _CRON_PROBE), None)
    except ValueError as exc:
        raise ScheduleError(f"invalid cron expression: {exc}", field="schedule.expression") from exc
    if first is None:
        raise ScheduleError("never fires", field="schedule.expression")


# --- parsing ------------------------------------------------------------------------------------

_COMMON_KEYS = frozenset({"kind", "timezone", "start", "end"})
_KIND_KEYS: dict[str, frozenset[str]] = {
    "once": frozenset({"at"}),
    "interval": frozenset({"every", "every_seconds"}),
    "daily": frozenset({"times", "time"}),
    "weekly": frozenset({"weekdays", "times", "time"}),
    "monthly": frozenset({"day", "times", "time"}),
    "cron": frozenset({"expression"}),
}


def parse_schedule(data: Mapping[str, object]) -> Schedule:
    """Build a schedule from its JSON form; raise ScheduleError naming the bad field.

    ``{"kind": "daily", "times": ["09:00", "18:30"], "timezone": "Europe/Paris"}``; see the
    module docstring for the kinds. ``timezone`` defaults to "UTC"; ``start``, ``end`` and
    ``at`` are ISO-8601 strings, read as wall-clock times in the schedule's time zone when they
    carry no offset.
    """
    if not isinstance(data, Mapping):
        raise ScheduleError("must be an object", field="schedule")
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

    timezone = data.get("timezone")
    timezone = "UTC" if timezone is None else timezone
    zone = _check_zone(timezone)
    assert isinstance(timezone, str)
    start = _parse_instant(data.get("start"), zone, "schedule.start")
    end = _parse_instant(data.get("end"), zone, "schedule.end")
    if start is not None and end is not None and end <= start:
        raise ScheduleError("must be after start", field="schedule.end")

    if kind == "once":
        at = _parse_instant(data.get("at"), zone, "schedule.at")
        if at is None:
            raise ScheduleError("is required", field="schedule.at")
        return Once(at=at, timezone=timezone, start=start, end=end)
    if kind == "interval":
        return Interval(every=_parse_every(data), timezone=timezone, start=start, end=end)
    if kind == "daily":
        return Daily(times=_parse_times(data), timezone=timezone, start=start, end=end)
    if kind == "weekly":
        weekdays = _parse_weekdays(data.get("weekdays"))
        times = _parse_times(data)
        return Weekly(weekdays=weekdays, times=times, timezone=timezone, start=start, end=end)
    if kind == "monthly":
        day = _parse_day(data.get("day"))
        times = _parse_times(data)
        return Monthly(day=day, times=times, timezone=timezone, start=start, end=end)
    expression = data.get("expression")
    if expression is None:
        raise ScheduleError("is required", field="schedule.expression")
    if not isinstance(expression, str):
        raise ScheduleError("must be a string", field="schedule.expression")
    return Cron(expression=" ".join(expression.split()), timezone=timezone, start=start, end=end)


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
    raw = data.get("times")
    if raw is None:
        raise ScheduleError("is required", field="schedule.times")
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise ScheduleError("must be a list of times such as ['09:00']", field="schedule.times")
    if not raw:
        raise ScheduleError("must not be empty", field="schedule.times")
    return tuple(sorted({_parse_time(item, "schedule.times") for item in raw}))


def _parse_weekday(value: object) -> int:
    if type(value) is int:
        if 0 <= value <= 6:
            return value
    elif isinstance(value, str):
        name = value.strip().lower()
        if name in WEEKDAY_NAMES:
            return WEEKDAY_NAMES.index(name)
        if name in _FULL_WEEKDAY_NAMES:
            return _FULL_WEEKDAY_NAMES.index(name)
    raise ScheduleError(
        f"not a weekday (mon..sun or 0..6, 0 = Monday): {value!r}", field="schedule.weekdays"
    )


def _parse_weekdays(raw: object) -> tuple[int, ...]:
    if raw is None:
        raise ScheduleError("is required", field="schedule.weekdays")
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise ScheduleError("must be a list of weekdays such as ['mon']", field="schedule.weekdays")
    if not raw:
        raise ScheduleError("must not be empty", field="schedule.weekdays")
    return tuple(sorted({_parse_weekday(item) for item in raw}))


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
        if raw > MAX_INTERVAL // _ONE_SECOND:
            raise ScheduleError("must be between 60 s and 3650 days", field=field)
        every = timedelta(seconds=raw)
    elif isinstance(raw, str):
        every = _parse_duration(raw, field)
    else:
        raise ScheduleError("must be seconds or a duration such as '30m' or '1h30m'", field=field)
    if every.microseconds:
        raise ScheduleError("must be a whole number of seconds", field=field)
    if not MIN_INTERVAL <= every <= MAX_INTERVAL:
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
    if seconds > MAX_INTERVAL // _ONE_SECOND:
        raise ScheduleError("must be between 60 s and 3650 days", field=field)
    return timedelta(seconds=seconds)


# --- serialising and describing -------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _time_text(value: time) -> str:
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def _duration_text(every: timedelta) -> str:
    seconds = every // _ONE_SECOND
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def schedule_to_dict(s: Schedule) -> dict[str, object]:
    """The JSON form of ``s``; :func:`parse_schedule` turns it back into an equal schedule."""
    out: dict[str, object]
    match s:
        case Once():
            out = {"kind": "once", "at": _iso(s.at)}
        case Interval():
            out = {"kind": "interval", "every_seconds": s.every // _ONE_SECOND}
        case Daily():
            out = {"kind": "daily", "times": [_time_text(t) for t in s.times]}
        case Weekly():
            out = {
                "kind": "weekly",
                "weekdays": [WEEKDAY_NAMES[d] for d in s.weekdays],
                "times": [_time_text(t) for t in s.times],
            }
        case Monthly():
            out = {"kind": "monthly", "day": s.day, "times": [_time_text(t) for t in s.times]}
        case Cron():
            out = {"kind": "cron", "expression": s.expression}
        case _:
            assert_never(s)
    out["timezone"] = s.timezone
    if s.start is not None:
        out["start"] = _iso(s.start)
    if s.end is not None:
        out["end"] = _iso(s.end)
    return out


def describe(s: Schedule) -> str:
    """Short human text: "daily at 09:00, 18:30 (Europe/Paris)", "every 30m"..."""
    tz = s.timezone

    def local(moment: datetime) -> str:
        return moment.astimezone(s.zone).strftime("%Y-%m-%d %H:%M")

    match s:
        case Once():
            text = f"once at {local(s.at)} ({tz})"
        case Interval():
            text = f"every {_duration_text(s.every)}"
        case Daily():
            text = f"daily at {', '.join(map(_time_text, s.times))} ({tz})"
        case Weekly():
            days = ", ".join(WEEKDAY_NAMES[d] for d in s.weekdays)
            text = f"weekly on {days} at {', '.join(map(_time_text, s.times))} ({tz})"
        case Monthly():
            clamp = " (or the month's last day)" if s.day > 28 else ""
            text = f"monthly on day {s.day}{clamp} at {', '.join(map(_time_text, s.times))} ({tz})"
        case Cron():
            text = f"cron '{s.expression}' ({tz})"
        case _:
            assert_never(s)
    if s.start is not None:
        text += f", from {local(s.start)}"
    if s.end is not None:
        text += f", until {local(s.end)}"
    return text


# --- next firing --------------------------------------------------------------------------------


def _daily_wall_times(times: tuple[time, ...], wall: datetime) -> Iterator[datetime]:
    day = wall.date()
    while True:
        for t in times:
            candidate = datetime.combine(day, t)
            if candidate > wall:
                yield candidate
        day += _ONE_DAY


def _weekly_wall_times(
    weekdays: tuple[int, ...], times: tuple[time, ...], wall: datetime
) -> Iterator[datetime]:
    day = wall.date()
    while True:
        if day.weekday() in weekdays:
            for t in times:
                candidate = datetime.combine(day, t)
                if candidate > wall:
                    yield candidate
        day += _ONE_DAY


def _monthly_wall_times(day: int, times: tuple[time, ...], wall: datetime) -> Iterator[datetime]:
    year, month = wall.year, wall.month
    while year <= MAXYEAR:
        last = calendar.monthrange(year, month)[1]
        the_date = date(year, month, min(day, last))
        for t in times:
            candidate = datetime.combine(the_date, t)
            if candidate > wall:
                yield candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _wall_times(s: Daily | Weekly | Monthly | Cron, wall: datetime) -> Iterator[datetime]:
    match s:
        case Daily():
            return _daily_wall_times(s.times, wall)
        case Weekly():
            return _weekly_wall_times(s.weekdays, s.times, wall)
        case Monthly():
            return _monthly_wall_times(s.day, s.times, wall)
        case Cron():
            return _cron_matches(s.expression, wall)
        case _:
            assert_never(s)


def _instants(wall: datetime, tz: ZoneInfo) -> list[datetime]:
    """The instants (UTC, in order) at which clocks in ``tz`` show naive ``wall``.

    None inside a spring-forward gap, two inside a fall-back fold, one otherwise.
    """
    first = wall.replace(tzinfo=tz, fold=0).utcoffset()
    second = wall.replace(tzinfo=tz, fold=1).utcoffset()
    assert first is not None and second is not None  # a ZoneInfo always has an offset
    if first < second:  # zoneinfo gives a gap's time the offsets from either side of it
        return []
    return sorted({(wall - first).replace(tzinfo=UTC), (wall - second).replace(tzinfo=UTC)})


def _next_elapsed(expression: str, after: datetime, tz: ZoneInfo) -> datetime | None:
    """The first instant strictly after ``after`` at which clocks in ``tz`` show a matching time.

    Debian cron's rule for wildcard jobs: a wall time the clocks skip never comes, a wall time
    they show twice comes twice. The matches are walked in wall-clock order; only a fold breaks
    the order of their instants, so the walk starts one fold earlier when ``after`` is inside
    one (to see the second pass of wall times already passed once) and stops at the first
    match later than ``after``'s wall time.
    """
    wall = after.astimezone(tz).replace(tzinfo=None, fold=0)
    passes = _instants(wall, tz)  # two when ``after`` is inside a fold
    earlier = wall
    if len(passes) == 2:  # the wall time of ``after`` one fold earlier
        earlier = (after - (passes[1] - passes[0])).astimezone(tz).replace(tzinfo=None, fold=0)
    best: datetime | None = None
    for match in _cron_matches(expression, earlier):
        for instant in _instants(match, tz):
            if instant > after and (best is None or instant < best):
                best = instant
        if best is not None and match > wall:
            return best
    return best


def next_after(s: Schedule, after: datetime) -> datetime | None:
    """The first firing strictly after ``after`` (aware, any zone), in UTC; None if none.

    Honours ``start`` (firings at or after it) and ``end`` (firings at or before it).
    """
    if after.tzinfo is None:
        raise ValueError("next_after takes an aware datetime")
    if s.start is not None and after < s.start:
        after = s.start - _EPSILON  # firings > after are then exactly those >= start
    try:
        fire = _next_unbounded(s, after)
    except OverflowError:  # past year 9999
        return None
    if fire is None or (s.end is not None and fire > s.end):
        return None
    return fire


def _next_unbounded(s: Schedule, after: datetime) -> datetime | None:
    """The first firing strictly after ``after``, ignoring ``end``."""
    match s:
        case Once():
            return s.at if s.at > after else None
        case Interval():
            if s.start is None:
                return after.astimezone(UTC) + s.every
            steps = (after - s.start) // s.every + 1
            return s.start + steps * s.every
        case Cron() if _cron_is_wildcard(s.expression):
            return _next_elapsed(s.expression, after, s.zone)
        case _:
            tz = s.zone
            wall = after.astimezone(tz).replace(tzinfo=None, fold=0)
            for candidate in _wall_times(s, wall):
                fire = resolve_local(candidate, tz)
                if fire <= after:  # only inside a fold, after its first occurrence
                    continue
                return fire
            return None


def preview(s: Schedule, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` firings strictly after ``after`` (fewer if the schedule ends)."""
    firings: list[datetime] = []
    fire = next_after(s, after)
    while fire is not None and len(firings) < count:
        firings.append(fire)
        fire = next_after(s, fire)
    return firings


def validate_for_creation(s: Schedule, now: datetime) -> datetime:
    """Check that ``s`` may be created at ``now`` and return its first firing."""
    if isinstance(s, Once) and s.at <= now:
        raise ScheduleError("is in the past", field="schedule.at")
    if s.start is not None and s.end is not None and s.end <= s.start:
        raise ScheduleError("must be after start", field="schedule.end")
    first = next_after(s, now)
    if first is None:
        raise ScheduleError("has no firing after now", field="schedule")
    return first


def with_interval_anchor(s: Schedule, anchor: datetime) -> Schedule:
    """An Interval without ``start`` anchored at ``anchor``; any other schedule unchanged."""
    if not isinstance(s, Interval) or s.start is not None:
        return s
    if s.end is not None and s.end <= anchor:
        raise ScheduleError("is not after the interval's first firing", field="schedule.end")
    return replace(s, start=anchor)
