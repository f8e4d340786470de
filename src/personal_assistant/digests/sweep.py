"""Daily digests in the database: a user's setting, and the sweep that writes the due ones.

:func:`set_digest` stores a user's digest time and channel, and when the next one is due
(``users.next_digest_at``). :func:`due_digests` is one step of the sweep (beat sends
``send_daily_digests`` every minute). It claims the users whose digest has been due for
:data:`SETTLE` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` makes it
the one writer), writes each one's digest as an outbox row and moves ``next_digest_at`` to the
next occurrence after now, in one transaction. So a crash writes the digest and moves on, or
does neither; a sweep that runs twice, or two sweeps at once, write it once (and the unique key
``(user_id, channel, dedupe_key)`` refuses a second row for the same local date in any case).

A digest covers the runs that finished from the end of the user's previous digest up to
:data:`SETTLE` before it is written
(:func:`~personal_assistant.digests.rules.window`). That previous end is read from
the outbox: the ``created_at`` of the user's last digest row, minus :data:`SETTLE`. So each run
is in one digest, after downtime (one digest covering every missed day), a change of the digest
time, or a digest refused because its date already had one. A day with no finished run sends
nothing.

The row has no run and no task (``run_id``/``task_id`` NULL) and is delivered like any other
notification: in-app at once, other channels by ``deliver_notifications`` with retries, quiet
hours, daily caps and broken channels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from time import monotonic
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from personal_assistant.core.states import FINAL_RUN_STATES, NotificationStatus, RunState
from personal_assistant.database.engine import limit_idle_in_transaction
from personal_assistant.database.models import AITask, Notification, TaskRun, User
from personal_assistant.digests.rules import (
    MAX_LINES,
    DigestRun,
    DigestWindow,
    check_time,
    compose_digest,
    dedupe_key,
    earliest_since,
    next_digest_at,
    window,
)
from personal_assistant.errors import NotFoundError, ValidationError
from personal_assistant.notifications import channel_store, outbox
from personal_assistant.notifications.channels import IN_APP, channel_name

__all__ = ["DigestSetting", "DigestSweep", "due_digests", "set_digest"]

log = logging.getLogger(__name__)

#: Users claimed per transaction.
BATCH = 100
#: A sweep stops claiming after this long; the next one (a minute later) goes on.
SWEEP_BUDGET_S = 20.0
#: A batch's transaction idle this long is ended by PostgreSQL (its sweep presumed stopped), so
#: that its users are swept by the next one.
STALL_LIMIT_S = 30.0
#: A digest covers the runs finished up to this long before it is written, and is written at
#: least this long after its time: a run that finished before the window's end is committed by
#: then (its worker's transaction may wait for SQLite's lock).
SETTLE = timedelta(seconds=30)
#: The ``dedupe_key`` prefix of digests in the outbox.
_DIGEST_KEYS = "digest:%"
#: Characters of a run's result or error read for its one-line excerpt.
_EXCERPT_READ = 300


@dataclass(frozen=True)
class DigestSetting:
    user_id: int
    timezone: str
    at: time | None
    channel: str | None
    next_at: datetime | None


async def set_digest(
    conn: AsyncConnection, user_id: int, at: time | None, channel: str | None, *, now: datetime
) -> DigestSetting:
    """Set (``at``) or turn off (``at=None``) the user's daily digest.

    ``channel`` is ``in_app`` or the name of one of the user's channels; None keeps the current
    one (``in_app`` for a first digest). Errors name the field: ``at``, ``channel``, ``user_id``.
    """
    user = (
        await conn.execute(select(User.timezone, User.digest_channel).where(User.id == user_id))
    ).first()
    if user is None:
        raise NotFoundError(f"user {user_id} not found", field="user_id")
    timezone, current = user
    if at is None:
        if channel is not None:
            raise ValidationError("a digest that is off has no channel", field="channel")
        await _store(conn, user_id, None, None, None)
        return DigestSetting(user_id, timezone, None, None, None)
    at = check_time(at)
    name = channel_name(channel, field="channel") if channel is not None else current or IN_APP
    if name != IN_APP and await channel_store.find(conn, user_id, name) is None:
        owned = [c.name for c in await channel_store.list_for(conn, user_id)]
        known = ", ".join([IN_APP, *owned])
        raise ValidationError(
            f"no channel named {name!r} (yours: {known}; add one with `pa channel add {name} URL`)",
            field="channel",
        )
    next_at = next_digest_at(at, ZoneInfo(timezone), now)
    await _store(conn, user_id, at, name, next_at)
    return DigestSetting(user_id, timezone, at, name, next_at)


async def _store(
    conn: AsyncConnection,
    user_id: int,
    at: time | None,
    channel: str | None,
    next_at: datetime | None,
) -> None:
    await conn.execute(
        update(User)
        .where(User.id == user_id)
        .values(digest_at=at, digest_channel=channel, next_digest_at=next_at)
    )


@dataclass(frozen=True)
class DigestSweep:
    #: Users whose digest was due.
    users: int
    #: Digests written (a due user with no finished run gets none).
    written: int
    #: The new rows left pending for delivery (in-app ones are delivered by being written).
    pending: tuple[int, ...]


async def due_digests(
    engine: AsyncEngine,
    now: datetime,
    *,
    batch: int = BATCH,
    budget_s: float = SWEEP_BUDGET_S,
    stall_limit_s: float = STALL_LIMIT_S,
) -> DigestSweep:
    """Write the digests due at ``now``, a batch of users per transaction (module doc).

    The users of a batch are locked ``FOR NO KEY UPDATE``, so their tasks and runs can be
    written meanwhile; a batch left idle ``stall_limit_s`` is ended by PostgreSQL.
    """
    started = monotonic()
    users = written = 0
    pending: list[int] = []
    while True:
        claimed, new, waiting = await _sweep_batch(engine, now, batch, stall_limit_s)
        users, written = users + claimed, written + new
        pending.extend(waiting)
        if claimed < batch or monotonic() - started > budget_s:
            return DigestSweep(users, written, tuple(pending))


async def _sweep_batch(
    engine: AsyncEngine, now: datetime, batch: int, stall_limit_s: float
) -> tuple[int, int, list[int]]:
    written = 0
    pending: list[int] = []
    async with engine.begin() as conn:
        await limit_idle_in_transaction(conn, stall_limit_s)
        rows = (
            await conn.execute(
                select(
                    User.id,
                    User.display_name,
                    User.timezone,
                    User.digest_at,
                    User.digest_channel,
                    User.next_digest_at,
                )
                .where(User.next_digest_at <= now - SETTLE)
                .order_by(User.next_digest_at)
                .limit(batch)
                .with_for_update(skip_locked=True, key_share=True)
            )
        ).all()
        for user_id, name, timezone, at, channel, due in rows:
            if at is None or due is None:  # no digest time (set by hand?): stop looking
                await _advance(conn, user_id, None)
                continue
            try:
                zone = ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError):
                log.warning("event=digest_disabled user_id=%s reason=bad_timezone", user_id)
                await _advance(conn, user_id, None)
                continue
            since = await _last_digest_end(conn, user_id, earliest_since(at, zone, due), now)
            win = window(at, zone, due, now - SETTLE, since=since)
            found = await _write(conn, user_id, name, zone, win, channel or IN_APP, now)
            await _advance(conn, user_id, next_digest_at(at, zone, now))
            if found is not None:
                written += 1
                if found[1] == NotificationStatus.PENDING:
                    pending.append(found[0])
    return len(rows), written, pending


async def _last_digest_end(
    conn: AsyncConnection, user_id: int, earliest: datetime, now: datetime
) -> datetime | None:
    """The end of the user's last digest window, if it ended at or after ``earliest``."""
    written = await conn.scalar(
        select(func.max(Notification.created_at)).where(
            Notification.user_id == user_id,
            Notification.dedupe_key.like(_DIGEST_KEYS),
            Notification.created_at >= earliest + SETTLE,
            Notification.created_at <= now,
        )
    )
    return None if written is None else written - SETTLE


