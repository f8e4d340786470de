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
  time in the user's zone. An all-day event (``VALUE=DATE``) starts at local midnight in the
  user's zone. Wall-clock times become instants through
  :func:`~personal_assistant.core.schedules.resolve_local` (the schedules' DST policy: a time
  in a spring-forward gap is the transition instant, a time in a fold is its first occurrence).
* **Identity.** An occurrence is ``(uid, key)``. ``key`` is ``""`` for a single event; for an
  instance of a recurring event it is the instance's original start (its ``RECURRENCE-ID``) in
  UTC, ``2026-03-16T09:00:00Z``, or the original date, ``2026-03-16``, for an all-day series.
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

A feed that is not iCalendar, or an event the parser cannot read, raises
:class:`~personal_assistant.errors.ValidationError` naming ``feed``.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events  # type: ignore[import-untyped]  # the package ships no type hints

from personal_assistant.core.schedules import resolve_local
from personal_assistant.errors import ValidationError

__all__ = [
    "ALL_DAY_REMINDER_TIME",
    "MAX_OCCURRENCES",
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
    cannot be read, or more than :data:`MAX_OCCURRENCES` occurrences in the window.
    """
    zone = ZoneInfo(timezone)
    calendar = _read_calendar(data)
    recurring = _recurring_uids(calendar)
    until = now + timedelta(days=horizon_days)
    # The library compares floating times as wall-clock times of the window's zone: give it
    # the user's zone, with a day of margin either side; the exact window is applied below.
    query_from = (now - _ONE_DAY).astimezone(zone)
    query_to = (until + _ONE_DAY).astimezone(zone)
    try:
        components = recurring_ical_events.of(calendar, keep_recurrence_attributes=False).between(
            query_from, query_to
        )
        found: dict[tuple[str, str], Occurrence] = {}
        for component in components:
            occurrence = _occurrence(component, recurring, zone)
            if occurrence is None or occurrence.starts_at > until:
                continue
            if not is_upcoming(occurrence.starts_at, occurrence.all_day, zone, now):
                continue
            found.setdefault((occurrence.uid, occurrence.key), occurrence)
    except ValidationError:
        raise
    except Exception as exc:  # hostile input: the parser's errors are of many types
        raise ValidationError(f"an event cannot be read: {_reason(exc)}", field="feed") from None
    if len(found) > MAX_OCCURRENCES:
        raise ValidationError(
            f"has {len(found)} occurrences in the next {horizon_days} days, more than "
            f"{MAX_OCCURRENCES}: subscribe with a shorter horizon",
            field="feed",
        )
    return sorted(found.values(), key=lambda o: (o.starts_at, o.uid, o.key))


def _read_calendar(data: bytes) -> icalendar.Calendar:
    if not data.strip():
        raise ValidationError("is empty, not an iCalendar (ICS) file", field="feed")
    text = data.decode("utf-8-sig", errors="replace")
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except Exception as exc:  # hostile input: the parser's errors are of many types
        raise ValidationError(
            f"is not an iCalendar (ICS) file: {_reason(exc)}", field="feed"
        ) from None
    if not isinstance(calendar, icalendar.Calendar) or calendar.name != "VCALENDAR":
        raise ValidationError("is not an iCalendar (ICS) file: no VCALENDAR", field="feed")
    for event in calendar.walk("VEVENT"):
        if "DTSTART" not in event:
            raise ValidationError(f"event {_uid(event)!r} has no start (DTSTART)", field="feed")
        for rule in _as_list(event.get("RRULE")):
            frequencies = rule.get("FREQ", []) if isinstance(rule, icalendar.vRecur) else []
            if any(str(f).upper() in _REFUSED_FREQUENCIES for f in frequencies):
                raise ValidationError(
                    f"event {_uid(event)!r} repeats every second or minute: not supported",
                    field="feed",
                )
    return calendar


def _recurring_uids(calendar: icalendar.Calendar) -> set[str]:
    """UIDs of series (a rule, extra dates or an override): their occurrences are keyed by
    their original start (module doc, Identity)."""
    return {
        _uid(event)
        for event in calendar.walk("VEVENT")
        if any(name in event for name in ("RRULE", "RDATE", "RECURRENCE-ID"))
    }


def _occurrence(component: Any, recurring: set[str], zone: ZoneInfo) -> Occurrence | None:
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
    if uid in recurring:
        original = component.get("RECURRENCE-ID")
        key = _key(original.dt if original is not None else start_value, zone)
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


def _key(original: date | datetime, zone: ZoneInfo) -> str:
    if not isinstance(original, datetime):
        return original.isoformat()
    return _instant(original, zone).strftime("%Y-%m-%dT%H:%M:%SZ")


def _uid(component: Any) -> str:
    uid = _line(component.get("UID"), 10 * UID_MAX)
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


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:159] + "…"


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
