"""Calendar sync: fetch a feed, then bring its events and reminder tasks up to date.

:func:`sync_feed` is one step with a chosen ``now``:

1. Fetch the feed (:mod:`~personal_assistant.calendars.fetch`: bounded in time and size,
   through the outbound policy; a failure says "could not fetch" and its kind, never what the
   server answered). The request is conditional except for the first sync of each
   ``FULL_READ_EVERY`` period (:mod:`~personal_assistant.calendars.periods`): a
   ``304 Not Modified`` says the feed did not change, but the horizon moves with time, and only
   a full read finds the occurrences of recurring events that have come into it.
2. Parse it (:func:`personal_assistant.calendars.ics.parse_feed`), outside any transaction,
   in a child process under memory, CPU-time and wall-clock limits
   (:mod:`~personal_assistant.calendars.sandbox`): parsing is CPU-bound
   (seconds for a large or hostile feed), and neither the event loop that holds every AI run
   of the worker process nor the worker's memory is the feed's to spend. A body refused for
   its content (a child stopped by a limit included) is remembered
   (:func:`~personal_assistant.calendars.periods.refusal_digest`, ``refused_digest``): while
   the same body comes back within the same ``FULL_READ_EVERY`` period, it is not parsed again
   and its recorded error stands.
3. In one transaction, with the feed row locked (``FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE``
   serialises writers anyway): plan against the stored occurrences
   (:func:`~personal_assistant.calendars.plan.plan_sync`) and apply; planning and building the
   reminders' texts run in a worker thread too. A new occurrence gets a
   ``calendar_events`` row and a reminder task
   (:mod:`~personal_assistant.calendars.reminder_tasks`). A changed occurrence is rewritten,
   and so is its reminder if it has not run yet
   (active or paused; a paused one stays paused); if it ran and the event moved, a new
   reminder is made; a reminder its owner deleted is not made again. An upcoming occurrence
   gone from the feed (deleted, cancelled) is deleted with its reminder if that has not run. Past
   occurrences are left alone. The unique key ``(feed_id, uid, occurrence_key)`` makes a
   duplicate impossible whoever syncs.

A failure (HTTP error, timeout, too large, not iCalendar) changes no event: it is recorded in
``last_error``, and the next sync is ``interval_minutes`` later, as after a success. Error texts
never hold the URL's secrets (:func:`~personal_assistant.calendars.store.scrub`), and are made
safe to store and log (:func:`~personal_assistant.safe_text.safe_text`: one line, no control
character, at most ``ERROR_MAX`` characters): a parser's message can quote a NUL byte, which
PostgreSQL refuses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from personal_assistant.calendars import sandbox as calendar_sandbox
from personal_assistant.calendars import store
from personal_assistant.calendars.fetch import Fetch, fetch_feed
from personal_assistant.calendars.ics import Occurrence
from personal_assistant.calendars.periods import conditional, refusal_digest
from personal_assistant.calendars.plan import Change, Stored, SyncPlan, plan_sync
from personal_assistant.calendars.reminder_tasks import REWRITTEN, ReminderTasks
from personal_assistant.database.models import AITask, CalendarEvent, CalendarFeed
from personal_assistant.errors import NotFoundError, ValidationError
from personal_assistant.metrics import record as metrics
from personal_assistant.safe_text import ERROR_MAX, safe_text

__all__ = ["SyncReport", "error_text", "sync_feed"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncReport:
    """What one sync of a feed did, or the error it recorded, and when the next one is due."""

    feed_id: int
    name: str
    created: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    not_modified: bool = False
    error: str | None = None
    next_sync_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["next_sync_at"] = None if self.next_sync_at is None else self.next_sync_at.isoformat()
        return data


async def sync_feed(
    engine: AsyncEngine,
    feed_id: int,
    now: datetime,
    *,
    max_retries: int = 3,
    fetch: Fetch | None = None,
    parse_limits: calendar_sandbox.Limits = calendar_sandbox.DEFAULT_LIMITS,
) -> SyncReport:
    """Fetch feed ``feed_id`` and bring its events and reminders up to date (module doc).

    ``parse_limits``: what reading the feed may use (the settings' ``CALENDAR_PARSE_*``).

    Raises NotFoundError if there is no such feed; any failure of the feed itself is recorded
    and returned in ``SyncReport.error``.
    """
    async with engine.connect() as conn:
        feed = await store.by_id(conn, feed_id)
        if feed is None:
            raise NotFoundError(f"calendar {feed_id} not found", field="feed_id")
        timezone = await store.owner_timezone(conn, feed.user_id)
    send_validators = conditional(feed.last_synced_at, now)
    etag, modified = (feed.etag, feed.last_modified) if send_validators else (None, None)
    try:
        fetched = await (fetch or fetch_feed)(feed.url, etag, modified)
    except ValidationError as err:
        return await _record_failure(engine, feed, now, str(err))
    occurrences = None
    if fetched.body is not None:
        digest = await asyncio.to_thread(
            refusal_digest,
            fetched.body,
            timezone=timezone,
            horizon_days=feed.horizon_days,
            now=now,
        )
        if feed.last_error is not None and feed.refused_digest == digest:
            return await _still_refused(engine, feed, now)
        try:
            occurrences = await calendar_sandbox.parse_feed(
                fetched.body,
                timezone=timezone,
                now=now,
                horizon_days=feed.horizon_days,
                limits=parse_limits,
            )
        except ValidationError as err:
            return await _record_failure(engine, feed, now, str(err), refused=digest)
        except Exception as exc:  # a defect (ours or a library's), not the feed's: recorded
            log.error(
                "event=calendar_parse_crashed feed_id=%s error=%s",
                feed_id,
                safe_text(f"{type(exc).__name__}: {store.scrub(str(exc), feed.url)}"),
            )
            return await _record_failure(
                engine, feed, now, "feed: cannot be read: an unexpected error (see the worker log)"
            )
    next_sync = now + timedelta(minutes=feed.interval_minutes)
    async with engine.begin() as conn:
        locked = await store.by_id(conn, feed_id, lock=True)
        if locked is None:
            raise NotFoundError(f"calendar {feed_id} was removed", field="feed_id")
        plan = None
        if occurrences is not None:
            plan = await _apply(conn, locked, timezone, occurrences, now, max_retries)
        await conn.execute(
            update(CalendarFeed)
            .where(CalendarFeed.id == feed_id)
            .values(
                last_error=None,
                refused_digest=None,
                last_synced_at=now,
                next_sync_at=next_sync,
                **(
                    {"etag": fetched.etag, "last_modified": fetched.last_modified}
                    if fetched.body is not None
                    else {}
                ),
            )
        )
    metrics.calendar_sync("synced")
    report = SyncReport(
        feed_id,
        feed.name,
        created=0 if plan is None else len(plan.create),
        updated=0 if plan is None else len(plan.update),
        removed=0 if plan is None else len(plan.remove),
        unchanged=0 if plan is None else plan.unchanged,
        not_modified=plan is None,
        next_sync_at=next_sync,
    )
    log.info(
        "event=calendar_synced feed_id=%s created=%s updated=%s removed=%s unchanged=%s "
        "not_modified=%s",
        feed_id,
        report.created,
        report.updated,
        report.removed,
        report.unchanged,
        report.not_modified,
    )
    return report


def error_text(message: str, url: str) -> str:
    """An error as stored, logged and shown: the URL's secrets masked, then made safe (one
    line, no control character, at most ``ERROR_MAX`` characters)."""
    return safe_text(store.scrub(message, url), ERROR_MAX)


async def _record_failure(
    engine: AsyncEngine,
    feed: store.Feed,
    now: datetime,
    message: str,
    *,
    refused: str | None = None,
) -> SyncReport:
    """Record a failed sync; ``refused``: the digest of a body refused for its content."""
    error = error_text(message, feed.url)
    next_sync = now + timedelta(minutes=feed.interval_minutes)
    async with engine.begin() as conn:
        await conn.execute(
            update(CalendarFeed)
            .where(CalendarFeed.id == feed.id)
            .values(last_error=error, refused_digest=refused, next_sync_at=next_sync)
        )
    log.info("event=calendar_sync_failed feed_id=%s error=%r", feed.id, error)
    metrics.calendar_sync("failed" if refused is None else "refused")
    return SyncReport(feed.id, feed.name, error=error, next_sync_at=next_sync)


async def _still_refused(engine: AsyncEngine, feed: store.Feed, now: datetime) -> SyncReport:
    """The body refused last time came back unchanged: its error stands, nothing is parsed."""
    error = error_text(feed.last_error or "", feed.url)
    next_sync = now + timedelta(minutes=feed.interval_minutes)
    async with engine.begin() as conn:
        await conn.execute(
            update(CalendarFeed).where(CalendarFeed.id == feed.id).values(next_sync_at=next_sync)
        )
    log.info("event=calendar_sync_still_refused feed_id=%s", feed.id)
    metrics.calendar_sync("refused")
    return SyncReport(feed.id, feed.name, error=error, next_sync_at=next_sync)


async def _apply(
    conn: AsyncConnection,
    feed: store.Feed,
    timezone: str,
    occurrences: Sequence[Occurrence],
    now: datetime,
    max_retries: int,
) -> SyncPlan:
    """Plan against the stored occurrences and apply the plan (module doc, step 3)."""
    plan = await asyncio.to_thread(
        plan_sync,
        await _stored(conn, feed.id),
        occurrences,
        lead_minutes=feed.lead_minutes,
        timezone=timezone,
        now=now,
    )
    reminders = ReminderTasks(feed, timezone, now, max_retries)
    # The reminders' texts are checked character by character: up to 2,000 occurrences with
    # descriptions of 10,000 characters are seconds of CPU, done in a thread too.
    await asyncio.to_thread(
        reminders.prepare, [o for o, _ in plan.create] + [c.occurrence for c in plan.update]
    )
    await _remove(conn, plan.remove)
    await _update(conn, plan.update, reminders, now)
    await _create(conn, feed.id, plan.create, reminders, now)
    return plan


async def _stored(conn: AsyncConnection, feed_id: int) -> list[Stored]:
    """The feed's stored occurrences, as far as planning needs them."""
    rows = await conn.execute(
        select(
            CalendarEvent.id,
            CalendarEvent.uid,
            CalendarEvent.occurrence_key,
            CalendarEvent.starts_at,
            CalendarEvent.all_day,
            CalendarEvent.fingerprint,
            CalendarEvent.task_id,
        ).where(CalendarEvent.feed_id == feed_id)
    )
    return [Stored(*row) for row in rows]


