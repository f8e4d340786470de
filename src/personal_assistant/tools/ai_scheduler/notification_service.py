"""``NotificationService``: the outbox of notifications and their delivery.

Every notification is a row first, unique per (run, channel); one of no run (a daily digest,
:mod:`~personal_assistant.tools.ai_scheduler.digest_service`) is unique per (user, channel,
``dedupe_key``). An in-app notification is delivered by writing its row. Other channels are
delivered by ``deliver_notifications`` on the ``email_tasks`` queue through a registry of
transports, one per channel kind (default: the Apprise transport for every kind); a retry of a
delivery never reruns the agent, and a delivered row is never sent again (the row lock and the
``pending`` check).

Per row, the channel named by the row is the owner's channel of that name
(:mod:`~personal_assistant.tools.ai_scheduler.channel_store`):

* no such channel, or a broken one: the row fails at once, with the reason;
* inside the owner's quiet hours, or over the channel's daily cap: the row waits
  (``next_attempt_at``, see :mod:`~personal_assistant.tools.ai_scheduler.delivery_policy`);
  a wait is not an attempt;
* else the transport for the channel's kind sends the message rendered for that kind
  (:func:`~personal_assistant.tools.ai_scheduler.message_content.render`). A transient failure
  retries with backoff; a permanent one fails the row, marks the channel ``broken`` with the
  reason and writes one in-app notice per breakage.

A transport registered under the row's channel name is used when the owner has no channel of
that name (an operator-wide transport, or a test double); it gets ``Recipient.url = None``.

A row is locked while it is sent. A deliverer stopped or frozen in the middle (SIGSTOP, a paused
VM) would keep it locked, skipped by every sweep, for as long as it is gone: on PostgreSQL its
transaction ends once idle for the delivery lease plus the longest send (``send_timeout``), and
the sweep sends the row again, under the same idempotency key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from personal_assistant.core.states import NotificationStatus, RunState
from personal_assistant.database.engine import limit_idle_in_transaction
from personal_assistant.database.models import AITask, Notification, TaskRun, User
from personal_assistant.errors import DeliveryError
from personal_assistant.tools.ai_scheduler import channel_store
from personal_assistant.tools.ai_scheduler.channels import IN_APP, KINDS, LEGACY_NAMES, is_in_app
from personal_assistant.tools.ai_scheduler.delivery_policy import (
    QuietHours,
    day_start,
    release_at,
)
from personal_assistant.tools.ai_scheduler.message_content import (
    BODY_LIMIT,
    TITLE_LIMIT,
    Message,
    compose,
    idempotency_key,
    render,
)
from personal_assistant.tools.ai_scheduler.outcomes import RetryPolicy

__all__ = [
    "BODY_LIMIT",
    "DELIVERY_LEASE",
    "DELIVERY_RETRY",
    "IN_APP",
    "KNOWN_CHANNELS",
    "TITLE_LIMIT",
    "DeliveryReport",
    "Message",
    "NotificationService",
    "Recipient",
    "Transport",
    "compose",
    "initial_status",
]

log = logging.getLogger(__name__)

DELIVERY_RETRY = RetryPolicy(base_seconds=30.0, max_seconds=3600.0)
#: A pending notification whose delivery message was lost is swept up after this long (the
#: default of the ``DELIVERY_LEASE`` setting).
DELIVERY_LEASE = timedelta(seconds=60)
#: The longest one send through the default transports may take (Apprise's timeout).
SEND_TIMEOUT_S = 30.0

#: Names valid in any task (the owner's own channel names are valid in theirs too).
KNOWN_CHANNELS = frozenset({IN_APP, *LEGACY_NAMES})


def initial_status(channel: str) -> NotificationStatus:
    return NotificationStatus.DELIVERED if is_in_app(channel) else NotificationStatus.PENDING


@dataclass(frozen=True)
class Recipient:
    user_id: int
    display_name: str
    email: str | None
    phone: str | None
    channel: str = ""
    #: The Apprise URL of the user's channel (a secret: never log it unmasked).
    url: str | None = None

    def __repr__(self) -> str:
        return f"Recipient(user_id={self.user_id!r}, channel={self.channel!r})"


class Transport(Protocol):
    """Sends one notification; raises :class:`DeliveryError` (``permanent`` or not)."""

    async def send(self, recipient: Recipient, message: Message) -> None: ...


def apprise_transports(timeout: float = SEND_TIMEOUT_S) -> dict[str, Transport]:
    """The default registry: the Apprise transport for every channel kind."""
    from personal_assistant.tools.ai_scheduler.apprise_transport import AppriseTransport

    transport = AppriseTransport(timeout=timeout)
    return dict.fromkeys(KINDS, transport)


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int
    failed: int
    retry: int
    deferred: int = 0


@dataclass(frozen=True)
class _Row:
    channel: str
    title: str
    body: str
    attempts: int
    run_id: int | None  # None: a notification of no run (a daily digest)
    task_id: int | None
    user_id: int
    display_name: str
    email: str | None
    phone: str | None
    timezone: str
    quiet_start: time | None
    quiet_end: time | None
    task_title: str | None
    run_state: str | None
    result: str | None
    error: str | None

    def text(self) -> tuple[str, str]:
        """The title and the full text: the run's answer or reason (the row has a trimmed one)."""
        if self.task_title is not None and self.run_state == RunState.SUCCEEDED and self.result:
            return self.task_title, self.result
        if self.task_title is not None and self.run_state == RunState.FAILED and self.error:
            return f"Failed: {self.task_title}", f"The task could not be completed: {self.error}"
        return self.title, self.body

    def quiet(self) -> QuietHours | None:
        if self.quiet_start is not None and self.quiet_end is not None:
            return QuietHours(self.quiet_start, self.quiet_end)
        return None


