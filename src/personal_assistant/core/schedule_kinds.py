"""The schedule kinds: six frozen dataclasses (:data:`Schedule`), each checking its own fields.

Each has a ``timezone`` (an IANA name, "UTC" by default) and optional ``start`` and ``end``
bounds: firings happen at or after ``start`` and at or before ``end``. Every datetime going in
must be aware; every datetime stored is in UTC.

* :class:`Once` fires once, at ``at``.
* :class:`Interval` fires every ``every`` (at least 60 s) of elapsed time, anchored at ``start``.
* :class:`Daily`, :class:`Weekly` and :class:`Monthly` fire at wall-clock ``times`` in the
  schedule's time zone. A daily schedule may fire every ``every_days`` days and a weekly one
  every ``every_weeks`` weeks, counted from the date (the week, Monday first) of ``start`` in
  the schedule's zone: "every other Tuesday at 18:00" keeps 18:00 across DST changes, which an
  interval of 14 days cannot. A monthly ``day`` of 29-31 fires on the month's last day in shorter
  months (day 31 fires on 28/29 February, 30 April...).
* :class:`Cron` fires on a 5-field cron expression (with ``L``, ``#``, ranges and steps), read
  in the schedule's time zone.

When each fires is in :mod:`~personal_assistant.core.next_run`; their JSON form in
:mod:`~personal_assistant.core.schedule_json`.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from typing import TypeAlias
from zoneinfo import ZoneInfo

from personal_assistant.core.cron import check_cron
from personal_assistant.core.wallclock import check_zone, named_zone
from personal_assistant.errors import ScheduleError

__all__ = [
    "MAX_EVERY_DAYS",
    "MAX_EVERY_WEEKS",
    "MAX_INTERVAL",
    "MIN_INTERVAL",
    "WEEKDAY_NAMES",
    "Cron",
    "Daily",
    "Interval",
    "Monthly",
    "Once",
    "Schedule",
    "Weekly",
]

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday names by index: 0 is Monday, 6 is Sunday (as :meth:`datetime.date.weekday`)."""

MIN_INTERVAL = timedelta(seconds=60)
MAX_INTERVAL = timedelta(days=3650)
MAX_EVERY_DAYS = 366
MAX_EVERY_WEEKS = 52


def _as_utc(value: object, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ScheduleError("must be a datetime", field=field)
    if value.tzinfo is None or value.utcoffset() is None:
        raise ScheduleError("must be timezone-aware", field=field)
    return value.astimezone(UTC)


@dataclass(frozen=True)
class _Common:
    """The fields every kind has, keyword-only: ``timezone``, ``start``, ``end``."""

    _: KW_ONLY
    timezone: str = "UTC"
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        check_zone(self.timezone)
        start = _as_utc(self.start, "schedule.start")
        end = _as_utc(self.end, "schedule.end")
        if start is not None and end is not None and end <= start:
            raise ScheduleError("must be after start", field="schedule.end")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @property
    def zone(self) -> ZoneInfo:
        return named_zone(self.timezone)


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


def _check_step(step: object, high: int, field: str) -> None:
    if type(step) is not int or not 1 <= step <= high:
        raise ScheduleError(f"must be a whole number from 1 to {high}", field=field)


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
    """Fires every day (every ``every_days`` days from ``start``'s date) at each of ``times``
    (wall clock, sorted, unique)."""

    times: tuple[time, ...]
    every_days: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_times(self.times)
        _check_step(self.every_days, MAX_EVERY_DAYS, "schedule.every_days")


@dataclass(frozen=True)
class Weekly(_Common):
    """Fires on each of ``weekdays`` (0 = Monday .. 6 = Sunday) at each of ``times``, every
    week (every ``every_weeks`` weeks from the week of ``start``)."""

    weekdays: tuple[int, ...]
    times: tuple[time, ...]
    every_weeks: int = 1

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
        _check_step(self.every_weeks, MAX_EVERY_WEEKS, "schedule.every_weeks")


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
        check_cron(self.expression)


Schedule: TypeAlias = Once | Interval | Daily | Weekly | Monthly | Cron
