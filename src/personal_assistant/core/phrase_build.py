"""From what the schedule words say (:class:`~personal_assistant.core.phrase_when.When`) to a
schedule in its JSON form (pure), by the rules of docs/nl-policy.md.

:func:`build_schedule` returns the schedule and the doubts it has about it: a doubt is a
reading the words do not settle ("at 4": morning or afternoon?); the parser then offers the
schedule as a question instead of a task. Dates are stepped as dates and wall-clock times are
written without an offset, so the schedules' DST policy resolves them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from personal_assistant.core import phrase_words as w
from personal_assistant.core.phrase_dates import (
    UNTIL_DAY,
    month_day_date,
    months_later,
    next_date,
)
from personal_assistant.core.phrase_notes import RawTime, When

__all__ = ["Built", "build_schedule"]

_DEFAULT_TIME = time(9, 0)
_ONE_DAY = timedelta(days=1)
_LAST_SECOND = time(23, 59, 59)
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass
class Built:
    """A schedule (JSON form) or None, and the doubts about it."""

    schedule: dict[str, Any] | None = None
    doubts: list[str] = field(default_factory=list)


def _hour(raw: RawTime, pm: bool | None, before: time | None, doubts: list[str]) -> time | None:
    """The wall-clock time of ``raw``; ``pm`` is the part of the day's hint, ``before`` the
    time named before it in a list or range."""
    hour, minute, marker = raw
    if minute > 59:
        doubts.append(f"{hour}:{minute:02d} is not a time")
        return None
    if marker in ("am", "pm"):
        return _twelve_hour(hour, minute, marker, doubts)
    if marker in ("24", "mid") or hour > 12:
        if hour > 23:
            doubts.append(f"{hour}:{minute:02d} is not a time")
            return None
        return time(hour, minute)
    if hour == 0:
        return time(0, minute)
    return _bare_hour(hour, minute, pm, before, doubts)


def _twelve_hour(hour: int, minute: int, marker: str, doubts: list[str]) -> time | None:
    """``hour`` (1-12) with ``am`` or ``pm``."""
    if marker == "pm" and 13 <= hour <= 23:
        doubts.append(f"{hour}:{minute:02d} pm mixes the two clocks")
        return time(hour, minute)
    if not 1 <= hour <= 12:
        doubts.append(f"{hour} {marker} is not a time")
        return None
    return time(hour % 12 + (12 if marker == "pm" else 0), minute)


def _bare_hour(
    hour: int, minute: int, pm: bool | None, before: time | None, doubts: list[str]
) -> time:
    """``hour`` (1-12) with no am or pm: the part of the day says, or the time before it in a
    list, or the policy (7-11 morning, 12 noon, 1-6 a doubt, read as afternoon)."""
    if pm is not None:
        if pm and hour == 12 and minute == 0:
            doubts.append("12 at night is midnight: of which day?")
            return time(0)
        return time(hour % 12 + (12 if pm else 0), minute)
    if before is not None and time(hour % 12, minute) <= before:
        return time(hour % 12 + 12, minute) if hour < 12 else time(12, minute)
    if hour == 12:
        return time(12, minute)
    if hour < 7:
        doubts.append(f"{hour}:{minute:02d} may be morning or afternoon")
        return time(hour + 12, minute)
    return time(hour, minute)


def _pm_hint(when: When) -> bool | None:
    return w.PARTS_OF_DAY[when.parts[0]][1] if len(set(when.parts)) == 1 else None


def _times(when: When, doubts: list[str]) -> list[time]:
    pm = _pm_hint(when)
    found: list[time] = []
    clock24 = any(m == "24" and h >= 13 for h, _, m in when.times)
    for raw in when.times:
        if clock24 and raw[2] == "" and raw[0] <= 12:
            raw = (raw[0], raw[1], "24")
        at = _hour(raw, pm, found[-1] if found else None, doubts)
        if at is not None:
            found.append(at)
    if not found and not when.times:
        found = [w.PARTS_OF_DAY[part][0] for part in when.parts] or [_DEFAULT_TIME]
        if when.times_count is not None and when.times_count > 1 and len(found) == 1:
            doubts.append(f"{when.times_count} times a day, but at what times?")
            if when.times_count == 2:
                found.append(time(21, 0))  # 12 hours apart, offered as a question
    if not found:
        found = [_DEFAULT_TIME]
    times = sorted(set(found))
    if when.times_count is not None and len(times) != when.times_count:
        doubts.append(f"{when.times_count} times a day but {len(times)} times named")
    return times


def _wall(day: date, at: time) -> str:
    return datetime.combine(day, at).isoformat()


def _first_wall(local: datetime, days: list[date], at: time) -> date:
    """The first of ``days`` whose ``at`` is later than ``local``."""
    for day in days:
        if datetime.combine(day, at) > local:
            return day
    return days[-1] + _ONE_DAY


def _once_day(when: When, today: date, doubts: list[str]) -> date | None:
    named = (when.on_date, when.relative_days, when.month_days or None)
    if sum(value is not None for value in named) > 1 or (
        when.on_weekday is not None and when.relative_days is not None
    ):
        doubts.append("two different days named")
    if when.on_date is not None:
        month, dom, year = when.on_date
        day = date(year, month, dom) if year else next_date(today, month, dom)
        if when.on_weekday is not None and when.on_weekday[0] != day.weekday():
            doubts.append("the weekday and the date disagree")
        return day
    if when.relative_days is not None:
        return today + timedelta(days=when.relative_days)
    if when.on_weekday is not None:
        weekday, lead = when.on_weekday
        ahead = (weekday - today.weekday()) % 7
        if lead == "next":
            ahead = ahead or 7
            coming = today + timedelta(days=ahead)
            if coming.isocalendar()[:2] == today.isocalendar()[:2]:
                doubts.append("'next' may mean this week's day or the week after")
        return today + timedelta(days=ahead)
    if when.month_days:
        if len(when.month_days) > 1:
            doubts.append("several days of the month for a one-off")
        return month_day_date(today, when.month_days[0])
    return None


def _once(when: When, local: datetime, now: datetime, doubts: list[str]) -> dict[str, Any] | None:
    today = local.date()
    timed = bool(when.times or when.parts)
    if when.delta is not None:
        if timed:
            doubts.append("both a delay and a time of day are given")
        return {"kind": "once", "at": (now + when.delta).astimezone(UTC).isoformat()}
    day: date | None
    if when.delta_days is not None:
        day = today + timedelta(days=when.delta_days)
        if not timed:
            return {"kind": "once", "at": _wall(day, local.time().replace(microsecond=0))}
    else:
        day = _once_day(when, today, doubts)
    if day is None and not timed:
        return None
    times = _times(when, doubts)
    if len(times) > 1:
        doubts.append("a one-off with several times")
    fire = datetime.combine(_once_date(when, local, day, times[0], doubts), times[0])
    if fire <= local:
        if when.on_weekday is not None and when.on_date is None and when.relative_days is None:
            fire += timedelta(days=7)
        else:
            doubts.append(f"{fire:%Y-%m-%d %H:%M} is in the past")
    return {"kind": "once", "at": fire.isoformat()}


def _once_date(when: When, local: datetime, day: date | None, at: time, doubts: list[str]) -> date:
    """The date of a one-off at ``at``: ``day`` if named (midnight: the end of that day),
    else today or tomorrow, whichever comes first (tonight at midnight: tomorrow)."""
    today = local.date()
    midnight = any(m == "mid" for _, _, m in when.times)
    if day is None and when.this_part and at == time(0):
        return today + _ONE_DAY
    if day is None:
        return _first_wall(local, [today, today + _ONE_DAY], at)
    if midnight or (when.this_part and at == time(0)):
        if midnight:
            doubts.append("midnight of a named day may be its start or its end")
        return day + _ONE_DAY
    return day


def _cron_list(values: list[int]) -> str:
    """Ascending numbers, with runs of three or more as ranges ("1-5")."""
    runs: list[list[int]] = []
    for value in sorted(set(values)):
        if runs and value == runs[-1][-1] + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ",".join(map(str, r)) for r in runs)


def _cron_dow(weekdays: set[int]) -> str:
    """The cron day-of-week field (0 = Sunday) of ``weekdays`` (0 = Monday)."""
    return _cron_list([(d + 1) % 7 for d in weekdays]) if weekdays else "*"


def _cron_times(times: list[time], doubts: list[str]) -> tuple[str, str]:
    minutes = {t.minute for t in times}
    if len(minutes) > 1:
        doubts.append("several times with different minutes")
    return str(min(minutes)), _cron_list([t.hour for t in times])


def _range_hours(when: When, step_hours: int, doubts: list[str]) -> tuple[int, str]:
    """The minute and the cron hour field of an hour range ("from 9 to 5": 0, "9-17")."""
    assert when.hour_range is not None
    pm = _pm_hint(when)
    first = _hour(when.hour_range[0], pm, None, doubts) or time(9)
    last = _hour(when.hour_range[1], None, first, doubts) or time(17)
    end_hour = last.hour if last.minute >= first.minute else last.hour - 1
    step = f"/{step_hours}" if step_hours > 1 else ""
    if end_hour >= first.hour:
        if end_hour == first.hour and not step:
            return first.minute, str(first.hour)
        return first.minute, f"{first.hour}-{end_hour}{step}"
    if step:
        doubts.append("a stepped range past midnight")
    low = f"0-{end_hour}" if end_hour > 0 else "0"
    return first.minute, f"{low},{first.hour}-23" if first.hour < 23 else f"{low},23"


def _interval(when: When, local: datetime, doubts: list[str]) -> dict[str, Any]:
    every = when.every
    assert every is not None
    seconds = int(every.total_seconds())
    if when.hour_range is None and not when.weekdays:
        if when.on_the_hour:
            if seconds != 3600:
                doubts.append("'on the hour' with an interval other than an hour")
            return {"kind": "cron", "expression": "0 * * * *"}
        schedule: dict[str, Any] = {"kind": "interval", "every_seconds": seconds}
        if when.times:
            times = _times(when, doubts)
            if not when.starting:
                doubts.append("an interval with a time of day")
            day = _first_wall(local, [local.date(), local.date() + _ONE_DAY], times[0])
            schedule["start"] = _wall(day, times[0])
        return schedule
    if seconds % 3600 == 0 and seconds <= 12 * 3600:
        if when.hour_range is not None:
            minute, hours = _range_hours(when, seconds // 3600, doubts)
        else:
            minute, hours = 0, "*" if seconds == 3600 else f"*/{seconds // 3600}"
        return {"kind": "cron", "expression": f"{minute} {hours} * * {_cron_dow(when.weekdays)}"}
    if seconds < 3600 and 3600 % seconds == 0:
        minutes = ",".join(str(m) for m in range(0, 60, seconds // 60))
        hours = "*"
        if when.hour_range is not None:
            doubts.append("a sub-hour step cannot end on the range's last hour")
            first = _hour(when.hour_range[0], _pm_hint(when), None, doubts) or time(9)
            last = _hour(when.hour_range[1], None, first, doubts) or time(17)
            hours = (
                f"{first.hour}-{last.hour - 1}" if last.hour - 1 > first.hour else str(first.hour)
            )
        return {"kind": "cron", "expression": f"{minutes} {hours} * * {_cron_dow(when.weekdays)}"}
    doubts.append("this interval does not divide the hour or the day")
    return {"kind": "cron", "expression": f"0 * * * {_cron_dow(when.weekdays)}"}


def _every_days(when: When, local: datetime, doubts: list[str]) -> dict[str, Any]:
    """ "every 3 days at 9", "every other Tuesday at 6pm": a daily or weekly schedule with a
    step, counted from its first firing (``start``), so its hour stays when the clocks change."""
    assert when.every is not None
    days_apart, rest = divmod(when.every, _ONE_DAY)
    if rest:
        doubts.append("an interval of days and hours")
    times = _times(when, doubts)
    weeks, odd = divmod(days_apart, 7)
    day, first = _first_firing(when, local, times)
    start = _wall(day, first)
    text = [f"{t:%H:%M}" for t in times]
    if when.repeat == "interval_weeks" and odd == 0:
        if not when.weekdays:
            doubts.append("no day of the week is given")
        weekdays = when.weekdays or {day.weekday()}
        days = [name for i, name in enumerate(_DAY_NAMES) if i in weekdays]
        return {
            "kind": "weekly",
            "weekdays": days,
            "times": text,
            "every_weeks": weeks,
            "start": start,
        }
    if when.weekdays:
        doubts.append(f"every {days_apart} days on named days of the week")
    return {"kind": "daily", "times": text, "every_days": days_apart, "start": start}


def _first_firing(when: When, local: datetime, times: list[time]) -> tuple[date, time]:
    """The first day (a named weekday when there are some) and time of day after ``local``."""
    today = local.date()
    for day in (today + timedelta(days=n) for n in range(8)):
        if when.weekdays and day.weekday() not in when.weekdays:
            continue
        for at in times:
            if datetime.combine(day, at) > local:
                return day, at
    raise AssertionError("a week always holds a later firing")


def _repeating(
    when: When, local: datetime, zone: ZoneInfo, doubts: list[str]
) -> dict[str, Any] | None:
    repeat = when.repeat
    if not _named_days(when, doubts):
        return None
    if repeat == "interval":
        return _interval(when, local, doubts)
    if repeat in ("interval_days", "interval_weeks"):
        return _every_days(when, local, doubts)
    times = _times(when, doubts)
    if any(m == "mid" for _, _, m in when.times) and (when.weekdays or when.month_days):
        doubts.append("midnight of a named day may be its start or its end")
        when.weekdays = {(d + 1) % 7 for d in when.weekdays}
    if repeat == "ordinal":
        return _ordinal(when, times, doubts)
    if repeat == "monthly" or (when.month_days and repeat is None):
        return _monthly(when, times, doubts)
    text = [f"{t:%H:%M}" for t in times]
    if repeat == "weekly" or when.weekdays:
        if not when.weekdays:
            doubts.append("no day of the week is given")
            when.weekdays = {local.weekday()}
        days = [name for i, name in enumerate(_DAY_NAMES) if i in when.weekdays]
        return {"kind": "weekly", "weekdays": days, "times": text}
    return {"kind": "daily", "times": text}


def _named_days(when: When, doubts: list[str]) -> bool:
    """Fold the weekday named ("on Monday") into the days and take the excluded ones out;
    False when every day named is excluded."""
    if when.on_weekday is not None and when.repeat != "ordinal":
        when.weekdays.add(when.on_weekday[0])
    when.weekdays -= when.excluded
    if when.excluded and not when.weekdays:
        doubts.append("every day named is excluded")
        return False
    return True


def _ordinal(when: When, times: list[time], doubts: list[str]) -> dict[str, Any]:
    """ "the first Monday", "the last Friday", "the last weekday" of the month: cron."""
    minute, hours = _cron_times(times, doubts)
    if when.last_workday:
        return {"kind": "cron", "expression": f"{minute} {hours} LW * *"}
    if len({day for _, day in when.ordinals}) > 1:
        doubts.append("ordinals of different weekdays")
    dows = ",".join(
        f"{(day + 1) % 7}" + ("L" if nth < 0 else f"#{nth}") for nth, day in sorted(when.ordinals)
    )
    return {"kind": "cron", "expression": f"{minute} {hours} * * {dows}"}


def _monthly(when: When, times: list[time], doubts: list[str]) -> dict[str, Any] | None:
    """ "on the 15th" of each month (several days: cron)."""
    if not when.month_days:
        doubts.append("no day of the month is given")
        return None
    if len(when.month_days) > 1:
        minute, hours = _cron_times(times, doubts)
        return {
            "kind": "cron",
            "expression": f"{minute} {hours} {_cron_list(when.month_days)} * *",
        }
    return {"kind": "monthly", "day": when.month_days[0], "times": [f"{t:%H:%M}" for t in times]}


def _until_end(when: When, local: datetime, doubts: list[str]) -> str | None:
    """The end an "until ..." names: the last second of its last day, or a time of day."""
    assert when.until is not None
    what, value = when.until
    today = local.date()
    last_day = UNTIL_DAY.get(what)
    if last_day is not None:
        day = last_day(today, value, doubts)
        return None if day is None else _wall(day, _LAST_SECOND)
    assert isinstance(value, tuple)
    at = _hour(value, None, None, doubts)
    if at is None:
        return None
    return _wall(_first_wall(local, [today, today + _ONE_DAY], at), at)


def _end(when: When, local: datetime, doubts: list[str], zone: ZoneInfo) -> str | None:
    if when.until is not None:
        end = _until_end(when, local, doubts)
        if end is not None and datetime.fromisoformat(end) <= local:
            doubts.append("the end is in the past")
        return end
    if when.lasting is not None:
        count, unit = when.lasting
        wall = local.replace(microsecond=0)
        if unit in ("minute", "min", "m", "hour", "hr", "h"):
            seconds = count * (3600 if unit.startswith("h") else 60)
            now = wall.replace(tzinfo=zone).astimezone(UTC)
            return (now + timedelta(seconds=round(seconds))).isoformat()
        if count != int(count):
            doubts.append(f"a duration of {count:g} {unit}s")
        if unit in ("month", "year"):
            months = int(count) * (12 if unit == "year" else 1)
            return datetime.combine(months_later(wall.date(), months), wall.time()).isoformat()
        days = int(count) * (7 if unit in ("week", "wk", "w") else 1)
        return datetime.combine(wall.date() + timedelta(days=days), wall.time()).isoformat()
    return None


def _start(when: When, today: date, doubts: list[str]) -> str | None:
    """The start a date in a repeating request gives ("every day at 9 starting Monday")."""
    day: date | None = None
    if when.on_date is not None:
        month, dom, year = when.on_date
        day = date(year, month, dom) if year else next_date(today, month, dom)
    elif when.relative_days is not None and when.this_part:
        doubts.append("'tonight' or 'this morning' with a repetition")
    elif when.relative_days is not None:
        day = today + timedelta(days=when.relative_days)
    elif when.delta is not None or when.delta_days is not None:
        doubts.append("a delay with a repetition")
    if day is None:
        return None
    if not when.starting:
        doubts.append("a date with a repetition: read as its start")
    return _wall(day, time(0))


def build_schedule(when: When, now: datetime, zone: str) -> Built:
    """The schedule ``when`` describes at ``now`` (aware) in ``zone``, and the doubts about it."""
    built = Built(doubts=list(when.doubts))
    tz = ZoneInfo(zone)
    local = now.astimezone(tz).replace(tzinfo=None)
    if when.repeat is None and not when.weekdays:
        schedule = _once(when, local, now, built.doubts)
    else:
        schedule = _repeating(when, local, tz, built.doubts)
        start = _start(when, local.date(), built.doubts)
        if schedule is not None and start is not None:
            schedule["start"] = start
    if schedule is None:
        return built
    end = _end(when, local, built.doubts, tz)
    if end is not None:
        if schedule["kind"] == "once":
            built.doubts.append("an end date for a one-off")
        else:
            schedule["end"] = end
    schedule["timezone"] = zone
    built.schedule = schedule
    return built