async def _advance(conn: AsyncConnection, user_id: int, next_at: datetime | None) -> None:
    await conn.execute(update(User).where(User.id == user_id).values(next_digest_at=next_at))


async def _write(
    conn: AsyncConnection,
    user_id: int,
    display_name: str,
    zone: ZoneInfo,
    win: DigestWindow,
    channel: str,
    now: datetime,
) -> tuple[int, str] | None:
    """Write the user's digest for ``win``: ``(id, status)``, or None (no run, or written)."""
    finished = (
        TaskRun.finished_at >= win.start,
        TaskRun.finished_at < win.end,
        TaskRun.state.in_(list(FINAL_RUN_STATES)),
        AITask.user_id == user_id,
    )
    counts = {
        str(state): int(count)
        for state, count in await conn.execute(
            select(TaskRun.state, func.count())
            .join(AITask, AITask.id == TaskRun.task_id)
            .where(*finished)
            .group_by(TaskRun.state)
        )
    }
    if not counts:
        log.info("event=digest_empty user_id=%s day=%s", user_id, win.day.isoformat())
        return None
    rank = case(
        (TaskRun.state == RunState.FAILED, 0),
        (TaskRun.state == RunState.SUCCEEDED, 1),
        (TaskRun.state == RunState.SKIPPED, 2),
        else_=3,
    )
    text = case(
        (TaskRun.state == RunState.SUCCEEDED, func.substr(TaskRun.result, 1, _EXCERPT_READ)),
        else_=func.substr(TaskRun.error, 1, _EXCERPT_READ),
    )
    listed = [
        DigestRun(run_id, task_id, title, state, scheduled_for, excerpt)
        for run_id, task_id, title, state, scheduled_for, excerpt in await conn.execute(
            select(
                TaskRun.id,
                TaskRun.task_id,
                AITask.title,
                TaskRun.state,
                TaskRun.scheduled_for,
                text,
            )
            .join(AITask, AITask.id == TaskRun.task_id)
            .where(*finished)
            .order_by(rank, TaskRun.scheduled_for, TaskRun.id)
            .limit(MAX_LINES)
        )
    ]
    message = compose_digest(display_name, win, listed, zone, counts=counts)
    inserted = await outbox.insert_keyed(
        conn,
        user_id=user_id,
        channel=channel,
        dedupe_key=dedupe_key(win.day),
        message=message,
        now=now,
        sweep_at=now + outbox.DELIVERY_LEASE,
    )
    if inserted is None:
        log.info("event=digest_exists user_id=%s day=%s", user_id, win.day.isoformat())
        return None
    log.info(
        "event=digest_written user_id=%s notification_id=%s channel=%s day=%s runs=%s",
        user_id,
        inserted[0],
        channel,
        win.day.isoformat(),
        sum(counts.values()),
    )
    return inserted
