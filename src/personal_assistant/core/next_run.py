"""When a schedule fires next: :func:`next_after`, :func:`preview` and the checks at creation.

Every datetime going in must be aware; every datetime returned is in UTC. Daily, weekly,
monthly and fixed-time cron schedules walk wall-clock times in the schedule's zone, in order,
and turn each into an instant by the DST policy of
:func:`~personal_assistant.core.wallclock.resolve_local`. Intervals count elapsed time:
``start + k * every``, computed in UTC. A *wildcard* cron job (``*/15 * * * *``,
``7 * * * *``) follows elapsed time as Debian cron does (:func:`_next_elapsed`): it fires at each
instant at which the clocks show a time it names, so a time inside a gap never fires and a time
inside a fold fires in both passes.

Calendar steps are taken on dates, never by adding a timedelta to a local wall-clock time.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import replace
from datetime import MAXYEAR, UTC, date, datetime, time, timedelta
from typing import assert_never
from zoneinfo import ZoneInfo

from personal_assistant.core import schedule_kinds as kinds
from personal_assistant.core.cron import cron_is_wildcard, cron_matches
from personal_assistant.core.wallclock import resolve_local, wall_instants
from personal_assistant.errors import ScheduleError

__all__ = ["next_after", "preview", "validate_for_creation", "with_interval_anchor"]

_ONE_DAY = timedelta(days=1)
_EPSILON = timedelta(microseconds=1)


def _daily_wall_times(
    times: tuple[time, ...], wall: datetime, step: int, anchor: date
) -> Iterator[datetime]:
    """The wall times after ``wall`` on every ``step``-th day counted from ``anchor``."""
    day = wall.date()
    day += timedelta(days=-(day - anchor).days % step)
    while True:
        for t in times:
            candidate = datetime.combine(day, t)
            if candidate > wall:
                yield candidate
        day += timedelta(days=step)


def _weekly_wall_times(
    weekdays: tuple[int, ...], times: tuple[time, ...], wall: datetime, step: int, anchor: date
) -> Iterator[datetime]:
    """The wall times after ``wall`` on ``weekdays`` of every ``step``-th week (weeks start on
    Monday) counted from the week of ``anchor``."""
    first_monday = anchor - timedelta(days=anchor.weekday())
    day = wall.date()
    while True:
        monday = day - timedelta(days=day.weekday())
        off = (monday - first_monday).days // 7 % step
        if off:  # a week left out: on to the Monday of the next week in the cycle
            day = monday + timedelta(weeks=step - off)
            continue
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


def _wall_times(
    s: kinds.Daily | kinds.Weekly | kinds.Monthly | kinds.Cron, wall: datetime
) -> Iterator[datetime]:
    match s:
        case kinds.Daily():
            return _daily_wall_times(s.times, wall, s.every_days, _anchor(s, wall))
        case kinds.Weekly():
            return _weekly_wall_times(s.weekdays, s.times, wall, s.every_weeks, _anchor(s, wall))
        case kinds.Monthly():
            return _monthly_wall_times(s.day, s.times, wall)
        case kinds.Cron():
            return cron_matches(s.expression, wall)
        case _:
            assert_never(s)


def _anchor(s: kinds.Daily | kinds.Weekly, wall: datetime) -> date:
    """The date a daily or weekly cycle counts from: ``start``'s in the schedule's zone, else
    that of ``wall`` (as an interval without ``start`` counts from the query time)."""
    return wall.date() if s.start is None else s.start.astimezone(s.zone).date()


def _next_elapsed(expression: str, after: datetime, tz: ZoneInfo) -> datetime | None:
    """The first instant strictly after ``after`` at which clocks in ``tz`` show a matching time.

    Debian cron's rule for wildcard jobs: a wall time the clocks skip never comes, a wall time
    they show twice comes twice. The matches are walked in wall-clock order; only a fold breaks
    the order of their instants, so the walk starts one fold earlier when ``after`` is inside
    one (to see the second pass of wall times already passed once) and stops at the first
    match later than ``after``'s wall time.
    """
    wall = after.astimezone(tz).replace(tzinfo=None, fold=0)
    passes = wall_instants(wall, tz)  # two when ``after`` is inside a fold
    earlier = wall
    if len(passes) == 2:  # the wall time of ``after`` one fold earlier
        earlier = (after - (passes[1] - passes[0])).astimezone(tz).replace(tzinfo=None, fold=0)
    best: datetime | None = None
    for match in cron_matches(expression, earlier):
        for instant in wall_instants(match, tz):
            if instant > after and (best is None or instant < best):
                best = instant
        if best is not None and match > wall:
            return best
    return best


def next_after(s: kinds.Schedule, after: datetime) -> datetime | None:
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


def _next_unbounded(s: kinds.Schedule, after: datetime) -> datetime | None:
    """The first firing strictly after ``after``, ignoring ``end``."""
    match s:
        case kinds.Once():
            return s.at if s.at > after else None
        case kinds.Interval():
            if s.start is None:
                return after.astimezone(UTC) + s.every
            steps = (after - s.start) // s.every + 1
            return s.start + steps * s.every
        case kinds.Cron() if cron_is_wildcard(s.expression):
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


def preview(s: kinds.Schedule, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` firings strictly after ``after`` (fewer if the schedule ends)."""
    firings: list[datetime] = []
    fire = next_after(s, after)
    while fire is not None and len(firings) < count:
        firings.append(fire)
        fire = next_after(s, fire)
    return firings


def validate_for_creation(s: kinds.Schedule, now: datetime) -> datetime:
    """Check that ``s`` may be created at ``now`` and return its first firing."""
    if isinstance(s, kinds.Once) and s.at <= now:
        raise ScheduleError("is in the past", field="schedule.at")
    if s.start is not None and s.end is not None and s.end <= s.start:
        raise ScheduleError("must be after start", field="schedule.end")
    first = next_after(s, now)
    if first is None:
        raise ScheduleError("has no firing after now", field="schedule")
    return first


def with_interval_anchor(s: kinds.Schedule, anchor: datetime) -> kinds.Schedule:
    """An Interval, or a daily or weekly schedule with a step (``every_days``, ``every_weeks``)
    over 1, without ``start``, anchored at ``anchor``; any other schedule unchanged."""
    stepped = (isinstance(s, kinds.Daily) and s.every_days > 1) or (
        isinstance(s, kinds.Weekly) and s.every_weeks > 1
    )
    if not (isinstance(s, kinds.Interval) or stepped) or s.start is not None:
        return s
    if s.end is not None and s.end <= anchor:
        raise ScheduleError("is not after the interval's first firing", field="schedule.end")
    return replace(s, start=anchor)
