"""The daily digest (pure): when it is due, which runs it covers, and what it says.

A user's digest is a wall-clock time in their zone (``users.digest_at``). It is due at each
daily occurrence of that time, with the schedules' DST policy
(:func:`~personal_assistant.core.wallclock.resolve_local`): a time inside a spring-forward gap
is the transition instant, a time inside a fall-back fold its first occurrence.

A digest written at ``end`` (a little after its time) covers the runs that finished in
``[start, end)``, where ``start`` is where the user's previous digest ended (:func:`window`), so
each run is in exactly one digest, across DST changes, changes of the digest time, and
downtime: a system down over several digest times writes one digest when it is back, covering
all of them. Without a recent previous digest (the first one, or the first after the digest was
off for days), ``start`` is the occurrence of the digest time on the local day before (23 or 25
hours earlier across a DST change).

A digest is unique per user, channel and local date (:func:`dedupe_key`): the date of the latest
occurrence at or before its ``end``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from personal_assistant.core.next_run import next_after
from personal_assistant.core.schedule_kinds import Daily
from personal_assistant.core.states import RunState
from personal_assistant.core.wallclock import resolve_local
from personal_assistant.errors import ValidationError
from personal_assistant.notifications.content import (
    BODY_LIMIT,
    TITLE_LIMIT,
    trim,
)
from personal_assistant.notifications.transports.base import Message

__all__ = [
    "MAX_LINES",
    "DigestRun",
    "DigestWindow",
    "check_time",
    "compose_digest",
    "dedupe_key",
    "earliest_since",
    "next_digest_at",
    "previous_occurrence",
    "sort_key",
    "window",
]

#: Runs listed in one digest at most; the others are counted ("and 12 more (pa runs)").
MAX_LINES = 50
#: Characters of one run's line at most (title and excerpt together).
LINE_LIMIT = 100

_ONE_DAY = timedelta(days=1)
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: A digest's sections in order, failures first: (state, heading, word in the summary).
_SECTIONS: tuple[tuple[RunState, str, str], ...] = (
    (RunState.FAILED, "Failed", "failed"),
    (RunState.SUCCEEDED, "Succeeded", "succeeded"),
    (RunState.SKIPPED, "Skipped (missed while the system was down)", "skipped"),
    (RunState.CANCELLED, "Cancelled", "cancelled"),
)
_RANK = {state: rank for rank, (state, _, _) in enumerate(_SECTIONS)}
_HEADINGS = {state: heading for state, heading, _ in _SECTIONS}


def check_time(value: object, field: str = "at") -> time:
    """A digest time: a naive time of day in whole seconds."""
    if not isinstance(value, time) or value.tzinfo is not None or value.microsecond:
        raise ValidationError("must be a time of day such as 20:00", field=field)
    return value.replace(fold=0)


def _occurrence(day: date, at: time, zone: ZoneInfo) -> datetime:
    return resolve_local(datetime.combine(day, at), zone)


def next_digest_at(at: time, zone: ZoneInfo, now: datetime) -> datetime:
    """The first occurrence of ``at`` in ``zone`` strictly after ``now`` (aware), in UTC."""
    fire = next_after(Daily(times=(check_time(at),), timezone=zone.key), now)
    assert fire is not None  # a daily schedule without bounds always fires again
    return fire


@dataclass(frozen=True)
class DigestWindow:
    """The runs a digest covers: those finished in ``[start, end)`` (UTC)."""

    start: datetime
    end: datetime
    #: The local date of the digest: its dedupe key.
    day: date
    #: The local date the window mostly covers: the "day" of "Your day" (the day before
    #: ``day`` for a morning digest).
    label: date
    #: True when the window is longer than a day (after downtime or a change of the digest
    #: time): the digest says since when.
    catch_up: bool


#: A window longer than this says "Since ..." (a day, a DST hour, and some slack).
_ONE_DAY_AT_MOST = timedelta(hours=26)


def previous_occurrence(at: time, zone: ZoneInfo, moment: datetime) -> datetime:
    """The last occurrence of ``at`` in ``zone`` strictly before ``moment``, in UTC."""
    day = moment.astimezone(zone).date()
    while _occurrence(day, at, zone) >= moment:  # at most twice, unless a zone skipped a day
        day -= _ONE_DAY
    return _occurrence(day, at, zone)


def earliest_since(at: time, zone: ZoneInfo, due: datetime) -> datetime:
    """A previous digest that ended before this is too old to continue from (:func:`window`)."""
    return previous_occurrence(at, zone, due) - _ONE_DAY


def window(
    at: time, zone: ZoneInfo, due: datetime, end: datetime, *, since: datetime | None = None
) -> DigestWindow:
    """The window of the digest due at ``due`` (an occurrence of ``at``), written at ``end``.

    ``since`` is the end of the user's previous digest, if any. The window starts there when
    that is no more than a day before the occurrence preceding ``due`` (on time, late, or after
    the digest time was changed), else at that preceding occurrence.
    """
    first = previous_occurrence(at, zone, due)
    start = first
    if since is not None and first - _ONE_DAY <= since < end:
        start = since
    latest = previous_occurrence(at, zone, end + timedelta(microseconds=1))
    return DigestWindow(
        start=start,
        end=end,
        day=max(latest, due).astimezone(zone).date(),
        label=(start + (end - start) / 2).astimezone(zone).date(),
        catch_up=end - start > _ONE_DAY_AT_MOST,
    )


def dedupe_key(day: date) -> str:
    """The outbox ``dedupe_key`` of the digest for local date ``day``: ``digest:2026-11-29``."""
    return f"digest:{day.isoformat()}"


@dataclass(frozen=True)
class DigestRun:
    """One finished run, as a digest lists it."""

    run_id: int
    task_id: int
    task_title: str
    state: str
    scheduled_for: datetime
    #: The run's result (succeeded) or error (failed, cancelled); only its start is shown.
    text: str | None


def sort_key(run: DigestRun) -> tuple[int, datetime, int]:
    """Failures first, then successes, skipped and cancelled runs; each by scheduled time."""
    return (_RANK.get(RunState(run.state), len(_SECTIONS)), run.scheduled_for, run.run_id)


def _day_text(day: date) -> str:
    return f"{_WEEKDAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _line(run: DigestRun, zone: ZoneInfo, win: DigestWindow) -> str:
    """``- 09:00 Title: excerpt``; the day too when it is not the digest's day."""
    local = run.scheduled_for.astimezone(zone)
    at = local.strftime("%H:%M")
    if win.catch_up:
        at = f"{_day_text(local.date())} {at}"
    elif local.date() != win.label:
        at = f"{_WEEKDAYS[local.weekday()]} {at}"
    text = " ".join((run.text or "").split())
    if run.state == RunState.SKIPPED:
        text = "not run"
    elif run.state == RunState.FAILED:
        text = text or "failed (no reason was recorded)"
    elif not text:
        text = "(no text)"
    return trim(f"- {at} {' '.join(run.task_title.split())}: {text}", LINE_LIMIT)


