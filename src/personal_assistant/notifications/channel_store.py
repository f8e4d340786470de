"""Database operations on users' notification channels and quiet hours.

A channel breaks by compare-and-set (``UPDATE ... WHERE status = 'active'``): whichever delivery
wins writes the one in-app notice of that breakage, however many notifications fail with it
(:func:`~personal_assistant.notifications.outbox.write_broken_notice`).

A channel's URL is stored sealed with the channel keys (:mod:`personal_assistant.channel_keys`)
beside its masked form: :func:`add` seals it, the transport that sends opens it, and
:func:`rotate_keys` seals every one again with the first key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from personal_assistant.channel_keys import ChannelCipher, UnknownKeyError
from personal_assistant.core.states import ChannelStatus
from personal_assistant.database.models import NotificationChannel, User
from personal_assistant.errors import ConflictError, NotFoundError, ValidationError
from personal_assistant.notifications import outbox
from personal_assistant.notifications.channels import (
    IN_APP,
    LEGACY_NAMES,
    ChannelSpec,
    mask_apprise_url,
)
from personal_assistant.notifications.policy import QuietHours


@dataclass(frozen=True)
class Channel:
    id: int
    user_id: int
    name: str
    kind: str
    #: The Apprise URL, sealed (``ChannelCipher.open`` gives it back, with the key).
    sealed_url: str
    masked_url: str
    status: str
    broken_reason: str | None
    daily_cap: int | None
    created_at: datetime

    def __repr__(self) -> str:
        return (
            f"Channel(id={self.id!r}, name={self.name!r}, kind={self.kind!r}, "
            f"url={self.masked_url!r}, status={self.status!r})"
        )


#: Typed loosely: select() has typed overloads for fewer columns than these ten.
_COLUMNS: tuple[Any, ...] = (
    NotificationChannel.id,
    NotificationChannel.user_id,
    NotificationChannel.name,
    NotificationChannel.kind,
    NotificationChannel.url_sealed,
    NotificationChannel.url_masked,
    NotificationChannel.status,
    NotificationChannel.broken_reason,
    NotificationChannel.daily_cap,
    NotificationChannel.created_at,
)


async def find(
    conn: AsyncConnection, user_id: int, name: str, *, lock: bool = False
) -> Channel | None:
    query = select(*_COLUMNS).where(
        NotificationChannel.user_id == user_id, NotificationChannel.name == name
    )
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return None if row is None else Channel(*row)


async def get(conn: AsyncConnection, user_id: int, name: str) -> Channel:
    found = await find(conn, user_id, name)
    if found is None:
        raise NotFoundError(f"no channel named {name!r}", field="name")
    return found


async def list_for(conn: AsyncConnection, user_id: int) -> list[Channel]:
    rows = await conn.execute(
        select(*_COLUMNS)
        .where(NotificationChannel.user_id == user_id)
        .order_by(NotificationChannel.name)
    )
    return [Channel(*row) for row in rows]


async def add(
    conn: AsyncConnection, user_id: int, spec: ChannelSpec, *, cipher: ChannelCipher, now: datetime
) -> Channel:
    """Store the channel of ``spec``, its URL sealed with ``cipher``."""
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(NotificationChannel).values(
                    user_id=user_id,
                    name=spec.name,
                    kind=spec.kind,
                    url_sealed=cipher.seal(spec.url),
                    url_masked=mask_apprise_url(spec.url),
                    status=ChannelStatus.ACTIVE,
                    daily_cap=spec.daily_cap,
                    created_at=now,
                )
            )
    except IntegrityError:
        raise ConflictError(
            f"a channel named {spec.name!r} exists: remove it first", field="name"
        ) from None
    return await get(conn, user_id, spec.name)


@dataclass(frozen=True)
class Rotation:
    """What :func:`rotate_keys` did: rows sealed again, and those no key opens (left as is)."""

    rotated: int
    unreadable: tuple[Channel, ...]


async def rotate_keys(engine: AsyncEngine, cipher: ChannelCipher, *, batch: int = 500) -> Rotation:
    """Seal every channel URL again with ``cipher``'s first key, ``batch`` rows a transaction.

    Each row is rewritten by compare-and-set on the sealed URL read: a channel removed or
    replaced meanwhile is left to whoever changed it. A URL no key opens is left as it is and
    reported; its channel fails when used, with the reason, until it is removed.
    """
    rotated, after = 0, 0
    unreadable: list[Channel] = []
    while True:
        async with engine.begin() as conn:
            rows = [
                Channel(*row)
                for row in await conn.execute(
                    select(*_COLUMNS)
                    .where(NotificationChannel.id > after)
                    .order_by(NotificationChannel.id)
                    .limit(batch)
                )
            ]
            for channel in rows:
                try:
                    sealed = cipher.rotate(channel.sealed_url)
                except UnknownKeyError:
                    unreadable.append(channel)
                    continue
                done = await conn.execute(
                    update(NotificationChannel)
                    .where(
                        NotificationChannel.id == channel.id,
                        NotificationChannel.url_sealed == channel.sealed_url,
                    )
                    .values(url_sealed=sealed)
                )
                rotated += done.rowcount
        if len(rows) < batch:
            return Rotation(rotated, tuple(unreadable))
        after = rows[-1].id


async def remove(conn: AsyncConnection, user_id: int, name: str) -> Channel:
    found = await get(conn, user_id, name)
    await conn.execute(delete(NotificationChannel).where(NotificationChannel.id == found.id))
    return found


async def reactivate(conn: AsyncConnection, channel_id: int) -> bool:
    done = await conn.execute(
        update(NotificationChannel)
        .where(
            NotificationChannel.id == channel_id, NotificationChannel.status == ChannelStatus.BROKEN
        )
        .values(status=ChannelStatus.ACTIVE, broken_reason=None)
    )
    return done.rowcount == 1


async def mark_broken(
    conn: AsyncConnection,
    channel: Channel,
    reason: str,
    *,
    run_id: int | None,
    task_id: int | None,
    now: datetime,
) -> bool:
    """Break an active channel and tell its owner in-app; False if it was already broken.

    ``run_id`` and ``task_id`` are those of the notification that broke it (None for a
    notification of no run, such as a daily digest).
    """
    done = await conn.execute(
        update(NotificationChannel)
        .where(
            NotificationChannel.id == channel.id, NotificationChannel.status == ChannelStatus.ACTIVE
        )
        .values(status=ChannelStatus.BROKEN, broken_reason=reason)
    )
    if done.rowcount != 1:
        return False
    await outbox.write_broken_notice(
        conn,
        user_id=channel.user_id,
        name=channel.name,
        masked_url=channel.masked_url,
        reason=reason,
        run_id=run_id,
        task_id=task_id,
        now=now,
    )
    return True


async def check_task_channels(
    session: AsyncSession | AsyncConnection, user_id: int, names: Iterable[str]
) -> None:
    """A task may name ``in_app``, the legacy names and the owner's channels (module doc)."""
    owned = set(
        (
            await session.execute(
                select(NotificationChannel.name).where(NotificationChannel.user_id == user_id)
            )
        ).scalars()
    )
    allowed = {IN_APP, *LEGACY_NAMES, *owned}
    for name in names:
        if name not in allowed:
            known = ", ".join(sorted(allowed))
            raise ValidationError(
                f"unknown channel {name!r} (known: {known}; add one with "
                f"`pa channel add {name} URL`)",
                field="notification_channels",
            )


async def set_quiet_hours(conn: AsyncConnection, user_id: int, quiet: QuietHours | None) -> None:
    done = await conn.execute(
        update(User)
        .where(User.id == user_id)
        .values(
            quiet_start=None if quiet is None else quiet.start,
            quiet_end=None if quiet is None else quiet.end,
        )
    )
    if done.rowcount != 1:
        raise NotFoundError(f"user {user_id} not found", field="user_id")
