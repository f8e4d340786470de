"""Read an iCalendar (ICS) feed into its upcoming occurrences (pure).

No I/O; everything takes ``now`` (aware). :func:`parse_feed` reads a feed and returns its
upcoming occurrences (:class:`Occurrence`); :mod:`~personal_assistant.calendars.plan` says what
a sync makes of them, :mod:`~personal_assistant.calendars.reminders` when their reminders fire
and what they say.

The rules
---------
* **Recurring events** are expanded (``RRULE``, ``RDATE``); ``EXDATE`` removes instances; an
  instance overridden by a ``RECURRENCE-ID`` component replaces the generated one (a moved
  instance keeps its identity). ``STATUS:CANCELLED`` removes an event, or one instance when it
  is on an override.
* **Times.** A ``TZID`` is honoured, ``...Z`` is UTC, a floating time (no zone) is a wall-clock
  time in the feed's ``X-WR-TIMEZONE`` (Google Calendar writes one) if it names a known zone,
  else in the user's zone. An all-day event (``VALUE=DATE``) starts at local midnight in the
  user's zone. Wall-clock times become instants through
  :func:`~personal_assistant.core.wallclock.resolve_local` (the schedules' DST policy: a time
  in a spring-forward gap is the transition instant, a time in a fold is its first occurrence).
* **Identity.** An occurrence is ``(uid, key)``. ``key`` is ``""`` for a single event; for an
  instance of a recurring event it is the instance's original start (its ``RECURRENCE-ID``) in
  UTC, ``2026-03-16T09:00:00Z``, or the original date, ``2026-03-16``, for an all-day series
  (also when an override writes it as a midnight date-time, as Outlook and Exchange do: its
  wall-clock date).
* **Window.** An occurrence is kept while it is *upcoming* (:func:`is_upcoming`) and starts at
  most ``horizon_days`` after ``now``. A timed occurrence is upcoming until it starts. An
  all-day occurrence is upcoming until its first day ends (local midnight): on the day, its
  reminder still fires.

Refusals
--------
A feed that is not iCalendar, an event that cannot be read, or more than
:data:`MAX_OCCURRENCES` upcoming occurrences in the horizon raise
:class:`~personal_assistant.errors.ValidationError` naming ``feed``. The message says what is
wrong in the feed's terms: the event's UID, the property and the value as the feed wrote it
(``event 'x': its start (DTSTART) 'garbage' is not a date or a date-time``), never a library's
or Python's own words, and it is one printable line
(:func:`~personal_assistant.safe_text.safe_text`). The events are checked before anything is
expanded (:mod:`~personal_assistant.calendars.checks`: what cannot be read, what the expansion
would spend unbounded time on), and the expansion is lazy, one series after the other: it stops
as soon as the count passes the cap, so a hostile feed costs about the cap's worth of work, not
its whole horizon; at most :data:`MAX_EXPANDED` occurrences are expanded around the window,
upcoming or not.

What the checks cannot see (rules the cost model lets through that still match nothing, a
huge number of events) is bounded by the limits of the process that parses a feed:
:mod:`personal_assistant.calendars.sandbox`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events  # type: ignore[import-untyped]  # the package ships no type hints
from recurring_ical_events import errors as rie_errors

from personal_assistant.calendars import checks
from personal_assistant.calendars import properties as props
from personal_assistant.core.wallclock import resolve_local
from personal_assistant.safe_text import safe_text

__all__ = ["MAX_EXPANDED", "MAX_OCCURRENCES", "Occurrence", "is_upcoming", "parse_feed"]


#: At most this many occurrences in a feed's horizon; more is refused (shorten the horizon).
MAX_OCCURRENCES = 2000
#: At most this many occurrences expanded around the window (the window has a day of margin
#: either side, and past occurrences in it are expanded but not counted as upcoming).
MAX_EXPANDED = 10 * MAX_OCCURRENCES
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Occurrence:
    """One upcoming occurrence of a feed's event; datetimes are aware UTC."""

    uid: str
    key: str
    summary: str
    description: str
    location: str
    starts_at: datetime
    ends_at: datetime | None
    all_day: bool


