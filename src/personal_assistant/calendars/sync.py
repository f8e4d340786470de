"""Calendar sync: fetch a feed, then bring its events and reminder tasks up to date.

:func:`sync_feed` is one step with a chosen ``now``:

1. Fetch the feed over HTTP(S) (:func:`fetch_feed`: ``FETCH_TIMEOUT`` per step and three
   times that in all, at most ``MAX_FEED_BYTES`` once decoded, counted while decoding, and
   redirects followed), through the outbound policy: every connection, redirects included, is
   checked on the address it connects to (:mod:`personal_assistant.outbound`). A failure says
   "could not fetch" and its kind, never what the server answered. The request is
   conditional (``If-None-Match``, ``If-Modified-Since``) except for the first sync of each
   ``FULL_READ_EVERY`` period: a ``304 Not Modified`` says the feed did not change, but the
   horizon moves with time, and only a full read finds the occurrences of recurring events
   that have come into it.
2. Parse it (:func:`personal_assistant.calendars.ics.parse_feed`), outside any transaction,
   in a child process under memory, CPU-time and wall-clock limits
   (:mod:`~personal_assistant.calendars.sandbox`): parsing is CPU-bound
   (seconds for a large or hostile feed), and neither the event loop that holds every AI run
   of the worker process nor the worker's memory is the feed's to spend. A body refused for
   its content (a child stopped by a limit included) is remembered (:func:`refusal_digest`,
   ``refused_digest``): while the same body comes back within the same ``FULL_READ_EVERY``
   period, it is not parsed again and its recorded error stands.
3. In one transaction, with the feed row locked (``FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE``
   serialises writers anyway): plan against the stored occurrences
   (:func:`~personal_assistant.calendars.ics.plan_sync`) and apply; planning and building the
   reminders' texts run in a worker thread too. A new occurrence gets a
   ``calendar_events`` row and a reminder task (``reminder``, a ``once`` schedule at the
   reminder time, the feed's channels), made exactly as ``AITaskManager.create_task`` makes
   one. A changed occurrence is rewritten, and so is its reminder if it has not run yet
   (active or paused; a paused one stays paused); if it ran and the event moved, a new
   reminder is made; a reminder its owner deleted is not made again. An upcoming occurrence
   gone from the feed (deleted, cancelled) is deleted with its reminder if that has not run. Past
   occurrences are left alone. The unique key ``(feed_id, uid, occurrence_key)`` makes a
   duplicate impossible whoever syncs.

A failure (HTTP error, timeout, too large, not iCalendar) changes no event: it is recorded in
``last_error``, and the next sync is ``interval_minutes`` later, as after a success. Error texts
never hold the URL's secrets (:func:`~.calendar_store.scrub`), and are made safe to store and
log (:func:`~personal_assistant.safe_text.safe_text`: one line, no control character, at most
``ERROR_MAX`` characters): a parser's message can quote a NUL byte, which PostgreSQL refuses.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from personal_assistant.calendars import ics as core
from personal_assistant.calendars import sandbox as calendar_sandbox
from personal_assistant.calendars import store
from personal_assistant.core.schedules import Once, schedule_to_dict
from personal_assistant.core.states import CatchUp, TaskStatus, TaskType
from personal_assistant.database.models import AITask, CalendarEvent, CalendarFeed
from personal_assistant.errors import NotFoundError, ValidationError
from personal_assistant.outbound import STRICT, Policy, RefusedDestination
from personal_assistant.outbound.decoding import BoundedDecoder, TooLarge, UnsupportedEncoding
from personal_assistant.outbound.http import guarded_client, tls_context
from personal_assistant.safe_text import ERROR_MAX, safe_text, without_bidi
from personal_assistant.tasks import inputs as check

log = logging.getLogger(__name__)

FETCH_TIMEOUT = 20.0
FETCH_DEADLINE_FACTOR = 3
MAX_FEED_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
#: At least one unconditional read per period (see the module doc, step 1).
FULL_READ_EVERY = timedelta(hours=6)
USER_AGENT = "personal-assistant-calendar-sync/1"
#: How every fetch failure begins; the rest is its kind, in our words (module doc, step 1).
CANNOT_FETCH = "could not fetch"


# --- fetching ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    """A feed's body (None: ``304 Not Modified``) and the validators to send next time."""

    body: bytes | None
    etag: str | None
    last_modified: str | None


