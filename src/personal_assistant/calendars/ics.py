"""Calendar feeds, the pure part: iCalendar (ICS) bytes -> occurrences -> reminders.

No I/O; everything takes ``now`` (aware). :func:`parse_feed` reads a feed and returns its
upcoming occurrences; :func:`plan_sync` compares them with what is stored and says what to
create, update and remove; :func:`fire_at`, :func:`reminder_title` and
:func:`reminder_description` say when a reminder fires and what it says.

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
  :func:`~personal_assistant.core.schedules.resolve_local` (the schedules' DST policy: a time
  in a spring-forward gap is the transition instant, a time in a fold is its first occurrence).
* **Identity.** An occurrence is ``(uid, key)``. ``key`` is ``""`` for a single event; for an
  instance of a recurring event it is the instance's original start (its ``RECURRENCE-ID``) in
  UTC, ``2026-03-16T09:00:00Z``, or the original date, ``2026-03-16``, for an all-day series
  (also when an override writes it as a midnight date-time, as Outlook and Exchange do: its
  wall-clock date).
* **Window.** An occurrence is kept while it is *upcoming* and starts at most ``horizon_days``
  after ``now``. A timed occurrence is upcoming until it starts. An all-day occurrence is
  upcoming until its first day ends (local midnight): on the day, its reminder still fires.
* **Reminder time.** A timed occurrence: its start minus the lead. An all-day occurrence:
  09:00 local time on its first day; a lead of whole days (1440 minutes or more) moves it that
  many days earlier, still at 09:00 (a 15-minute lead before midnight would wake nobody up).
  A reminder time already past, for an occurrence still upcoming, fires at once (``now``).
* **Fingerprint.** A hash of what the reminder is made from (summary, description, location,
  start, end, all-day, lead, zone): an occurrence whose fingerprint is unchanged is not
  rewritten.

Refusals
--------
A feed that is not iCalendar, an event that cannot be read, a rule repeating every second or
minute or more than :data:`MAX_PER_DAY` times a day, or more than :data:`MAX_OCCURRENCES`
upcoming occurrences in the horizon raise :class:`~personal_assistant.errors.ValidationError`
naming ``feed``. The message says what is wrong in the feed's terms: the event's UID, the
property and the value as the feed wrote it (``event 'x': its start (DTSTART) 'garbage' is not
a date or a date-time``), never a library's or Python's own words, and it is one printable line
(:func:`~personal_assistant.safe_text.safe_text`). The events are checked before anything is
expanded, and the expansion is lazy, one series after the other: it stops as soon as the count
passes the cap, so a hostile feed costs about the cap's worth of work, not its whole horizon.

The cost of the expansion is bounded before it starts (issue 10):

* components nested more than :data:`MAX_DEPTH` deep are refused before the parser reads them;
* a rule with an ``INTERVAL`` below 1 (the expansion would loop forever) or a list of more than
  :data:`MAX_RULE_VALUES` values (``BYSETPOS=1,1,1,...``: the library scans each period once per
  value) is refused, and so is one matching no date (the 31st of February: the library walks it
  to the year 9999);
* the walk of every rule from its event's start to the end of the window is estimated
  (:mod:`~personal_assistant.calendars.recurrence_cost`, which also counts the walks the library
  makes for an override of a series) and the feed refused above :data:`MAX_EXPANSION_STEPS`;
* at most :data:`MAX_EXPANDED` occurrences are expanded around the window, upcoming or not.

What the estimate cannot see (rules the cost model lets through that still match nothing, a
huge number of events) is bounded by the limits of the process that parses a feed:
:mod:`personal_assistant.calendars.sandbox`.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events  # type: ignore[import-untyped]  # the package ships no type hints
from recurring_ical_events import errors as rie_errors

from personal_assistant.calendars import recurrence_cost as cost
from personal_assistant.core.schedules import resolve_local
from personal_assistant.errors import ValidationError
from personal_assistant.safe_text import safe_text

__all__ = [
    "ALL_DAY_REMINDER_TIME",
    "MAX_DEPTH",
    "MAX_EXPANDED",
    "MAX_EXPANSION_STEPS",
    "MAX_OCCURRENCES",
    "MAX_PER_DAY",
    "MAX_RULE_VALUES",
    "Change",
    "Occurrence",
    "Stored",
    "SyncPlan",
    "fingerprint",
    "fire_at",
    "is_upcoming",
    "parse_feed",
    "plan_sync",
    "reminder_at",
    "reminder_description",
    "reminder_title",
]

#: When an all-day occurrence's reminder fires, local time (see the module doc).
ALL_DAY_REMINDER_TIME = time(9, 0)
#: At most this many occurrences in a feed's horizon; more is refused (shorten the horizon).
MAX_OCCURRENCES = 2000
#: At most this many occurrences expanded around the window (the window has a day of margin
#: either side, and past occurrences in it are expanded but not counted as upcoming).
MAX_EXPANDED = 10 * MAX_OCCURRENCES
#: At most this much walking for a feed's rules (:mod:`.recurrence_cost` units,
#: about a day of a daily rule each: ~3 s of CPU for the whole budget).
MAX_EXPANSION_STEPS = 1_000_000
#: Components nest at most this deep (calendars nest three deep: calendar, event, alarm).
MAX_DEPTH = 10
#: A list in a rule holds at most this many values (a year has 366 days).
MAX_RULE_VALUES = 366
SUMMARY_MAX = 200
TITLE_MAX = 200
DESCRIPTION_MAX = 10_000
UID_MAX = 512
#: Rule frequencies no calendar uses for events people are reminded of, refused as a whole.
_REFUSED_FREQUENCIES = frozenset({"SECONDLY", "MINUTELY"})
_ONE_DAY = timedelta(days=1)
_MINUTES_PER_DAY = 1440


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


# --- parsing ----------------------------------------------------------------------------------


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
    _check_events(calendar)
    _check_x_wr_timezone(calendar)
    series = _series_all_day(calendar)
    until = now + timedelta(days=horizon_days)
    # The library compares floating times as wall-clock times of the window's zone: give it
    # the user's zone, with a day of margin either side; the exact window is applied below.
    query_from = (now - _ONE_DAY).astimezone(zone)
    query_to = (until + _ONE_DAY).astimezone(zone)
    _check_cost(calendar, _wall(query_to + _ONE_DAY))
    found: dict[tuple[str, str], Occurrence] = {}
    for expanded, component in enumerate(_expand(calendar, query_from, query_to), start=1):
        if expanded > MAX_EXPANDED:
            raise _refused(
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
            raise _refused(
                f"has more than {MAX_OCCURRENCES} occurrences in the next {horizon_days} days: "
                "subscribe with a shorter horizon"
            )
    return sorted(found.values(), key=lambda o: (o.starts_at, o.uid, o.key))


def _refused(message: str) -> ValidationError:
    return ValidationError(safe_text(message), field="feed")


def _read_calendar(data: bytes) -> icalendar.Calendar:
    if not data.strip():
        raise _refused("is empty, not an iCalendar (ICS) file")
    text = data.decode("utf-8-sig", errors="replace")
    _check_depth(text)
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except MemoryError:  # not the feed's syntax: the process's limit (calendar_sandbox)
        raise
    except Exception as exc:  # hostile input: the parser's errors are of many types
        raise _refused(_syntax_problem(exc)) from None
    if not isinstance(calendar, icalendar.Calendar) or calendar.name != "VCALENDAR":
        raise _refused("is not an iCalendar (ICS) file: no VCALENDAR")
    scale = safe_text(calendar.get("CALSCALE", "GREGORIAN"), _RAW_MAX)
    if scale.upper() != "GREGORIAN":
        raise _refused(
            f"uses the {scale!r} calendar (CALSCALE): only the Gregorian calendar is supported"
        )
    return calendar


_NESTING = re.compile(r"^(BEGIN|END)[;:]", re.IGNORECASE | re.MULTILINE)


def _check_depth(text: str) -> None:
    """Refuse components nested more than :data:`MAX_DEPTH` deep, before the parser spends
    seconds and hundreds of megabytes on them (250,000 levels: 4.5 s, 240 MB)."""
    depth = 0
    for line in _NESTING.finditer(text):
        if line.group(1).upper() == "END":
            depth = max(depth - 1, 0)
            continue
        depth += 1
        if depth > MAX_DEPTH:
            raise _refused(
                f"nests components (BEGIN:...) more than {MAX_DEPTH} deep: not an ordinary calendar"
            )


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


#: Properties an event has at most once, with the words for one and for several of them.
_SINGLE = {
    "UID": ("UID", "UIDs"),
    "DTSTART": ("start (DTSTART)", "starts (DTSTART)"),
    "DTEND": ("end (DTEND)", "ends (DTEND)"),
    "DURATION": ("duration (DURATION)", "durations (DURATION)"),
    "RECURRENCE-ID": ("original start (RECURRENCE-ID)", "original starts (RECURRENCE-ID)"),
}
_DATE_LISTS = {"RDATE": "extra dates (RDATE)", "EXDATE": "excluded dates (EXDATE)"}
_FREQUENCIES = frozenset({"SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
_RULE_PARTS = frozenset(
    {"FREQ", "UNTIL", "COUNT", "INTERVAL", "BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY",
     "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYMONTH", "BYSETPOS", "WKST", "RSCALE", "SKIP"}
)  # fmt: skip
#: At most this many occurrences a day from an event's rules (an hourly rule has 24).
MAX_PER_DAY = 24
_UNREADABLE = object()
#: How much of a value a message quotes.
_RAW_MAX = 60


def _check_events(calendar: icalendar.Calendar) -> None:
    """Refuse, before anything is expanded, the events the expansion could not read or would
    spend unbounded time on; each message names the event and the property."""
    for event in calendar.walk("VEVENT"):
        uid = _short_uid(_uid(event))
        for name, (_, several) in _SINGLE.items():
            value = event.get(name)
            if isinstance(value, list):
                raise _refused(f"event {uid!r} has {len(value)} {several} where one is expected")
        if "DTSTART" not in event:
            raise _refused(f"event {uid!r} has no start (DTSTART)")
        for name in ("DTSTART", "DTEND", "RECURRENCE-ID"):
            if name in event and not _is_moment(_read(event[name], "dt")):
                raise _refused(
                    f"event {uid!r}: its {_SINGLE[name][0]} {_raw(event[name])!r} "
                    "is not a date or a date-time"
                )
        if "DURATION" in event and not isinstance(_read(event["DURATION"], "dt"), timedelta):
            raise _refused(
                f"event {uid!r}: its duration (DURATION) {_raw(event['DURATION'])!r} "
                "is not a duration"
            )
        for name, words in _DATE_LISTS.items():
            for dates in _as_list(event.get(name)):
                if not _are_moments(dates):
                    raise _refused(
                        f"event {uid!r}: its {words} {_raw(dates)!r} are not dates or date-times"
                    )
        per_day = 0
        for rule in _as_list(event.get("RRULE")):
            per_day += _check_rule(uid, rule)
        if per_day > MAX_PER_DAY:
            raise _refused(
                f"event {uid!r} repeats more than {MAX_PER_DAY} times a day: not supported"
            )


def _check_rule(uid: str, rule: Any) -> int:
    """Refuse a rule that cannot be read or is not supported; its occurrences a day, at most.

    An empty rule (``RRULE:``, as some published holiday feeds have) repeats nothing: the
    library ignores it, and so do the checks."""
    raw = _raw(rule)
    if not raw:
        return 0
    unreadable = _refused(f"event {uid!r}: its rule (RRULE) {raw!r} cannot be read")
    if not isinstance(rule, icalendar.vRecur):
        raise unreadable
    frequencies = [str(f).upper() for f in rule.get("FREQ", [])]
    if len(frequencies) != 1 or frequencies[0] not in _FREQUENCIES:
        raise unreadable
    if any(str(part).upper() not in _RULE_PARTS for part in rule):
        raise unreadable
    intervals = rule.get("INTERVAL", [1])
    if len(intervals) != 1 or not isinstance(intervals[0], int):
        raise unreadable
    if intervals[0] < 1:  # 0 never moves on: the expansion would loop forever
        raise _refused(
            f"event {uid!r}: its rule (RRULE) {raw!r} has an interval (INTERVAL) of "
            f"{intervals[0]}: it must be 1 or more"
        )
    for part in rule:
        listed = rule[part]
        if isinstance(listed, list) and len(listed) > MAX_RULE_VALUES:
            raise _refused(
                f"event {uid!r}: its rule (RRULE) lists {len(listed):,} values in "
                f"{safe_text(str(part).upper(), _RAW_MAX)}: at most {MAX_RULE_VALUES} are allowed"
            )
    scales = {str(s).upper() for s in rule.get("RSCALE", [])} - {"GREGORIAN"}
    if scales:
        raise _refused(
            f"event {uid!r}: its rule uses the {', '.join(sorted(scales))} calendar (RSCALE): "
            "only the Gregorian calendar is supported"
        )
    if frequencies[0] in _REFUSED_FREQUENCIES:
        raise _refused(f"event {uid!r} repeats every second or minute: not supported")

    def values(part: str) -> int:
        return max(len(set(map(str, rule.get(part, [])))), 1)

    hours = 24 if frequencies[0] == "HOURLY" and "BYHOUR" not in rule else values("BYHOUR")
    return hours * values("BYMINUTE") * values("BYSECOND")


def _check_cost(calendar: icalendar.Calendar, window_end: datetime) -> None:
    """Refuse, before anything is expanded, a rule that matches no date and a feed whose
    rules would take more than :data:`MAX_EXPANSION_STEPS` to walk (module doc, Refusals).

    The library walks each series' rules from its start to the end of the window; for an
    override that has rules or dates of its own (``RRULE``, ``RDATE``, ``EXDATE``) it walks the
    series' rules to the override's original start too, and for one that moves this and the
    future instances (``RANGE=THISANDFUTURE``) it walks them as much further as they move.
    ``window_end`` is a naive wall-clock time."""
    cores: dict[str, list[tuple[Any, cost.Rule]]] = {}
    walks: dict[str, list[datetime]] = {}  # where the library walks each series' rules to
    for event in calendar.walk("VEVENT"):
        if "RECURRENCE-ID" not in event:
            rules = [r for r in _as_list(event.get("RRULE")) if _raw(r)]
            if rules:
                start = _moment(event, "DTSTART")
                cores.setdefault(_uid(event), []).extend((r, _cost_rule(r, start)) for r in rules)
            continue
        uid = _uid(event)
        ends = walks.setdefault(uid, [])
        original = _moment(event, "RECURRENCE-ID")
        if str(event["RECURRENCE-ID"].params.get("RANGE", "")).upper() == "THISANDFUTURE":
            moved = original - _moment(event, "DTSTART")
            ends.append(window_end + max(moved, timedelta(0)))
        if any(name in event for name in ("RRULE", "RDATE", "EXDATE")):
            ends.append(max(window_end, original + _ONE_DAY))
    searches = cost.Searches()
    total = 0
    for uid, rules in cores.items():
        for end in [window_end, *walks.get(uid, [])]:
            for raw, rule in rules:
                steps = cost.walk_cost(rule, min(end, _LAST_MOMENT), searches)
                if steps is None:
                    raise _refused(
                        f"event {_short_uid(uid)!r}: its rule (RRULE) {_raw(raw)!r} matches no "
                        "date: not supported"
                    )
                total += steps
                if total > MAX_EXPANSION_STEPS:
                    raise _refused(
                        f"event {_short_uid(uid)!r}: too many repetitions to compute between its "
                        f"start (DTSTART {rule.start.date().isoformat()}) and the end of the "
                        f"window (more than {MAX_EXPANSION_STEPS:,} steps for the feed): "
                        "not supported"
                    )


_LAST_MOMENT = datetime(9999, 12, 31)
_WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}


def _cost_rule(rule: Any, start: datetime) -> cost.Rule:
    """A rule (checked by :func:`_check_rule`) as :mod:`recurrence_cost` reads it."""
    until = [_wall(u) for u in rule.get("UNTIL", []) if isinstance(u, date)]
    return cost.Rule(
        frequency=str(rule["FREQ"][0]).upper(),  # type: ignore[arg-type]  # checked: a known one
        interval=int(rule.get("INTERVAL", [1])[0]),
        start=start,
        until=min(until) if until else None,
        bymonth=_numbers(rule, "BYMONTH"),
        byweekno=_numbers(rule, "BYWEEKNO"),
        byyearday=_numbers(rule, "BYYEARDAY"),
        bymonthday=_numbers(rule, "BYMONTHDAY"),
        byhour=_numbers(rule, "BYHOUR"),
        byweekday=frozenset(_weekday(day) for day in rule.get("BYDAY", [])) - {None},  # type: ignore[arg-type]
        wkst=next((w for w in map(_weekday, rule.get("WKST", [])) if w is not None), 0),
    )


def _numbers(rule: Any, part: str) -> frozenset[int]:
    numbers: set[int] = set()
    for value in rule.get(part, []):
        try:
            numbers.add(int(str(value)))
        except ValueError:  # not a number: the library refuses the rule when it expands it
            continue
    return frozenset(numbers)


def _weekday(value: object) -> int | None:
    """``MO``, ``-1FR``, ``4TH``: the weekday (0 is Monday), without the ordinal."""
    return _WEEKDAYS.get(str(value).strip().upper()[-2:])


def _moment(event: Any, name: str) -> datetime:
    """The event's ``name`` (checked: a date or a date-time) as a naive wall-clock time."""
    value = _read(event[name], "dt")
    return _wall(value if isinstance(value, date) else date.min)


