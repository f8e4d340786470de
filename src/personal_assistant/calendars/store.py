"""Calendar feeds: what a subscription may be (validation, URL masking) and the SQL on feeds.

A feed URL may carry a secret (private calendar links do: a token in the path or the query,
or a password): :func:`mask_feed_url` is the only form in which one is printed, logged or put
in a ``repr`` or an error, and :func:`scrub` removes its secrets from any other text.

The sweep (:func:`due_feeds`) claims due feeds with ``FOR UPDATE SKIP LOCKED`` and leases
them (``next_sync_at`` moved ``SYNC_LEASE`` ahead) in the same transaction, so two sweeps never
hand out the same feed; the sync sets ``next_sync_at`` for real when it ends. A feed whose
sync died is claimed again when its lease is over.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from personal_assistant import redaction
from personal_assistant.core.states import FeedStatus, TaskStatus
from personal_assistant.database.leases import lease_due
from personal_assistant.database.models import AITask, CalendarEvent, CalendarFeed, TaskRun, User
from personal_assistant.errors import ConflictError, NotFoundError, ValidationError
from personal_assistant.notifications.channel_store import check_task_channels
from personal_assistant.notifications.channels import slug
from personal_assistant.tasks import inputs as check

NAME_MAX = 48
URL_MAX = 2048
LEAD_MAX = 10_080  # a week, in minutes
HORIZON_MAX = 366
INTERVAL_MIN = 5
INTERVAL_MAX = 10_080
#: How long a claimed feed is left alone by other sweeps while its sync runs.
SYNC_LEASE = timedelta(minutes=5)

_SCHEMES = {"http": "http", "https": "https", "webcal": "https", "webcals": "https"}


# --- validation and masking (pure) -------------------------------------------------------------


@dataclass(frozen=True)
class FeedSpec:
    """A validated subscription: what ``add`` stores."""

    name: str
    url: str
    lead_minutes: int
    horizon_days: int
    interval_minutes: int
    channels: tuple[str, ...]

    def __repr__(self) -> str:
        return f"FeedSpec(name={self.name!r}, url={mask_feed_url(self.url)!r})"


def feed_name(value: object, field: str = "name") -> str:
    """Lower-case letters, digits, ``-`` and ``_``, at most 48 characters (``work``)."""
    return slug(value, field=field, max_len=NAME_MAX, example="work or family")


def feed_url(value: object) -> str:
    """An http(s) URL with a host; ``webcal://`` (and ``webcals://``) become ``https://``.

    Errors never repeat the URL: it may hold a secret.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("must not be empty", field="url")
    url = value.strip()
    if any(ch.isspace() for ch in url):
        raise ValidationError("must not contain spaces", field="url")
    if len(url) > URL_MAX:
        raise ValidationError(f"must be at most {URL_MAX} characters", field="url")
    scheme, sep, rest = url.partition("://")
    target = _SCHEMES.get(scheme.lower()) if sep else None
    if target is None:
        shown = f"{scheme}://" if sep else "(no scheme)"
        raise ValidationError(
            f"scheme {shown} is not supported; use https://, http:// or webcal://", field="url"
        )
    url = f"{target}://{rest}"
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        raise ValidationError("has an invalid host or port", field="url") from None
    if not parts.hostname:
        raise ValidationError("has no host", field="url")
    return url


def _whole(value: object, field: str, low: int, high: int, unit: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"must be a whole number of {unit} from {low} to {high}", field=field)
    return value


def validate(
    name: object,
    url: object,
    *,
    lead_minutes: object = 15,
    horizon_days: object = 30,
    interval_minutes: object = 60,
    channels: Iterable[object] | None = None,
) -> FeedSpec:
    """Check a new subscription; each error names its field (the channels' owner is checked
    against the database by :func:`add`)."""
    lead = _whole(lead_minutes, "lead_minutes", 0, LEAD_MAX, "minutes")
    horizon = _whole(horizon_days, "horizon_days", 1, HORIZON_MAX, "days")
    if lead >= horizon * 1440:
        raise ValidationError(
            f"must be shorter than the horizon ({horizon} days = {horizon * 1440} minutes)",
            field="lead_minutes",
        )
    try:
        names = check.channels(channels)
    except ValidationError as err:
        raise ValidationError(err.message, field="channels") from None
    return FeedSpec(
        name=feed_name(name),
        url=feed_url(url),
        lead_minutes=lead,
        horizon_days=horizon,
        interval_minutes=_whole(
            interval_minutes, "interval_minutes", INTERVAL_MIN, INTERVAL_MAX, "minutes"
        ),
        channels=tuple(names),
    )