Fetch = Callable[[str, str | None, str | None], Awaitable[Fetched]]


async def fetch_feed(
    url: str,
    etag: str | None = None,
    last_modified: str | None = None,
    *,
    timeout: float = FETCH_TIMEOUT,
    max_bytes: int = MAX_FEED_BYTES,
    policy: Policy = STRICT,
) -> Fetched:
    """GET ``url`` through ``policy`` (by default nothing internal; the settings'
    ``outbound_policy`` in the services); raises ValidationError naming ``url``:
    "could not fetch: " and one of: refused destination (:class:`RefusedDestination`), timeout,
    connection failed (a closed port, a filtered one, an unreachable network or a name that
    does not resolve: not told apart), HTTP and the status, too large (decoded), too many
    redirects, invalid response. Never the URL, and nothing the server sent.

    ``timeout`` bounds each step (connect, each read); the whole fetch, however slowly the
    server trickles, takes at most ``FETCH_DEADLINE_FACTOR`` times as long.
    """
    deadline = timeout * FETCH_DEADLINE_FACTOR
    try:
        async with asyncio.timeout(deadline):
            return await _get(
                url, etag, last_modified, timeout=timeout, max_bytes=max_bytes, policy=policy
            )
    except TimeoutError:
        raise _cannot(f"timeout (no complete answer within {deadline:g} s)") from None


def fetcher(policy: Policy) -> Fetch:
    """:func:`fetch_feed` under ``policy``: the ``fetch`` of :func:`sync_feed` in a process
    whose settings allow some internal networks (``OUTBOUND_ALLOW``)."""
    return functools.partial(fetch_feed, policy=policy)


def _cannot(kind: str) -> ValidationError:
    return ValidationError(f"{CANNOT_FETCH}: {kind}", field="url")