def _wall(value: date | datetime) -> datetime:
    """A date or date-time as a naive wall-clock time (a date: midnight)."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time(0))
    return value.replace(tzinfo=None)


def _read(prop: object, attribute: str) -> object:
    """``prop.<attribute>``, or :data:`_UNREADABLE` if the parser could not read the value."""
    try:
        return getattr(prop, attribute)
    except Exception:  # a broken property raises on access (icalendar 7), of several types
        return _UNREADABLE


def _is_moment(value: object) -> bool:
    return isinstance(value, date)  # a datetime is a date too; a time is neither


def _are_moments(dates: object) -> bool:
    values = _read(dates, "dts")
    if not isinstance(values, list):
        return False
    for item in values:
        moment = _read(item, "dt")
        if isinstance(moment, tuple) and moment:  # a PERIOD: (start, end or duration)
            moment = moment[0]
        if not _is_moment(moment):
            return False
    return bool(values)


def _raw(prop: object) -> str:
    """The property's value as the feed wrote it, short and printable, for a message."""
    try:  # a value the parser could not read is kept as the text it was (a str)
        text = str(prop) if isinstance(prop, str) else prop.to_ical()  # type: ignore[attr-defined]
    except Exception:
        text = b""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return safe_text(text, _RAW_MAX)


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
        uid = _uid(event)
        is_override = "RECURRENCE-ID" in event
        first = _read(event["RECURRENCE-ID" if is_override else "DTSTART"], "dt")
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
        event = "an event" if culprit is None else f"event {_short_uid(culprit)!r}"
        raise _refused(f"{event}: {_expansion_problem(exc)}") from None
    for series in query.series:
        try:
            for occurrence in series.between(start, stop):
                yield occurrence.as_component(False)
        except MemoryError:
            raise
        except Exception as exc:  # idem
            uid = _line(getattr(series, "uid", ""), 10 * UID_MAX) or "?"
            raise _refused(f"event {_short_uid(uid)!r}: {_expansion_problem(exc)}") from None


