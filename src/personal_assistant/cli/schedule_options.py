"""Turn the schedule options of ``pa task add`` / ``pa task preview`` into a schedule dict (pure).

Exactly one of ``--at``, ``--in``, ``--every``, ``--daily``, ``--weekly``, ``--monthly`` and
``--cron`` is given; ``--start``, ``--end`` and ``--tz`` are optional. The result is the JSON form
that :func:`personal_assistant.core.schedule_json.parse_schedule` reads, which does the real
checking (time zones, times, cron expressions). Without ``--tz`` the dict has no ``timezone``
and the manager uses the user's zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from personal_assistant.errors import ValidationError

_DURATION_RE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", re.IGNORECASE | re.ASCII)
#: More digits than any accepted duration has in any unit: refused before ``int()`` (which
#: raises its own ValueError beyond 4,300 digits).
_MAX_DIGITS = 12

#: The longest duration accepted (as the longest interval): far enough, and never an overflow.
_MAX_DURATION_S = 3650 * 86_400

#: The options that choose the kind of schedule, by their flag.
KIND_FLAGS = ("--at", "--in", "--every", "--daily", "--weekly", "--monthly", "--cron")


@dataclass(frozen=True)
class ScheduleOptions:
    """The raw option values, as typed."""

    at: str | None = None
    in_: str | None = None
    every: str | None = None
    daily: str | None = None
    weekly: str | None = None
    monthly: str | None = None
    cron: str | None = None
    start: str | None = None
    end: str | None = None
    tz: str | None = None

    def kinds_given(self) -> list[str]:
        """The flags of the kind options that were given, in :data:`KIND_FLAGS` order."""
        values = (self.at, self.in_, self.every, self.daily, self.weekly, self.monthly, self.cron)
        return [flag for flag, value in zip(KIND_FLAGS, values, strict=True) if value is not None]


def parse_duration(text: str, option: str) -> timedelta:
    """``90s``, ``10m``, ``2h``, ``1d``, ``1h30m`` (or bare seconds) -> a positive timedelta.

    ASCII digits only (``str.isdigit`` is true of ``²``, which ``int`` refuses)."""
    cleaned = text.strip().replace(" ", "")
    bare = cleaned.isascii() and cleaned.isdigit()
    match = None if bare else _DURATION_RE.fullmatch(cleaned)
    if not bare and (not cleaned or match is None):
        raise ValidationError(
            f"not a duration such as 90s, 10m, 2h, 1d or 1h30m: {text!r}", field=option
        )
    parts = (cleaned,) if match is None else tuple(part or "0" for part in match.groups())
    if any(len(part) > _MAX_DIGITS for part in parts):
        raise ValidationError("must be at most 3650 days", field=option)
    if match is None:
        seconds = int(cleaned)
    else:
        days, hours, minutes, secs = (int(part) for part in parts)
        seconds = ((days * 24 + hours) * 60 + minutes) * 60 + secs
    if seconds <= 0:
        raise ValidationError("must be longer than zero", field=option)
    if seconds > _MAX_DURATION_S:
        raise ValidationError("must be at most 3650 days", field=option)
    return timedelta(seconds=seconds)


def _split(text: str, option: str, what: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise ValidationError(f"must be a comma-separated list of {what}: {text!r}", field=option)
    return items


def _split_at(text: str, option: str, example: str) -> tuple[str, list[str]]:
    head, sep, times = text.partition("@")
    if not sep or not head.strip() or not times.strip():
        raise ValidationError(f"must look like {example}: {text!r}", field=option)
    return head.strip(), _split(times, option, "times such as 09:00")


def _kind_dict(options: ScheduleOptions, flag: str, now: datetime) -> dict[str, object]:
    if flag == "--at":
        assert options.at is not None
        return {"kind": "once", "at": options.at.strip()}
    if flag == "--in":
        assert options.in_ is not None
        when = now.astimezone(UTC) + parse_duration(options.in_, "--in")
        return {"kind": "once", "at": when.isoformat()}
    if flag == "--every":
        assert options.every is not None
        return {"kind": "interval", "every": options.every.strip()}
    if flag == "--daily":
        assert options.daily is not None
        return {"kind": "daily", "times": _split(options.daily, "--daily", "times such as 09:00")}
    if flag == "--weekly":
        assert options.weekly is not None
        days, times = _split_at(options.weekly, "--weekly", "mon,wed@09:00")
        weekdays = _split(days, "--weekly", "weekdays such as mon,wed")
        return {"kind": "weekly", "weekdays": weekdays, "times": times}
    if flag == "--monthly":
        assert options.monthly is not None
        day, times = _split_at(options.monthly, "--monthly", "31@09:00")
        if not (day.isascii() and day.isdigit()) or len(day) > 2:
            raise ValidationError(
                f"the day must be a number 1..31: {day[:10]!r}", field="--monthly"
            )
        return {"kind": "monthly", "day": int(day), "times": times}
    assert flag == "--cron" and options.cron is not None
    return {"kind": "cron", "expression": options.cron.strip()}


def to_schedule_dict(options: ScheduleOptions, now: datetime) -> dict[str, object]:
    """The schedule dict for ``options``; ``now`` (aware) anchors ``--in``."""
    given = options.kinds_given()
    if len(given) != 1:
        choices = ", ".join(KIND_FLAGS)
        found = f" (got {', '.join(given)})" if given else ""
        raise ValidationError(f"give exactly one of {choices}{found}", field="schedule")
    data = _kind_dict(options, given[0], now)
    for key, value in (("start", options.start), ("end", options.end)):
        if value is not None:
            data[key] = value.strip()
    if options.tz is not None:
        data["timezone"] = options.tz.strip()
    return data
