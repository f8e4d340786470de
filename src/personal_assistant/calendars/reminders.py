"""When a calendar occurrence's reminder fires, and what it says (pure).

* **Reminder time** (:func:`reminder_at`). A timed occurrence: its start minus the lead. An
  all-day occurrence: :data:`ALL_DAY_REMINDER_TIME` local time on its first day; a lead of whole
  days (1440 minutes or more) moves it that many days earlier, still at 09:00 (a 15-minute lead
  before midnight would wake nobody up). A reminder time already past, for an occurrence still
  upcoming, fires at once (``now``: :func:`fire_at`).
* **Fingerprint** (:func:`fingerprint`). A hash of what the reminder is made from (summary,
  description, location, start, end, all-day, lead, zone): an occurrence whose fingerprint is
  unchanged is not rewritten.
* **Text.** :func:`reminder_title`, :func:`reminder_description` and :func:`reminder_when`
  (when, in the user's local time, made from the occurrence's times alone).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from personal_assistant.calendars import properties as props
from personal_assistant.calendars.ics import Occurrence
from personal_assistant.core.wallclock import resolve_local

__all__ = [
    "ALL_DAY_REMINDER_TIME",
    "TITLE_MAX",
    "fingerprint",
    "fire_at",
    "reminder_at",
    "reminder_description",
    "reminder_title",
    "reminder_when",
]


#: When an all-day occurrence's reminder fires, local time (see the module doc).
ALL_DAY_REMINDER_TIME = time(9, 0)
#: At most this many characters of a reminder's title.
TITLE_MAX = 200
_ONE_DAY = timedelta(days=1)
_MINUTES_PER_DAY = 1440


def reminder_at(occurrence: Occurrence, lead_minutes: int, zone: ZoneInfo) -> datetime:
    """When the reminder is due (may be past): see the module doc."""
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


def reminder_title(occurrence: Occurrence) -> str:
    return props.trim(f"Reminder: {occurrence.summary}", TITLE_MAX)


def reminder_description(occurrence: Occurrence, timezone: str) -> str:
    """What, when (in the user's local time) and where; then the event's own description."""
    zone = ZoneInfo(timezone)
    text = f"{occurrence.summary}: {_when(occurrence, zone, timezone)}."
    if occurrence.location:
        text += f" Where: {occurrence.location}."
    if occurrence.description:
        text += f"\n\n{occurrence.description}"
    return props.trim(text, props.DESCRIPTION_MAX)


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