def parse_feed(data: bytes, *, timezone: str, now: datetime, horizon_days: int) -> list[Occurrence]:
    """The upcoming occurrences of the feed ``data`` within ``horizon_days`` of ``now``.

    Sorted by start, then uid and key. ``timezone`` (the user's) places floating and all-day
    times. Raises ValidationError (``feed``) for what is not an iCalendar feed, an event that
    cannot be read, or more than :data:`MAX_OCCURRENCES` occurrences in the window; the
    message says what is wrong in the feed's terms (module doc, Refusals).

    CPU-bound (a large feed takes seconds): call it off any event loop that has other work.
    """
    zone = ZoneInfo(timezone)
    calendar = _read_calendar(data)
    checks.check_events(calendar)
    _check_x_wr_timezone(calendar)
    series = _series_all_day(calendar)
    until = now + timedelta(days=horizon_days)
    # The library compares floating times as wall-clock times of the window's zone: give it
    # the user's zone, with a day of margin either side; the exact window is applied below.
    query_from = (now - _ONE_DAY).astimezone(zone)
    query_to = (until + _ONE_DAY).astimezone(zone)
    checks.check_cost(calendar, props.wall(query_to + _ONE_DAY))
    found: dict[tuple[str, str], Occurrence] = {}
    for expanded, component in enumerate(_expand(calendar, query_from, query_to), start=1):
        if expanded > MAX_EXPANDED:
            raise props.refused(
                f"has more than {MAX_EXPANDED:,} occurrences around the next {horizon_days} "
                "days: not an ordinary calendar"
            )
        occurrence = _converted(component, series, zone)
        if occurrence is None or occurrence.starts_at > until:
            continue
        if not is_upcoming(occurrence.starts_at, occurrence.all_day, zone, now):
            continue
        found.setdefault((occurrence.uid, occurrence.key), occurrence)
        if len(found) > MAX_OCCURRENCES:  # stop here: the rest is never expanded
            raise props.refused(
                f"has more than {MAX_OCCURRENCES} occurrences in the next {horizon_days} days: "
                "subscribe with a shorter horizon"
            )
    return sorted(found.values(), key=lambda o: (o.starts_at, o.uid, o.key))


def _read_calendar(data: bytes) -> icalendar.Calendar:
    if not data.strip():
        raise props.refused("is empty, not an iCalendar (ICS) file")
    text = data.decode("utf-8-sig", errors="replace")
    checks.check_depth(text)
    checks.check_size(text)
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except MemoryError:  # not the feed's syntax: the process's limit (the sandbox)
        raise
    except Exception as exc:  # hostile input: the parser's errors are of many types
        raise props.refused(_syntax_problem(exc)) from None
    if not isinstance(calendar, icalendar.Calendar) or calendar.name != "VCALENDAR":
        raise props.refused("is not an iCalendar (ICS) file: no VCALENDAR")
    scale = safe_text(calendar.get("CALSCALE", "GREGORIAN"), props.RAW_MAX)
    if scale.upper() != "GREGORIAN":
        raise props.refused(
            f"uses the {scale!r} calendar (CALSCALE): only the Gregorian calendar is supported"
        )
    return calendar


def _syntax_problem(exc: Exception) -> str:
    """What the parser's failure says about the file; never the parser's own words, which
    can be Python's (``not enough values to unpack``) or quote control characters."""
    said = str(exc).lower()
    if "multiple components" in said:
        return "holds several calendars (VCALENDAR) where one is expected"
    if "found no components" in said:
        return (
            "is not an iCalendar (ICS) file: no complete VCALENDAR "
            "(BEGIN:VCALENDAR to END:VCALENDAR)"
        )
    return "is not an iCalendar (ICS) file: a line or a value cannot be parsed"


def _check_x_wr_timezone(calendar: icalendar.Calendar) -> None:
    """``X-WR-TIMEZONE`` places floating times (the library applies it); one that names no
    known zone is dropped, and floating times then stay in the user's zone."""
    value = calendar.get("X-WR-TIMEZONE")
    if value is None:
        return
    name = str(value).strip() if not isinstance(value, list) else ""
    try:
        ZoneInfo(name)
    except Exception:  # unknown key, malformed key, empty: all mean no usable zone
        del calendar["X-WR-TIMEZONE"]
        return
    calendar["X-WR-TIMEZONE"] = name


def _series_all_day(calendar: icalendar.Calendar) -> dict[str, bool]:
    """UIDs of series (a rule, extra dates or an override), each with whether it is an all-day
    series: their occurrences are keyed by their original start (module doc, Identity)."""
    series: dict[str, bool] = {}
    for event in calendar.walk("VEVENT"):
        if not any(name in event for name in ("RRULE", "RDATE", "RECURRENCE-ID")):
            continue
        uid = props.uid_of(event)
        is_override = "RECURRENCE-ID" in event
        first = props.read(event["RECURRENCE-ID" if is_override else "DTSTART"], "dt")
        all_day = not isinstance(first, datetime)
        if not is_override or uid not in series:  # the series' own start decides
            series[uid] = all_day
    return series