async def _get(
    url: str,
    etag: str | None,
    last_modified: str | None,
    *,
    timeout: float,
    max_bytes: int,
    policy: Policy,
) -> Fetched:
    headers = {
        "User-Agent": USER_AGENT,
        "Accept": "text/calendar, text/plain;q=0.9, */*;q=0.8",
        "Accept-Encoding": "gzip, deflate",
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    tls = await asyncio.to_thread(tls_context)  # built once per process, never on the loop
    try:
        async with (
            guarded_client(policy, timeout=timeout, max_redirects=MAX_REDIRECTS, tls=tls) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            if response.status_code == 304:
                return Fetched(None, etag, last_modified)
            if response.status_code >= 300:
                raise _cannot(f"HTTP {response.status_code}{_phrase(response.status_code)}")
            body = await _read_capped(response, max_bytes)
            return Fetched(
                body,
                _validator(response.headers.get("etag"), 256),
                _validator(response.headers.get("last-modified"), 64),
            )
    except RefusedDestination as refused:
        raise RefusedDestination(
            refused.reason, message=f"{CANNOT_FETCH}: refused destination (not a public address)"
        ) from None
    except httpx.TimeoutException:
        raise _cannot(f"timeout (no answer within {timeout:g} s)") from None
    except httpx.TooManyRedirects:
        raise _cannot(f"too many redirects (more than {MAX_REDIRECTS})") from None
    except httpx.ConnectError:
        raise _cannot("connection failed") from None
    except (httpx.HTTPError, httpx.InvalidURL):  # protocol errors, unsupported redirects...
        raise _cannot("invalid response") from None


def _phrase(status: int) -> str:
    """The standard reason phrase of ``status`` (the server's own can say anything)."""
    try:
        return f" {HTTPStatus(status).phrase}"
    except ValueError:
        return ""


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The body, decoded by us from the raw bytes with every layer bounded (a gzip bomb stops
    at ``max_bytes``, :mod:`personal_assistant.outbound.decoding`)."""
    too_large = _cannot(f"too large (more than {max_bytes:,} bytes)")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    try:
        decoder = BoundedDecoder(response.headers.get("content-encoding", ""), max_bytes)
        chunks: list[bytes] = []
        received = 0
        async for raw in response.aiter_raw():
            received += len(raw)
            if received > max_bytes:
                raise too_large
            chunks.append(decoder.feed(raw))
    except TooLarge:
        raise too_large from None
    except UnsupportedEncoding:
        raise _cannot("invalid response") from None
    return b"".join(chunks)


def _validator(value: str | None, limit: int) -> str | None:
    return value if value and len(value) <= limit else None


def conditional(last_synced_at: datetime | None, now: datetime) -> bool:
    """Send the validators? Not for the first sync of a ``FULL_READ_EVERY`` period (pure)."""
    if last_synced_at is None:
        return False
    return _period(last_synced_at) == _period(now)


def _period(moment: datetime) -> int:
    return int(moment.timestamp() // FULL_READ_EVERY.total_seconds())


def refusal_digest(body: bytes, *, timezone: str, horizon_days: int, now: datetime) -> str:
    """sha256 (hex) of a fetched body and of what its refusal depends on (pure).

    The owner's zone, the horizon and the ``FULL_READ_EVERY`` period of ``now``: the same body
    refused in the same period would be refused again for the same reason; in the next period
    it is read again, because the horizon moved (a feed over the cap can come under it).
    """
    digest = hashlib.sha256(f"{_period(now)}|{timezone}|{horizon_days}|".encode())
    digest.update(body)
    return digest.hexdigest()


# --- syncing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncReport:
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
    return SyncReport(feed.id, feed.name, error=error, next_sync_at=next_sync)


async def _apply(
    conn: AsyncConnection,
    feed: store.Feed,
    timezone: str,
    occurrences: Sequence[core.Occurrence],
    now: datetime,
    max_retries: int,
) -> core.SyncPlan:
    """Plan against the stored occurrences and apply the plan (module doc, step 3)."""
    rows = await conn.execute(
        select(
            CalendarEvent.id,
            CalendarEvent.uid,
            CalendarEvent.occurrence_key,
            CalendarEvent.starts_at,
            CalendarEvent.all_day,
            CalendarEvent.fingerprint,
            CalendarEvent.task_id,
        ).where(CalendarEvent.feed_id == feed.id)
    )
    stored = [core.Stored(*row) for row in rows]
    plan = await asyncio.to_thread(
        core.plan_sync,
        stored,
        occurrences,
        lead_minutes=feed.lead_minutes,
        timezone=timezone,
        now=now,
    )
    reminders = _Reminders(feed, timezone, now, max_retries)
    # The reminders' texts are checked character by character: up to 2,000 occurrences with
    # descriptions of 10,000 characters are seconds of CPU, done in a thread too.
    await asyncio.to_thread(
        reminders.prepare, [o for o, _ in plan.create] + [c.occurrence for c in plan.update]
    )

    if plan.remove:
        await conn.execute(
            delete(CalendarEvent).where(CalendarEvent.id.in_([s.id for s in plan.remove]))
        )
        await store.delete_unrun_tasks(
            conn, [s.task_id for s in plan.remove if s.task_id is not None]
        )

    if plan.update:
        task_ids = [c.stored.task_id for c in plan.update if c.stored.task_id is not None]
        unrun = await store.unrun_tasks(conn, task_ids)
        rewritten = [c for c in plan.update if c.stored.task_id in unrun]
        if rewritten:
            await conn.execute(
                update(AITask)
                .where(AITask.id == bindparam("t_id"))
                .values({name: bindparam(f"t_{name}") for name in (*_REWRITTEN, "updated_at")})
                .execution_options(synchronize_session=False),
                [
                    {"t_id": c.stored.task_id, "t_updated_at": now}
                    | {f"t_{k}": v for k, v in reminders.fields(c.occurrence).items()}
                    for c in rewritten
                ],
            )
        # A reminder that already ran, for an event that moved since: remind again.
        renewed = [
            c
            for c in plan.update
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
                for c in plan.update
            ],
        )

    if plan.create:
        task_ids = await reminders.insert(conn, [occurrence for occurrence, _ in plan.create])
        await conn.execute(
            insert(CalendarEvent),
            [
                {"feed_id": feed.id, "uid": o.uid, "occurrence_key": o.key, "task_id": task_id}
                | _event_fields(o, print_, now)
                for (o, print_), task_id in zip(plan.create, task_ids, strict=True)
            ],
        )
    return plan


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
#: The task columns a changed occurrence rewrites (``notification_channels`` stay as made).
_REWRITTEN = ("title", "description", "ai_context", "schedule", "next_run_at")


def _event_fields(occurrence: core.Occurrence, print_: str, now: datetime) -> dict[str, Any]:
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


#: Characters of an event's place and notes kept in its reminder's ``ai_context`` (the event's
#: row keeps them whole): the context stays well under ``CONTEXT_MAX_BYTES``.
LOCATION_KEPT = 500
NOTES_KEPT = 4000


def reminder_instruction(feed_name: str, when: str) -> str:
    """A reminder's instruction: the subscription's, with nothing of the event's text."""
    return (
        f'Remind me of an event from my calendar "{feed_name}": {when}. '
        "Its title, place and notes are in the calendar event data."
    )


def _kept(text: str, limit: int) -> str:
    text = without_bidi(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class _Reminders:
    """The reminder task of an occurrence, made as ``AITaskManager.create_task`` makes one.

    Whoever can edit a feed writes its events' text, not the subscriber's instructions: the
    task's instruction (``description``) is :func:`reminder_instruction`, made from the
    subscription and the event's times; the event's text (summary, place, notes, uid) goes to
    ``ai_context["calendar"]``, which the prompt quotes as untrusted data
    (:mod:`personal_assistant.agents.prompt`). The title is ``Reminder: <summary>``, for the
    lists and the notification; bidi controls are dropped from the event's text (free text
    refuses them, ``task_inputs.text``).
    """

    def __init__(self, feed: store.Feed, timezone: str, now: datetime, max_retries: int) -> None:
        self.feed = feed
        self.timezone = timezone
        self.zone = ZoneInfo(timezone)
        self.now = now
        self.max_retries = check.max_retries(max_retries)
        self._prepared: dict[tuple[str, str], dict[str, Any]] = {}

    def prepare(self, occurrences: Sequence[core.Occurrence]) -> None:
        """Compute the :meth:`fields` of ``occurrences`` now (CPU-bound: call it in a thread)."""
        for occurrence in occurrences:
            self._prepared[(occurrence.uid, occurrence.key)] = self._fields(occurrence)

    def fields(self, occurrence: core.Occurrence) -> dict[str, Any]:
        """The columns that follow from the occurrence (:data:`_REWRITTEN`)."""
        prepared = self._prepared.get((occurrence.uid, occurrence.key))
        return prepared if prepared is not None else self._fields(occurrence)

    def _fields(self, occurrence: core.Occurrence) -> dict[str, Any]:
        fire = core.fire_at(occurrence, self.feed.lead_minutes, self.zone, self.now)
        when = core.reminder_when(occurrence, self.timezone)
        ends = occurrence.ends_at
        event = {
            "feed": self.feed.name,
            "uid": _kept(occurrence.uid, core.UID_MAX),
            "starts_at": occurrence.starts_at.isoformat(),
            "ends_at": None if ends is None else ends.isoformat(),
            "all_day": occurrence.all_day,
            "when": when,
            "summary": _kept(occurrence.summary, core.SUMMARY_MAX),
            "location": _kept(occurrence.location, LOCATION_KEPT),
            "description": _kept(occurrence.description, NOTES_KEPT),
        }
        title = without_bidi(core.reminder_title(occurrence))
        return {
            "title": check.text(title, "title", max_len=check.TITLE_MAX),
            "description": check.text(
                reminder_instruction(self.feed.name, when),
                "description",
                max_len=check.DESCRIPTION_MAX,
                required=False,
                multiline=True,
            ),
            "ai_context": check.ai_context({"calendar": event}),
            "schedule": schedule_to_dict(Once(at=fire, timezone=self.timezone)),
            "next_run_at": fire,
        }

    def row(self, occurrence: core.Occurrence) -> dict[str, Any]:
        return self.fields(occurrence) | {
            "user_id": self.feed.user_id,
            "task_type": TaskType.REMINDER.value,
            "schedule_kind": "once",
            "timezone": self.timezone,
            "status": TaskStatus.ACTIVE,
            "notification_channels": list(self.feed.channels),
            "catch_up": CatchUp.ONCE.value,
            "max_retries": self.max_retries,
            "consecutive_failures": 0,
            "created_at": self.now,
            "updated_at": self.now,
        }

    async def insert(
        self, conn: AsyncConnection, occurrences: Sequence[core.Occurrence]
    ) -> list[int]:
        """Insert one task per occurrence; their ids, in the same order."""
        if not occurrences:
            return []
        result = await conn.execute(
            insert(AITask).returning(AITask.id, sort_by_parameter_order=True),
            [self.row(o) for o in occurrences],
        )
        return [int(task_id) for task_id in result.scalars()]