def mask_feed_url(url: str) -> str:
    """``url`` with its secrets hidden (pure): safe to print, log and put in errors.

    :func:`personal_assistant.redaction.mask_url` with every query value masked: scheme, host
    and port stay; a password becomes ``****``; so does every query value and every path
    segment that looks like a token (``private-<hex>``, 32 characters or more, 16 or more
    with a digit): ``https://calendar.example/ical/****/basic.ics``.
    """
    return redaction.mask_url(url, every_query_value=True)


def scrub(text: str, url: str) -> str:
    """``text`` (an error message, a log line) with ``url`` and its secrets masked."""
    return redaction.scrub(text, url, every_query_value=True)


# --- feeds in the database -----------------------------------------------------------------------


@dataclass(frozen=True)
class Feed:
    id: int
    user_id: int
    name: str
    url: str
    lead_minutes: int
    horizon_days: int
    interval_minutes: int
    channels: tuple[str, ...]
    status: str
    next_sync_at: datetime | None
    last_synced_at: datetime | None
    last_error: str | None
    etag: str | None
    last_modified: str | None
    created_at: datetime
    #: The body last refused for its content (``periods.refusal_digest``), or None.
    refused_digest: str | None = None

    @property
    def masked_url(self) -> str:
        return mask_feed_url(self.url)

    def __repr__(self) -> str:
        return (
            f"Feed(id={self.id!r}, name={self.name!r}, url={self.masked_url!r}, "
            f"status={self.status!r})"
        )


_COLUMNS = (
    CalendarFeed.id,
    CalendarFeed.user_id,
    CalendarFeed.name,
    CalendarFeed.url,
    CalendarFeed.lead_minutes,
    CalendarFeed.horizon_days,
    CalendarFeed.interval_minutes,
    CalendarFeed.channels,
    CalendarFeed.status,
    CalendarFeed.next_sync_at,
    CalendarFeed.last_synced_at,
    CalendarFeed.last_error,
    CalendarFeed.etag,
    CalendarFeed.last_modified,
    CalendarFeed.created_at,
    CalendarFeed.refused_digest,
)


def _feed(row: Sequence[Any]) -> Feed:
    values = list(row)
    values[7] = tuple(values[7] or ())  # channels: a JSON list
    return Feed(*values)


async def by_id(conn: AsyncConnection, feed_id: int, *, lock: bool = False) -> Feed | None:
    query = select(*_COLUMNS).where(CalendarFeed.id == feed_id)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return None if row is None else _feed(row)


async def get(conn: AsyncConnection, user_id: int, name: str, *, lock: bool = False) -> Feed:
    query = select(*_COLUMNS).where(CalendarFeed.user_id == user_id, CalendarFeed.name == name)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFoundError(f"no calendar named {name!r}", field="name")
    return _feed(row)


async def list_for(conn: AsyncConnection, user_id: int) -> list[Feed]:
    rows = await conn.execute(
        select(*_COLUMNS).where(CalendarFeed.user_id == user_id).order_by(CalendarFeed.name)
    )
    return [_feed(row) for row in rows]


async def add(conn: AsyncConnection, user_id: int, spec: FeedSpec, *, now: datetime) -> Feed:
    """Store a subscription, due for its first sync at once."""
    try:
        await check_task_channels(conn, user_id, spec.channels)
    except ValidationError as err:
        raise ValidationError(err.message, field="channels") from None
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(CalendarFeed).values(
                    user_id=user_id,
                    name=spec.name,
                    url=spec.url,
                    lead_minutes=spec.lead_minutes,
                    horizon_days=spec.horizon_days,
                    interval_minutes=spec.interval_minutes,
                    channels=list(spec.channels),
                    status=FeedStatus.ACTIVE,
                    next_sync_at=now,
                    created_at=now,
                )
            )
    except IntegrityError:
        raise ConflictError(
            f"a calendar named {spec.name!r} exists: remove it first", field="name"
        ) from None
    return await get(conn, user_id, spec.name)