def compose_digest(
    display_name: str,
    win: DigestWindow,
    runs: Sequence[DigestRun],
    zone: ZoneInfo,
    *,
    counts: Mapping[str, int] | None = None,
) -> Message:
    """The digest of ``runs`` (the finished runs in ``win``), for the outbox row.

    ``counts`` are the numbers of runs per state in the whole window, when ``runs`` is only
    the first of them (in :func:`sort_key` order); by default they are counted from ``runs``.
    At most :data:`MAX_LINES` runs are listed, failures first, within ``BODY_LIMIT``
    characters; the rest are counted, with where to see them (``pa runs``).
    """
    if counts is None:
        counts = {}
        for run in runs:
            counts[run.state] = counts.get(run.state, 0) + 1
    total = sum(counts.values())
    failed = counts.get(RunState.FAILED, 0)
    skipped = counts.get(RunState.SKIPPED, 0)
    summary = _plural(total, "run") if total else "no runs"
    if failed:
        summary += f", {failed} failed"
    if skipped:
        summary += f", {skipped} skipped"
    if win.catch_up:
        since = win.start.astimezone(zone)
        period = f"since {_day_text(since.date())} {since:%H:%M}"
        title = f"Since {_day_text(since.date())}: {summary}"
    else:
        period = f"on {_day_text(win.label)}"
        title = f"Your day: {summary} — {_day_text(win.label)}"
    name = " ".join(display_name.split())
    if not total:
        return Message(trim(title, TITLE_LIMIT), f"{name}, none of your tasks ran {period}.")
    parts = [f"{counts[state]} {word}" for state, _, word in _SECTIONS if counts.get(state)]
    head = f"{name}, {_plural(total, 'run')} of your tasks finished {period} ({zone.key} time)"
    lines = [f"{head}: {', '.join(parts)}."]
    size = len(lines[0])
    reserve = len(f"\n\nand {total} more (pa runs)")
    section: str | None = None
    listed = 0
    for run in sorted(runs, key=sort_key)[:MAX_LINES]:
        block = []
        if run.state != section:
            block = ["", f"{_HEADINGS.get(RunState(run.state), run.state)}:"]
        block.append(_line(run, zone, win))
        grown = size + sum(len(part) + 1 for part in block)
        if grown + reserve > BODY_LIMIT:
            break
        lines.extend(block)
        section, size, listed = run.state, grown, listed + 1
    if listed < total:
        lines.extend(["", f"and {total - listed} more (pa runs)"])
    return Message(trim(title, TITLE_LIMIT), "\n".join(lines))