def _culprit(calendar: icalendar.Calendar) -> str | None:
    """The UID of the first series the library cannot set up on its own (a failure's path
    only: each series is tried in a calendar of its own, with the calendar's zones)."""
    series: dict[str, list[Any]] = {}
    for event in calendar.walk("VEVENT"):
        series.setdefault(_uid(event), []).append(event)
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
        return f"its rule (RRULE) {safe_text(exc.rule, _RAW_MAX)!r} cannot be read"
    if isinstance(exc, rie_errors.PeriodEndBeforeStart):
        return "it ends before it starts"
    return "its occurrences cannot be computed from its start, rules and dates"


def _converted(component: Any, series: dict[str, bool], zone: ZoneInfo) -> Occurrence | None:
    try:
        return _occurrence(component, series, zone)
    except MemoryError:
        raise
    except Exception:  # a value the checks let through and the conversion cannot use
        raise _refused(f"event {_short_uid(_uid(component))!r} cannot be read") from None


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
    uid = _uid(component)
    key = ""
    if uid in series:
        original = component.get("RECURRENCE-ID")
        key = _key(original.dt if original is not None else start_value, zone, series[uid])
    return Occurrence(
        uid=uid,
        key=key,
        summary=_line(component.get("SUMMARY"), SUMMARY_MAX) or "(no title)",
        description=_block(component.get("DESCRIPTION"), DESCRIPTION_MAX),
        location=_line(component.get("LOCATION"), DESCRIPTION_MAX),
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


def _uid(component: Any) -> str:
    value = component.get("UID")
    if isinstance(value, list):  # several UIDs: refused by the checks, named by the first
        value = value[0] if value else None
    uid = _line(value, 10 * UID_MAX)
    if not uid:  # RFC 5545 requires one; derive a stable one from what identifies the event
        start = component.get("DTSTART")
        seed = f"{start.to_ical().decode() if start is not None else ''}|{component.get('SUMMARY')}"
        return "no-uid-" + hashlib.sha256(seed.encode()).hexdigest()[:32]
    if len(uid) > UID_MAX:
        return "sha256-" + hashlib.sha256(uid.encode()).hexdigest()
    return uid


def _as_list(value: object) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _short_uid(uid: str) -> str:
    """A uid as a message shows it."""
    return safe_text(uid, _RAW_MAX)


def _printable(text: str, keep: str = "") -> str:
    return "".join(ch for ch in text if ch in keep or unicodedata.category(ch) not in ("Cc", "Cs"))


def _line(value: object, limit: int) -> str:
    """One line of text: whitespace collapsed, control characters dropped, trimmed."""
    if value is None:
        return ""
    return _trim(_printable(" ".join(str(value).split())), limit)


def _block(value: object, limit: int) -> str:
    """Text that keeps its lines: control characters but newlines and tabs dropped, trimmed."""
    if value is None:
        return ""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    return _trim(_printable(text, keep="\n\t").strip(), limit)


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --- the window and the reminder time ---------------------------------------------------------


def is_upcoming(starts_at: datetime, all_day: bool, zone: ZoneInfo, now: datetime) -> bool:
    """Timed: until it starts. All-day: until its first day ends (the next local midnight)."""
    if not all_day:
        return starts_at > now
    first_day = starts_at.astimezone(zone).date()
    return now < resolve_local(datetime.combine(first_day + _ONE_DAY, time(0)), zone)


def reminder_at(occurrence: Occurrence, lead_minutes: int, zone: ZoneInfo) -> datetime:
    """When the reminder is due (may be past): see the module doc, Reminder time."""
    if not occurrence.all_day:
        return occurrence.starts_at - timedelta(minutes=lead_minutes)
    day = occurrence.starts_at.astimezone(zone).date() - timedelta(
        days=lead_minutes // _MINUTES_PER_DAY
    )
    return resolve_local(datetime.combine(day, ALL_DAY_REMINDER_TIME), zone)


def fire_at(occurrence: Occurrence, lead_minutes: int, zone: ZoneInfo, now: datetime) -> datetime:
    """The reminder's firing: its time, or ``now`` when that has passed."""
    return max(reminder_at(occurrence, lead_minutes, zone), now)


def fingerprint(occurrence: Occurrence, lead_minutes: int, timezone: str) -> str:
    """sha256 (hex) of what the reminder is made from."""
    material = [
        occurrence.summary,
        occurrence.description,
        occurrence.location,
        occurrence.starts_at.astimezone(UTC).isoformat(),
        None if occurrence.ends_at is None else occurrence.ends_at.astimezone(UTC).isoformat(),
        occurrence.all_day,
        lead_minutes,
        timezone,
    ]
    encoded = json.dumps(material, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()


# --- what the reminder says -------------------------------------------------------------------


def reminder_title(occurrence: Occurrence) -> str:
    return _trim(f"Reminder: {occurrence.summary}", TITLE_MAX)


def reminder_description(occurrence: Occurrence, timezone: str) -> str:
    """What, when (in the user's local time) and where; then the event's own description."""
    zone = ZoneInfo(timezone)
    text = f"{occurrence.summary}: {_when(occurrence, zone, timezone)}."
    if occurrence.location:
        text += f" Where: {occurrence.location}."
    if occurrence.description:
        text += f"\n\n{occurrence.description}"
    return _trim(text, DESCRIPTION_MAX)


def reminder_when(occurrence: Occurrence, timezone: str) -> str:
    """When, in the user's local time: ``Tuesday 3 March 2026, 10:00 to 11:00 (Europe/Paris)``.

    Made from the occurrence's times alone, never from its text."""
    return _when(occurrence, ZoneInfo(timezone), timezone)


def _day(moment: datetime | date) -> str:
    return f"{moment:%A} {moment.day} {moment:%B %Y}"


def _when(occurrence: Occurrence, zone: ZoneInfo, timezone: str) -> str:
    start = occurrence.starts_at.astimezone(zone)
    end = None if occurrence.ends_at is None else occurrence.ends_at.astimezone(zone)
    if occurrence.all_day:
        last = start.date() if end is None else max(start.date(), (end - _ONE_DAY).date())
        if last == start.date():
            return f"all day on {_day(start)}"
        return f"all day from {_day(start)} to {_day(last)}"
    if end is None or end == start:
        return f"{_day(start)} at {start:%H:%M} ({timezone})"
    if end.date() == start.date():
        return f"{_day(start)}, {start:%H:%M} to {end:%H:%M} ({timezone})"
    return f"from {_day(start)} {start:%H:%M} to {_day(end)} {end:%H:%M} ({timezone})"


# --- what a sync changes ----------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """A stored occurrence (a ``calendar_events`` row), as far as planning needs it."""

    id: int
    uid: str
    key: str
    starts_at: datetime
    all_day: bool
    fingerprint: str
    task_id: int | None


@dataclass(frozen=True)
class Change:
    """A stored occurrence whose event changed in the feed."""

    stored: Stored
    occurrence: Occurrence
    fingerprint: str

    @property
    def moved(self) -> bool:
        return self.stored.starts_at != self.occurrence.starts_at


@dataclass(frozen=True)
class SyncPlan:
    create: tuple[tuple[Occurrence, str], ...]  # (occurrence, fingerprint)
    update: tuple[Change, ...]
    remove: tuple[Stored, ...]
    unchanged: int


def plan_sync(
    stored: Iterable[Stored],
    occurrences: Iterable[Occurrence],
    *,
    lead_minutes: int,
    timezone: str,
    now: datetime,
) -> SyncPlan:
    """Compare the feed's upcoming occurrences with the stored ones.

    New occurrences are created; those whose fingerprint changed are updated; stored ones that
    are still upcoming but no longer in the feed (deleted, cancelled, moved out of the window)
    are removed. Stored occurrences that are past are left alone.
    """
    zone = ZoneInfo(timezone)
    known = {(s.uid, s.key): s for s in stored}
    create: list[tuple[Occurrence, str]] = []
    update: list[Change] = []
    unchanged = 0
    seen: set[tuple[str, str]] = set()
    for occurrence in occurrences:
        identity = (occurrence.uid, occurrence.key)
        seen.add(identity)
        print_ = fingerprint(occurrence, lead_minutes, timezone)
        previous = known.get(identity)
        if previous is None:
            create.append((occurrence, print_))
        elif previous.fingerprint != print_:
            update.append(Change(previous, occurrence, print_))
        else:
            unchanged += 1
    remove = tuple(
        s
        for identity, s in known.items()
        if identity not in seen and is_upcoming(s.starts_at, s.all_day, zone, now)
    )
    return SyncPlan(tuple(create), tuple(update), remove, unchanged)