@dataclass(frozen=True)
class Removed:
    feed: Feed
    events: int
    reminders: int  # reminder tasks deleted: those that had not run


async def remove(conn: AsyncConnection, user_id: int, name: str) -> Removed:
    """Delete a subscription, its events and its reminders that have not run yet.

    Reminders that ran stay, with their runs and notifications.
    """
    feed = await get(conn, user_id, name, lock=True)
    task_ids = list(
        (
            await conn.execute(
                select(CalendarEvent.task_id).where(CalendarEvent.feed_id == feed.id)
            )
        ).scalars()
    )
    deleted = await delete_unrun_tasks(conn, [t for t in task_ids if t is not None])
    await conn.execute(delete(CalendarFeed).where(CalendarFeed.id == feed.id))
    return Removed(feed, len(task_ids), deleted)


async def owner_timezone(conn: AsyncConnection, user_id: int) -> str:
    zone = await conn.scalar(select(User.timezone).where(User.id == user_id))
    if zone is None:
        raise NotFoundError(f"user {user_id} not found", field="user_id")
    return str(zone)


async def upcoming_counts(conn: AsyncConnection, user_id: int, now: datetime) -> dict[int, int]:
    """Per feed of the user: stored events that start after ``now``."""
    rows = await conn.execute(
        select(CalendarEvent.feed_id, func.count())
        .join(CalendarFeed, CalendarFeed.id == CalendarEvent.feed_id)
        .where(CalendarFeed.user_id == user_id, CalendarEvent.starts_at > now)
        .group_by(CalendarEvent.feed_id)
    )
    return {int(feed_id): int(count) for feed_id, count in rows}


async def due_feeds(
    engine: AsyncEngine, now: datetime, *, limit: int = 100, lease: timedelta = SYNC_LEASE
) -> list[int]:
    """Claim active feeds whose sync is due and lease them; returns their ids, oldest first."""
    async with engine.begin() as conn:
        return await lease_due(
            conn,
            CalendarFeed,
            CalendarFeed.next_sync_at,
            where=[CalendarFeed.status == FeedStatus.ACTIVE],
            now=now,
            limit=limit,
            lease={"next_sync_at": now + lease},
        )


# --- the reminder tasks a feed owns ------------------------------------------------------------


async def unrun_tasks(conn: AsyncConnection, task_ids: Sequence[int]) -> set[int]:
    """Of ``task_ids``, the tasks that are active or paused and have no run, locked.

    The task rows are locked (``FOR UPDATE``, in id order) before their runs are looked at, so
    a scheduler that claims one of them either committed its run first (the task is then not
    returned) or waits, skips it, and finds it changed or gone.
    """
    if not task_ids:
        return set()
    candidates = list(
        (
            await conn.execute(
                select(AITask.id)
                .where(
                    AITask.id.in_(sorted(set(task_ids))),
                    AITask.status.in_([TaskStatus.ACTIVE, TaskStatus.PAUSED]),
                )
                .order_by(AITask.id)
                .with_for_update()
            )
        ).scalars()
    )
    if not candidates:
        return set()
    ran = set(
        (
            await conn.execute(
                select(TaskRun.task_id).where(TaskRun.task_id.in_(candidates)).distinct()
            )
        ).scalars()
    )
    return set(candidates) - ran


async def delete_unrun_tasks(conn: AsyncConnection, task_ids: Sequence[int]) -> int:
    """Delete those of ``task_ids`` that have not run (see :func:`unrun_tasks`)."""
    doomed = await unrun_tasks(conn, task_ids)
    if doomed:
        await conn.execute(delete(AITask).where(AITask.id.in_(sorted(doomed))))
    return len(doomed)
