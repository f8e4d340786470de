"""What a sync changes: a feed's upcoming occurrences compared with the stored ones (pure).

:func:`plan_sync` says which occurrences to create, which to update (their fingerprint,
:func:`~personal_assistant.calendars.reminders.fingerprint`, changed) and which stored ones to
remove; past ones are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from personal_assistant.calendars.ics import Occurrence, is_upcoming
from personal_assistant.calendars.reminders import fingerprint

__all__ = ["Change", "Stored", "SyncPlan", "plan_sync"]


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
