"""``NotificationService``: the outbox of notifications and their delivery.

Every notification is a row first, unique per (run, channel). An in-app notification is
delivered by writing its row. Other channels are delivered by ``deliver_notifications`` on the
``email_tasks`` queue through a registry of transports; a retry of a delivery never reruns the
agent, and a delivered row is never sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.core.states import NotificationStatus
from personal_assistant.database.models import Notification, User
from personal_assistant.errors import DeliveryError
from personal_assistant.tools.ai_scheduler.outcomes import RetryPolicy

log = logging.getLogger(__name__)

DELIVERY_RETRY = RetryPolicy(base_seconds=30.0, max_seconds=3600.0)
DELIVERY_LEASE = timedelta(seconds=60)

IN_APP = "in_app"
KNOWN_CHANNELS = frozenset({IN_APP, "email", "sms", "webhook"})
TITLE_LIMIT = 200
BODY_LIMIT = 4000


@dataclass(frozen=True)
class Message:
    title: str
    body: str


def compose(task_title: str, *, succeeded: bool, text: str) -> Message:
    """The notification for a finished run (pure): the answer, or the honest reason."""
    title = task_title if succeeded else f"Failed: {task_title}"
    body = text if succeeded else f"The task could not be completed: {text}"
    return Message(_trim(title, TITLE_LIMIT), _trim(body, BODY_LIMIT))


def _trim(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut + "…"


def initial_status(channel: str) -> NotificationStatus:
    return NotificationStatus.DELIVERED if channel == IN_APP else NotificationStatus.PENDING


@dataclass(frozen=True)
class Recipient:
    user_id: int
    display_name: str
    email: str | None
    phone: str | None


class Transport(Protocol):
    """Sends one notification; raises :class:`DeliveryError` (``permanent`` or not)."""

    async def send(self, recipient: Recipient, message: Message) -> None: ...


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int
    failed: int
    retry: int


class NotificationService:
    """Delivers pending notifications through the transports registered per channel.

    A transient failure leaves the row ``pending`` with ``next_attempt_at`` pushed back by the
    retry policy; :meth:`due` hands such rows to the sweep. A permanent failure, or the last
    attempt, marks the row ``failed`` with the reason.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        transports: Mapping[str, Transport] | None = None,
        *,
        max_attempts: int = 5,
        policy: RetryPolicy = DELIVERY_RETRY,
        lease: timedelta = DELIVERY_LEASE,
    ) -> None:
        self._engine = engine
        self._transports = dict(transports or {})
        self._max_attempts = max_attempts
        self._policy = policy
        self._lease = lease

    async def deliver(self, notification_ids: Sequence[int], now: datetime) -> DeliveryReport:
        delivered = failed = retry = 0
        for notification_id in notification_ids:
            outcome = await self._deliver_one(notification_id, now)
            if outcome == NotificationStatus.DELIVERED:
                delivered += 1
            elif outcome == NotificationStatus.FAILED:
                failed += 1
            elif outcome == NotificationStatus.PENDING:
                retry += 1
        return DeliveryReport(delivered, failed, retry)

    async def due(self, now: datetime, *, limit: int = 1000) -> list[int]:
        """Pending notifications whose (next) attempt is due; leased so one sweep sends each."""
        async with self._engine.begin() as conn:
            ids = list(
                (
                    await conn.execute(
                        select(Notification.id)
                        .where(
                            Notification.status == NotificationStatus.PENDING,
                            Notification.next_attempt_at <= now,
                        )
                        .order_by(Notification.next_attempt_at)
                        .limit(limit)
                        .with_for_update(skip_locked=True)
                    )
                ).scalars()
            )
            if ids:
                await conn.execute(
                    update(Notification)
                    .where(Notification.id.in_(ids))
                    .values(next_attempt_at=now + self._lease)
                )
        return ids

    async def _deliver_one(self, notification_id: int, now: datetime) -> NotificationStatus | None:
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    select(
                        Notification.channel,
                        Notification.title,
                        Notification.body,
                        Notification.attempts,
                        User.id,
                        User.display_name,
                        User.email,
                        User.phone,
                    )
                    .join(User, User.id == Notification.user_id)
                    .where(
                        Notification.id == notification_id,
                        Notification.status == NotificationStatus.PENDING,
                    )
                    .with_for_update(of=Notification.__table__, skip_locked=True)
                )
            ).first()
            if row is None:
                return None  # delivered, failed, or being delivered by someone else
            channel, title, body, attempts, user_id, name, email, phone = row
            transport = self._transports.get(channel)
            status = NotificationStatus.DELIVERED
            error: str | None = None
            retry_at: datetime | None = None
            try:
                if transport is None:
                    raise DeliveryError(
                        f"no transport is configured for channel {channel!r}", permanent=True
                    )
                await transport.send(Recipient(user_id, name, email, phone), Message(title, body))
            except DeliveryError as exc:
                error = exc.message
                if exc.permanent or attempts + 1 >= self._max_attempts:
                    status = NotificationStatus.FAILED
                else:
                    status = NotificationStatus.PENDING
                    retry_at = now + timedelta(seconds=self._policy.delay(attempts + 1))
            await conn.execute(
                update(Notification)
                .where(Notification.id == notification_id)
                .values(
                    status=status,
                    attempts=Notification.attempts + 1,
                    last_error=error,
                    next_attempt_at=retry_at,
                    delivered_at=now if status == NotificationStatus.DELIVERED else None,
                )
            )
        log.info(
            "event=notification_%s notification_id=%s channel=%s%s",
            status.value,
            notification_id,
            channel,
            f" error={error!r}" if error else "",
        )
        return status