class NotificationService:
    """Delivers pending notifications through the transports registered per channel kind.

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
        send_timeout: float = SEND_TIMEOUT_S,
    ) -> None:
        """``send_timeout``: the longest a send may take (the default transports' timeout)."""
        self._engine = engine
        self._transports = dict(
            apprise_transports(send_timeout) if transports is None else transports
        )
        self._max_attempts = max_attempts
        self._policy = policy
        self._lease = lease
        self._stall_limit = lease.total_seconds() + send_timeout

    async def deliver(self, notification_ids: Sequence[int], now: datetime) -> DeliveryReport:
        counts = dict.fromkeys(("delivered", "failed", "pending", "deferred"), 0)
        for notification_id in notification_ids:
            outcome = await self._deliver_one(notification_id, now)
            if outcome is not None:
                counts[outcome] += 1
        return DeliveryReport(
            counts["delivered"], counts["failed"], counts["pending"], counts["deferred"]
        )

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

    async def send_test(self, channel: channel_store.Channel, recipient: Recipient) -> None:
        """Send a test message through ``channel`` now (no quiet hours, no cap, no outbox)."""
        transport = self._transports.get(channel.kind)
        if transport is None:
            raise DeliveryError(f"no transport is configured for {channel.kind}", permanent=True)
        message = render(
            channel.kind,
            "Test from your personal assistant",
            f"This is a test of your channel {channel.name!r}. It works.",
            task_id=0,
            run_id=0,
        )
        await transport.send(recipient, message)

    async def _deliver_one(self, notification_id: int, now: datetime) -> str | None:
        async with self._engine.begin() as conn:
            await limit_idle_in_transaction(conn, self._stall_limit)
            row = await _load(conn, notification_id)
            if row is None:
                return None  # delivered, failed, or being delivered by someone else
            outcome, error, retry_at = await self._attempt(conn, notification_id, row, now)
            if outcome == "deferred":
                await conn.execute(
                    update(Notification)
                    .where(Notification.id == notification_id)
                    .values(next_attempt_at=retry_at)
                )
            else:
                await conn.execute(
                    update(Notification)
                    .where(Notification.id == notification_id)
                    .values(
                        status=outcome,
                        attempts=Notification.attempts + 1,
                        last_error=error,
                        next_attempt_at=retry_at,
                        delivered_at=now if outcome == NotificationStatus.DELIVERED else None,
                    )
                )
        log.info(
            "event=notification_%s notification_id=%s run_id=%s channel=%s%s%s",
            outcome,
            notification_id,
            row.run_id,
            row.channel,
            f" until={retry_at.isoformat()}" if outcome == "deferred" and retry_at else "",
            f" error={error!r}" if error else "",
        )
        return outcome

    async def _attempt(
        self, conn: AsyncConnection, notification_id: int, row: _Row, now: datetime
    ) -> tuple[str, str | None, datetime | None]:
        """``(outcome, error, next_attempt_at)`` for one pending row; sends at most once."""
        found = await channel_store.find(conn, row.user_id, row.channel)
        if found is not None and found.daily_cap is not None:
            found = await channel_store.find(conn, row.user_id, row.channel, lock=True)
        recipient = Recipient(
            row.user_id,
            row.display_name,
            row.email,
            row.phone,
            channel=row.channel,
            url=None if found is None else found.url,
        )
        title, text = row.text()
        try:
            if found is None:
                transport = self._transports.get(row.channel)
                if transport is None:
                    raise DeliveryError(
                        f"no channel named {row.channel!r}: add one with "
                        f"`pa channel add {row.channel} URL`",
                        permanent=True,
                    )
                message = Message(row.title, row.body)
            else:
                if found.status == channel_store.BROKEN:
                    raise DeliveryError(
                        f"channel {found.name!r} is broken: {found.broken_reason}", permanent=True
                    )
                zone = ZoneInfo(row.timezone)
                sent = 0
                if found.daily_cap is not None:
                    sent = await channel_store.delivered_since(
                        conn, row.user_id, row.channel, day_start(now, zone)
                    )
                hold = release_at(
                    now, zone, quiet=row.quiet(), cap=found.daily_cap, sent_today=sent
                )
                if hold is not None:
                    return "deferred", None, hold
                transport = self._transports.get(found.kind)
                if transport is None:
                    raise DeliveryError(
                        f"no transport is configured for {found.kind} channels", permanent=True
                    )
                message = render(found.kind, title, text, task_id=row.task_id, run_id=row.run_id)
            await transport.send(recipient, replace(message, key=idempotency_key(notification_id)))
        except DeliveryError as exc:
            if exc.permanent or row.attempts + 1 >= self._max_attempts:
                if exc.permanent and found is not None and found.status == channel_store.ACTIVE:
                    await channel_store.mark_broken(
                        conn, found, exc.message, run_id=row.run_id, task_id=row.task_id, now=now
                    )
                return NotificationStatus.FAILED, exc.message, None
            retry_at = now + timedelta(seconds=self._policy.delay(row.attempts + 1))
            return NotificationStatus.PENDING, exc.message, retry_at
        return NotificationStatus.DELIVERED, None, None


async def _load(conn: AsyncConnection, notification_id: int) -> _Row | None:
    row = (
        await conn.execute(
            select(
                Notification.channel,
                Notification.title,
                Notification.body,
                Notification.attempts,
                Notification.run_id,
                Notification.task_id,
                User.id,
                User.display_name,
                User.email,
                User.phone,
                User.timezone,
                User.quiet_start,
                User.quiet_end,
                AITask.title,
                TaskRun.state,
                TaskRun.result,
                TaskRun.error,
            )
            .join(User, User.id == Notification.user_id)
            .outerjoin(AITask, AITask.id == Notification.task_id)
            .outerjoin(TaskRun, TaskRun.id == Notification.run_id)
            .where(
                Notification.id == notification_id,
                Notification.status == NotificationStatus.PENDING,
            )
            .with_for_update(of=Notification.__table__, skip_locked=True)
        )
    ).first()
    if row is None:
        return None
    values: tuple[Any, ...] = tuple(row)
    return _Row(*values)