async def _remove(conn: AsyncConnection, removed: Sequence[Stored]) -> None:
    """Delete the occurrences gone from the feed, with their reminders that have not run."""
    if not removed:
        return
    await conn.execute(delete(CalendarEvent).where(CalendarEvent.id.in_([s.id for s in removed])))
    await store.delete_unrun_tasks(conn, [s.task_id for s in removed if s.task_id is not None])


async def _update(
    conn: AsyncConnection, changes: Sequence[Change], reminders: ReminderTasks, now: datetime
) -> None:
    """Rewrite the changed occurrences, and their reminders: rewritten if they have not run,
    made again if they ran and the event moved."""
    if not changes:
        return
    task_ids = [c.stored.task_id for c in changes if c.stored.task_id is not None]
    unrun = await store.unrun_tasks(conn, task_ids)
    rewritten = [c for c in changes if c.stored.task_id in unrun]
    await _rewrite_reminders(conn, rewritten, reminders, now)
    # A reminder that already ran, for an event that moved since: remind again.
    renewed = [
        c
        for c in changes
        if c.stored.task_id is not None and c.stored.task_id not in unrun and c.moved
    ]
    new_ids = await reminders.insert(conn, [c.occurrence for c in renewed])
    new_task = {c.stored.id: t for c, t in zip(renewed, new_ids, strict=True)}
    await conn.execute(
        update(CalendarEvent)
        .where(CalendarEvent.id == bindparam("e_id"))
        .values({name: bindparam(f"e_{name}") for name in (*_EVENT_FIELDS, "task_id")})
        .execution_options(synchronize_session=False),
        [
            {"e_id": c.stored.id, "e_task_id": new_task.get(c.stored.id, c.stored.task_id)}
            | {f"e_{k}": v for k, v in _event_fields(c.occurrence, c.fingerprint, now).items()}
            for c in changes
        ],
    )


