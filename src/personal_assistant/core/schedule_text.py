"""How a schedule reads to a person: :func:`describe`, and the text of its times and durations."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import assert_never

from personal_assistant.core import schedule_kinds as kinds

__all__ = ["describe", "duration_text", "time_text"]

_ONE_SECOND = timedelta(seconds=1)


def time_text(value: time) -> str:
    """``09:00``, or ``09:00:30`` when the time has seconds."""
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def duration_text(every: timedelta) -> str:
    """``1h30m``, ``90s``, ``2d``: whole units, largest first."""
    seconds = every // _ONE_SECOND
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def describe(s: kinds.Schedule) -> str:
    """Short human text: "daily at 09:00, 18:30 (Europe/Paris)", "every 30m"..."""
    tz = s.timezone

    def local(moment: datetime) -> str:
        return moment.astimezone(s.zone).strftime("%Y-%m-%d %H:%M")

    match s:
        case kinds.Once():
            text = f"once at {local(s.at)} ({tz})"
        case kinds.Interval():
            text = f"every {duration_text(s.every)}"
        case kinds.Daily():
            days = "daily" if s.every_days == 1 else f"every {s.every_days} days"
            text = f"{days} at {', '.join(map(time_text, s.times))} ({tz})"
        case kinds.Weekly():
            days = ", ".join(kinds.WEEKDAY_NAMES[d] for d in s.weekdays)
            weeks = "weekly" if s.every_weeks == 1 else f"every {s.every_weeks} weeks"
            text = f"{weeks} on {days} at {', '.join(map(time_text, s.times))} ({tz})"
        case kinds.Monthly():
            clamp = " (or the month's last day)" if s.day > 28 else ""
            text = f"monthly on day {s.day}{clamp} at {', '.join(map(time_text, s.times))} ({tz})"
        case kinds.Cron():
            text = f"cron '{s.expression}' ({tz})"
        case _:
            assert_never(s)
    if s.start is not None:
        text += f", from {local(s.start)}"
    if s.end is not None:
        text += f", until {local(s.end)}"
    return text
