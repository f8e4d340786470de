"""One evaluation of the alert rules, its episodes and the admins' messages in one transaction.

:func:`evaluate` takes the facts read at ``now`` (:mod:`.facts`), steps every alert's episode
(:mod:`.lifecycle`) and, for each that opens or resolves, writes one notification to every
admin user (``users.is_admin``) on each of their channels: in-app and every active channel.
The rows go through the outbox like any other
(:func:`~personal_assistant.notifications.outbox.insert_keyed`), so quiet hours, daily caps,
retries and broken channels apply, and they are unique per (admin, channel, episode, opened or
resolved).

Evaluations never race: on PostgreSQL a transaction-level advisory lock makes them take turns
(SQLite has one writer), and at most one episode of an alert is unresolved (a unique index), so
two evaluators at once tell each admin once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from personal_assistant.alerts import messages
from personal_assistant.alerts.lifecycle import Episode, Step, step
from personal_assistant.alerts.rules import Facts, Firing, Thresholds, firing, rule_named
from personal_assistant.core.states import AlertStatus, ChannelStatus, NotificationStatus
from personal_assistant.database.models import Alert, NotificationChannel, User
from personal_assistant.notifications import outbox
from personal_assistant.notifications.channels import IN_APP
from personal_assistant.notifications.transports.base import Message

__all__ = [
    "ALERTS_LOCK",
    "Evaluation",
    "Timing",
    "admin_channels",
    "evaluate",
    "notify_admins",
]

log = logging.getLogger(__name__)

#: The advisory-lock key of evaluations (any constant apart from the quota locks' namespace).
ALERTS_LOCK = 0x414C << 48


@dataclass(frozen=True)
class Timing:
    open_after: timedelta
    cooldown: timedelta


@dataclass(frozen=True)
class Evaluation:
    firing: tuple[str, ...]
    opened: tuple[str, ...]
    resolved: tuple[str, ...]
    #: Notification rows left pending for delivery (in-app ones are delivered as written).
    pending: tuple[int, ...]


async def evaluate(
    engine: AsyncEngine, facts: Facts, limits: Thresholds, timing: Timing, now: datetime
) -> Evaluation:
    held = firing(facts, limits)
    opened: list[str] = []
    resolved: list[str] = []
    pending: list[int] = []
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(select(func.pg_advisory_xact_lock(ALERTS_LOCK)))
        episodes = await _unresolved(conn)
        last_opened = await _last_opened(conn, set(episodes) | set(held))
        for key in sorted(set(episodes) | set(held)):
            episode, rule_firing = episodes.get(key), held.get(key)
            decided = step(
                episode,
                rule_firing is not None,
                now,
                open_after=timing.open_after,
                cooldown=timing.cooldown,
                last_opened_at=last_opened.get(key),
            )
            if decided is Step.START and rule_firing is not None:
                episode = await _start(conn, rule_firing, now)
                decided = step(
                    episode,
                    True,
                    now,
                    open_after=timing.open_after,
                    cooldown=timing.cooldown,
                    last_opened_at=last_opened.get(key),
                )
            if episode is None:
                continue
            if decided is Step.HOLD and rule_firing is not None:
                await _seen(conn, episode.id, rule_firing, now)
            elif decided is Step.DROP:
                await conn.execute(delete(Alert).where(Alert.id == episode.id))
            elif decided is Step.OPEN and rule_firing is not None:
                await _move(conn, episode.id, rule_firing, now, status=AlertStatus.OPEN)
                message = messages.opened(rule_firing, since=episode.started_at, now=now)
                pending += await notify_admins(conn, message, f"alert:{episode.id}:opened", now)
                opened.append(key)
                log.warning(
                    "event=alert_opened key=%s severity=%s value=%r",
                    key,
                    rule_firing.rule.severity,
                    rule_firing.value,
                )
            elif decided is Step.RESOLVE:
                row = await _close(conn, episode.id, now)
                message = messages.resolved(
                    rule_named(row.rule), row.summary, opened_at=row.opened_at, now=now
                )
                pending += await notify_admins(conn, message, f"alert:{episode.id}:resolved", now)
                resolved.append(key)
                log.info("event=alert_resolved key=%s", key)
    return Evaluation(tuple(sorted(held)), tuple(opened), tuple(resolved), tuple(pending))


async def _unresolved(conn: AsyncConnection) -> dict[str, Episode]:
    rows = await conn.execute(
        select(Alert.key, Alert.id, Alert.status, Alert.started_at).where(
            Alert.status != AlertStatus.RESOLVED
        )
    )
    return {key: Episode(id, AlertStatus(status), started) for key, id, status, started in rows}


async def _last_opened(conn: AsyncConnection, keys: Iterable[str]) -> dict[str, datetime]:
    wanted = list(keys)
    if not wanted:
        return {}
    rows = await conn.execute(
        select(Alert.key, func.max(Alert.opened_at))
        .where(Alert.key.in_(wanted), Alert.opened_at.is_not(None))
        .group_by(Alert.key)
    )
    return {key: opened for key, opened in rows if opened is not None}


async def _start(conn: AsyncConnection, held: Firing, now: datetime) -> Episode:
    new_id = await conn.scalar(
        insert(Alert)
        .values(
            key=held.key,
            rule=held.rule.name,
            severity=held.rule.severity,
            status=AlertStatus.PENDING,
            summary=held.summary[:200],
            value=held.value,
            started_at=now,
            seen_at=now,
        )
        .returning(Alert.id)
    )
    assert new_id is not None  # RETURNING of an INSERT
    return Episode(int(new_id), AlertStatus.PENDING, now)


async def _seen(conn: AsyncConnection, alert_id: int, held: Firing, now: datetime) -> None:
    await conn.execute(
        update(Alert)
        .where(Alert.id == alert_id)
        .values(summary=held.summary[:200], value=held.value, seen_at=now)
    )


async def _move(
    conn: AsyncConnection, alert_id: int, held: Firing, now: datetime, *, status: AlertStatus
) -> None:
    await conn.execute(
        update(Alert)
        .where(Alert.id == alert_id)
        .values(
            status=status, summary=held.summary[:200], value=held.value, seen_at=now, opened_at=now
        )
    )


@dataclass(frozen=True)
class _Closed:
    rule: str
    summary: str
    opened_at: datetime | None


async def _close(conn: AsyncConnection, alert_id: int, now: datetime) -> _Closed:
    row = (
        await conn.execute(
            update(Alert)
            .where(Alert.id == alert_id)
            .values(status=AlertStatus.RESOLVED, resolved_at=now)
            .returning(Alert.rule, Alert.summary, Alert.opened_at)
        )
    ).one()
    return _Closed(*row)


async def admin_channels(conn: AsyncConnection) -> Mapping[int, list[str]]:
    """Each admin user's channels an alert goes to: in-app, and every active channel."""
    admins = (await conn.scalars(select(User.id).where(User.is_admin).order_by(User.id))).all()
    found: dict[int, list[str]] = {int(admin): [IN_APP] for admin in admins}
    if not found:
        return found
    rows = await conn.execute(
        select(NotificationChannel.user_id, NotificationChannel.name)
        .where(
            NotificationChannel.user_id.in_(list(found)),
            NotificationChannel.status == ChannelStatus.ACTIVE,
        )
        .order_by(NotificationChannel.user_id, NotificationChannel.name)
    )
    for user_id, name in rows:
        found[int(user_id)].append(str(name))
    return found


async def notify_admins(
    conn: AsyncConnection, message: Message, dedupe_key: str, now: datetime
) -> list[int]:
    """Write ``message`` to every admin on each of their channels, once per ``dedupe_key``;
    returns the rows left pending for delivery."""
    pending: list[int] = []
    recipients = await admin_channels(conn)
    if not recipients:
        log.warning("event=alert_unheard reason=no_admin key=%s", dedupe_key)
    for user_id, channels in recipients.items():
        for channel in channels:
            written = await outbox.insert_keyed(
                conn,
                user_id=user_id,
                channel=channel,
                dedupe_key=dedupe_key,
                message=message,
                now=now,
                sweep_at=now + outbox.DELIVERY_LEASE,
            )
            if written is not None and written[1] == NotificationStatus.PENDING:
                pending.append(written[0])
    return pending