async def _rewrite_reminders(
    conn: AsyncConnection, rewritten: Sequence[Change], reminders: ReminderTasks, now: datetime
) -> None:
    """Rewrite the reminders (not run yet) of changed occurrences (:data:`REWRITTEN`)."""
    if not rewritten:
        return
    await conn.execute(
        update(AITask)
        .where(AITask.id == bindparam("t_id"))
        .values({name: bindparam(f"t_{name}") for name in (*REWRITTEN, "updated_at")})
        .execution_options(synchronize_session=False),
        [
            {"t_id": c.stored.task_id, "t_updated_at": now}
            | {f"t_{k}": v for k, v in reminders.fields(c.occurrence).items()}
            for c in rewritten
        ],
    )


async def _create(
    conn: AsyncConnection,
    feed_id: int,
    created: Sequence[tuple[Occurrence, str]],
    reminders: ReminderTasks,
    now: datetime,
) -> None:
    """Store the new occurrences, each with its new reminder."""
    if not created:
        return
    task_ids = await reminders.insert(conn, [occurrence for occurrence, _ in created])
    await conn.execute(
        insert(CalendarEvent),
        [
            {"feed_id": feed_id, "uid": o.uid, "occurrence_key": o.key, "task_id": task_id}
            | _event_fields(o, print_, now)
            for (o, print_), task_id in zip(created, task_ids, strict=True)
        ],
    )


_EVENT_FIELDS = (
    "summary",
    "description",
    "location",
    "starts_at",
    "ends_at",
    "all_day",
    "fingerprint",
    "updated_at",
)


def _event_fields(occurrence: Occurrence, print_: str, now: datetime) -> dict[str, Any]:
    return {
        "summary": occurrence.summary,
        "description": occurrence.description,
        "location": occurrence.location,
        "starts_at": occurrence.starts_at,
        "ends_at": occurrence.ends_at,
        "all_day": occurrence.all_day,
        "fingerprint": print_,
        "updated_at": now,
    }
