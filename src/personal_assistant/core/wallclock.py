"""Wall-clock times in a time zone and the instants they name: the DST policy.

Wall-clock times become instants through :func:`resolve_local`, for every schedule kind that
names them (daily, weekly, monthly, fixed-time cron, and the offset-less ISO strings of
``at``, ``start``, ``end``) and for digests, quiet hours and calendar events:

* A wall-clock time inside a spring-forward gap (a time the clocks skip) fires at the first
  instant after the gap: the transition instant itself. 02:30 on 2026-03-08 in New York fires at
  03:00 EDT (07:00 UTC); 02:15 on 2026-10-04 on Lord Howe Island, whose clocks move by 30
  minutes, fires at 02:30 (15:30 UTC the day before). Several wall times inside one gap collapse
  into that single firing.
* A wall-clock time inside a fall-back fold (a time the clocks show twice) fires once, at its
  first occurrence (``fold=0``).

:func:`wall_instants` gives every instant at which the clocks show a wall time (none in a gap,
two in a fold), for what follows elapsed time instead (wildcard cron jobs).

No timedelta is ever added to a local wall-clock time: a wall-clock time becomes an instant by
subtracting the zone's UTC offset for it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from personal_assistant.errors import ScheduleError

__all__ = ["check_zone", "named_zone", "resolve_local", "wall_instants"]

_ONE_SECOND = timedelta(seconds=1)


@lru_cache(maxsize=1024)
def named_zone(name: str) -> ZoneInfo:
    """The zone of an IANA name (cached)."""
    return ZoneInfo(name)


def check_zone(name: object) -> ZoneInfo:
    """The zone named ``name``; ScheduleError (``schedule.timezone``) for anything else."""
    if not isinstance(name, str) or not name or name == "localtime":
        raise ScheduleError(
            "must be an IANA time zone name such as 'Europe/Paris'", field="schedule.timezone"
        )
    try:
        return named_zone(name)
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


def wall_instants(wall: datetime, tz: ZoneInfo) -> list[datetime]:
    """The instants (UTC, in order) at which clocks in ``tz`` show naive ``wall``.

    None inside a spring-forward gap, two inside a fall-back fold, one otherwise.
    """
    first = wall.replace(tzinfo=tz, fold=0).utcoffset()
    second = wall.replace(tzinfo=tz, fold=1).utcoffset()
    assert first is not None and second is not None  # a ZoneInfo always has an offset
    if first < second:  # zoneinfo gives a gap's time the offsets from either side of it
        return []
    return sorted({(wall - first).replace(tzinfo=UTC), (wall - second).replace(tzinfo=UTC)})