def _expand(calendar: icalendar.Calendar, start: datetime, stop: datetime) -> Iterator[Any]:
    """The occurrences (as components) between ``start`` and ``stop``, one series after the
    other, lazily: the caller stops at the cap and the rest is never expanded."""
    try:
        query = recurring_ical_events.of(calendar, keep_recurrence_attributes=False)
    except MemoryError:
        raise
    except Exception as exc:  # hostile input: the library's errors are of many types
        culprit = _culprit(calendar)
        event = "an event" if culprit is None else f"event {props.short_uid(culprit)!r}"
        raise props.refused(f"{event}: {_expansion_problem(exc)}") from None
    for series in query.series:
        try:
            for occurrence in series.between(start, stop):
                yield occurrence.as_component(False)
        except MemoryError:
            raise
        except Exception as exc:  # idem
            uid = props.line(getattr(series, "uid", ""), 10 * props.UID_MAX) or "?"
            raise props.refused(
                f"event {props.short_uid(uid)!r}: {_expansion_problem(exc)}"
            ) from None


def _culprit(calendar: icalendar.Calendar) -> str | None:
    """The UID of the first series the library cannot set up on its own (a failure's path
    only: each series is tried in a calendar of its own, with the calendar's zones)."""
    series: dict[str, list[Any]] = {}
    for event in calendar.walk("VEVENT"):
        series.setdefault(props.uid_of(event), []).append(event)
    for uid, events in series.items():
        alone = icalendar.Calendar()
        for name, value in calendar.items():
            alone[name] = value
        for component in [*calendar.walk("VTIMEZONE"), *events]:
            alone.add_component(component)
        try:
            recurring_ical_events.of(alone)
        except Exception:  # the one that fails, whatever the type
            return uid
    return None


def _expansion_problem(exc: Exception) -> str:
    """What the expansion's failure says about the event, in the feed's terms."""
    if isinstance(exc, rie_errors.BadRuleStringFormat):
        return f"its rule (RRULE) {safe_text(exc.rule, props.RAW_MAX)!r} cannot be read"
    if isinstance(exc, rie_errors.PeriodEndBeforeStart):
        return "it ends before it starts"
    return "its occurrences cannot be computed from its start, rules and dates"


def _converted(component: Any, series: dict[str, bool], zone: ZoneInfo) -> Occurrence | None:
    try:
        return _occurrence(component, series, zone)
    except MemoryError:
        raise
    except Exception:  # a value the checks let through and the conversion cannot use
        raise props.refused(
            f"event {props.short_uid(props.uid_of(component))!r} cannot be read"
        ) from None


def _occurrence(component: Any, series: dict[str, bool], zone: ZoneInfo) -> Occurrence | None:
    if str(component.get("STATUS", "")).strip().upper() == "CANCELLED":
        return None
    start_value = component["DTSTART"].dt
    all_day = isinstance(start_value, date) and not isinstance(start_value, datetime)
    starts_at = _instant(start_value, zone)
    end = component.get("DTEND")
    ends_at = _instant(end.dt, zone) if end is not None else None
    if all_day and (ends_at is None or ends_at <= starts_at):
        ends_at = _instant(start_value + _ONE_DAY, zone)
    if ends_at is not None and ends_at < starts_at:
        ends_at = None
    uid = props.uid_of(component)
    key = ""
    if uid in series:
        original = component.get("RECURRENCE-ID")
        key = _key(original.dt if original is not None else start_value, zone, series[uid])
    return Occurrence(
        uid=uid,
        key=key,
        summary=props.line(component.get("SUMMARY"), props.SUMMARY_MAX) or "(no title)",
        description=props.block(component.get("DESCRIPTION"), props.DESCRIPTION_MAX),
        location=props.line(component.get("LOCATION"), props.DESCRIPTION_MAX),
        starts_at=starts_at,
        ends_at=ends_at,
        all_day=all_day,
    )


def _instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    """An ICS date or date-time as an aware UTC instant (module doc: Times)."""
    if not isinstance(value, datetime):
        return resolve_local(datetime.combine(value, time(0)), zone)
    if value.tzinfo is None:
        return resolve_local(value, zone)
    if isinstance(value.tzinfo, ZoneInfo):
        return resolve_local(value.replace(tzinfo=None), value.tzinfo)
    return value.astimezone(UTC)


def _key(original: date | datetime, zone: ZoneInfo, all_day_series: bool) -> str:
    """An instance's identity in its series (module doc, Identity). In an all-day series it
    is a date, however the override writes it: Outlook and Exchange write the original date
    of a moved all-day instance as a midnight date-time (``RECURRENCE-ID;TZID=...:...T000000``),
    whose wall-clock date is the instance's."""
    if not isinstance(original, datetime):
        return original.isoformat()
    if all_day_series:
        return original.date().isoformat()
    return _instant(original, zone).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_upcoming(starts_at: datetime, all_day: bool, zone: ZoneInfo, now: datetime) -> bool:
    """Timed: until it starts. All-day: until its first day ends (the next local midnight)."""
    if not all_day:
        return starts_at > now
    first_day = starts_at.astimezone(zone).date()
    return now < resolve_local(datetime.combine(first_day + _ONE_DAY, time(0)), zone)
