"""``NotificationService``: the delivery of the outbox's notifications.

Every notification is a row first (:mod:`~personal_assistant.notifications.outbox`), unique per
(run, channel); one of no run (a daily digest, :mod:`~personal_assistant.digests.sweep`) is
unique per (user, channel, ``dedupe_key``). An in-app notification is delivered by writing its
row. Other channels are delivered by ``deliver_notifications`` on the ``email_tasks`` queue
through the registry of transports, one per channel kind
(:mod:`~personal_assistant.notifications.transports.registry`); a retry of a delivery never
reruns the agent.

Per row, the channel named by the row is the owner's channel of that name
(:mod:`~personal_assistant.notifications.channel_store`):

* no such channel, or a broken one: the row fails at once, with the reason;
* inside the owner's quiet hours, or over the channel's daily cap: the row waits
  (``next_attempt_at``, see :mod:`~personal_assistant.notifications.policy`);
  a wait is not an attempt;
* else the transport for the channel's kind sends the message rendered for that kind
  (:func:`~personal_assistant.notifications.content.render`). A transient failure
  retries with backoff; a permanent one fails the row, marks the channel ``broken`` with the
  reason and writes one in-app notice per breakage.

A transport registered under the row's channel name is used when the owner has no channel of
that name (an operator-wide transport, or a test double); it gets ``Recipient.sealed_url =
None``. A channel's URL stays sealed until the send: the Apprise transport opens it with the
channel keys (:mod:`personal_assistant.channel_keys`), and one that no key opens fails the row
and breaks the channel like any permanent failure.

**No transaction is open while a message is sent** (a send may take ``send_timeout``; on the
embedded SQLite database a transaction holds the only write lock, on PostgreSQL a row lock).
Each row goes through three steps, each reading the service's clock:

1. *Lease*, one short transaction. The rules above are applied at this instant. A row to send
   is leased by a compare-and-set on the ``next_attempt_at`` and ``sending_since`` read:
   ``sending_since`` becomes the time the send begins (NULL: no send is under way) and
   ``next_attempt_at`` the end of the lease, ``now + lease + send_timeout``.
   One deliverer wins; any other, and the sweep (:meth:`NotificationService.due`), leave the
   row alone until the lease is over. A channel with a daily cap is locked in this
   transaction only: its sends under way count against the cap with those delivered today,
   so concurrent deliverers never exceed it; a row over the cap only because of sends under
   way waits one lease, then the cap is counted again.
2. *Send*, with no transaction and no lock, under ``Idempotency-Key: pa-notification-<id>``.
3. *Record*, a second short transaction, at the time the send ended: ``delivered_at`` is
   then, a retry's backoff counts from then, and so does a broken channel's notice. A
   compare-and-set on the lease's two values lets only the lease holder record. A delivered
   row is never leased, hence never sent, again.

A deliverer that stops in the middle of a send (killed, SIGSTOP, a paused VM) records
nothing: once its lease is over the sweep clears it and hands the row to another deliverer,
which sends it again under the same idempotency key; the stopped one, should it resume, loses
its compare-and-set. Waiting rows (a lost message, quiet hours, a backoff) are not leased: any
deliverer handed one applies the rules again. Clocks matter only to a lease's end: a host whose
clock is more than ``lease + send_timeout`` ahead may send a row a second time (same key).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from personal_assistant.channel_keys import ChannelCipher
from personal_assistant.clock import utcnow
from personal_assistant.core.backoff import RetryPolicy
from personal_assistant.core.states import ChannelStatus, NotificationStatus
from personal_assistant.database.engine import limit_idle_in_transaction
from personal_assistant.errors import DeliveryError
from personal_assistant.metrics import record as metrics
from personal_assistant.notifications import channel_store, outbox
from personal_assistant.notifications.channels import missing_channel
from personal_assistant.notifications.content import idempotency_key, render
from personal_assistant.notifications.outbox import DELIVERY_LEASE
from personal_assistant.notifications.policy import day_start, release_at
from personal_assistant.notifications.transports.base import Message, Recipient, Transport
from personal_assistant.notifications.transports.registry import (
    SEND_TIMEOUT_S,
    default_transports,
)
from personal_assistant.outbound import STRICT, Policy

__all__ = ["DELIVERY_RETRY", "DeliveryReport", "NotificationService"]

log = logging.getLogger(__name__)

DELIVERY_RETRY = RetryPolicy(base_seconds=30.0, max_seconds=3600.0)


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int
    failed: int
    retry: int
    deferred: int = 0


@dataclass(frozen=True)
class _Send:
    """A row leased for sending: what to send, and the lease only its holder can record under."""

    notification_id: int
    row: outbox.Row
    started: datetime  # the row's ``sending_since`` while the send is under way
    until: datetime  # and its ``next_attempt_at``: when the lease ends
    channel: channel_store.Channel | None
    transport: Transport
    recipient: Recipient
    message: Message

    @property
    def lease(self) -> outbox.Lease:
        return self.until, self.started


@dataclass(frozen=True)
class _Hold:
    until: datetime


@dataclass(frozen=True)
class _Refuse:
    """The row cannot be sent at all: it fails at once, and ``breaks`` is marked broken."""

    reason: str
    breaks: channel_store.Channel | None = None


class NotificationService:
    """Delivers pending notifications through the transports registered per channel kind.

    Each row is leased in a short transaction, sent with no transaction open, and its outcome
    recorded in a second short transaction by compare-and-set (the module doc). ``clock`` is
    read per row, at the lease and again when the send ended: the rules see the time of each
    send, however long the ones before it took.

    A transient failure leaves the row ``pending`` with ``next_attempt_at`` pushed back by the
    retry policy from the time of the failure; :meth:`due` hands such rows to the sweep. A
    permanent failure, or the last attempt, marks the row ``failed`` with the reason.
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
        clock: Callable[[], datetime] = utcnow,
        cipher: ChannelCipher | None = None,
        outbound: Policy = STRICT,
    ) -> None:
        """``send_timeout``: the longest a send may take (the default transports' timeout);
        ``cipher``: what the default transports open channel URLs with; ``outbound``: where
        they may send (the settings' ``outbound_policy``; by default nothing internal)."""
        self._engine = engine
        self._transports = dict(
            default_transports(send_timeout, cipher, outbound) if transports is None else transports
        )
        self._max_attempts = max_attempts
        self._policy = policy
        self._lease = lease
        #: How long a send is leased: the delivery lease plus the longest send.
        self._send_lease = lease + timedelta(seconds=send_timeout)
        self._clock = clock

    async def deliver(self, notification_ids: Sequence[int]) -> DeliveryReport:
        counts = dict.fromkeys(("delivered", "failed", "pending", "deferred"), 0)
        for notification_id in notification_ids:
            outcome = await self._deliver_one(notification_id)
            if outcome is not None:
                counts[outcome] += 1
        return DeliveryReport(
            counts["delivered"], counts["failed"], counts["pending"], counts["deferred"]
        )

    async def due(self, now: datetime, *, limit: int = 1000) -> list[int]:
        """Pending notifications whose (next) attempt is due; leased so one sweep sends each.

        A row whose send lease ran out (its deliverer stopped mid-send) is due again here, and
        its lease is cleared (``sending_since``): it is free for the next deliverer.
        """
        async with self._engine.begin() as conn:
            return await outbox.due(conn, now, lease=self._lease, limit=limit)

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
        await transport.send(replace(recipient, sealed_url=channel.sealed_url), message)

    async def _deliver_one(self, notification_id: int) -> str | None:
        """Lease, send, record (the module doc); the outcome, or None if not ours to send."""
        leased = await self._lease_row(notification_id)
        if not isinstance(leased, _Send):
            return leased
        try:
            await leased.transport.send(leased.recipient, leased.message)
        except DeliveryError as exc:
            return await self._record(leased, exc)
        return await self._record(leased, None)

    async def _lease_row(self, notification_id: int) -> _Send | str | None:
        """The first, short transaction: settle the row (failed, deferred) or lease it."""
        async with self._engine.begin() as conn:
            await limit_idle_in_transaction(conn, self._lease.total_seconds())
            now = self._clock()
            row = await outbox.load(conn, notification_id)
            if row is None or outbox.being_sent(row, now):
                return None  # delivered, failed, or another deliverer's send is under way
            plan = await self._plan(conn, notification_id, row, now)
            if isinstance(plan, _Refuse):
                failed = {
                    "status": NotificationStatus.FAILED,
                    "last_error": plan.reason,
                    "next_attempt_at": None,
                    "sending_since": None,
                }
                if not await outbox.move(conn, notification_id, row.lease, failed, attempted=True):
                    return None
                if plan.breaks is not None:
                    await channel_store.mark_broken(
                        conn,
                        plan.breaks,
                        plan.reason,
                        run_id=row.run_id,
                        task_id=row.task_id,
                        now=now,
                    )
                _log(NotificationStatus.FAILED, notification_id, row, error=plan.reason)
                return NotificationStatus.FAILED
            if isinstance(plan, _Hold):
                held = {"next_attempt_at": plan.until, "sending_since": None}
                if not await outbox.move(conn, notification_id, row.lease, held):
                    return None
                _log("deferred", notification_id, row, until=plan.until)
                return "deferred"
            leased = {"next_attempt_at": plan.until, "sending_since": plan.started}
            if not await outbox.move(conn, notification_id, row.lease, leased):
                return None
        return plan

    async def _plan(
        self, conn: AsyncConnection, notification_id: int, row: outbox.Row, now: datetime
    ) -> _Send | _Hold | _Refuse:
        """What to do with the row at ``now``: send it, hold it until later, or refuse it."""
        found = await channel_store.find(conn, row.user_id, row.channel)
        if found is not None and found.daily_cap is not None:
            # Serialises this channel's cap decisions; held only by this short transaction.
            found = await channel_store.find(conn, row.user_id, row.channel, lock=True)
        recipient = Recipient(
            row.user_id,
            row.display_name,
            row.email,
            row.phone,
            channel=row.channel,
            sealed_url=None if found is None else found.sealed_url,
        )
        title, text = row.text()
        if found is None:
            transport = self._transports.get(row.channel)
            if transport is None:
                return _Refuse(missing_channel(row.channel))
            message = Message(row.title, row.body)
        else:
            if found.status == ChannelStatus.BROKEN:
                return _Refuse(f"channel {found.name!r} is broken: {found.broken_reason}")
            hold = await self._hold(conn, row, found, now)
            if hold is not None:
                return _Hold(hold)
            transport = self._transports.get(found.kind)
            if transport is None:
                return _Refuse(
                    f"no transport is configured for {found.kind} channels",
                    breaks=found if found.status == ChannelStatus.ACTIVE else None,
                )
            message = render(found.kind, title, text, task_id=row.task_id, run_id=row.run_id)
        return _Send(
            notification_id,
            row,
            now,
            now + self._send_lease,
            found,
            transport,
            recipient,
            replace(message, key=idempotency_key(notification_id)),
        )

    async def _hold(
        self, conn: AsyncConnection, row: outbox.Row, channel: channel_store.Channel, now: datetime
    ) -> datetime | None:
        """Until when quiet hours or the cap hold the row at ``now`` (None: send it now)."""
        zone = ZoneInfo(row.timezone)
        sent = sending = 0
        if channel.daily_cap is not None:
            sent = await outbox.delivered_since(
                conn, row.user_id, row.channel, day_start(now, zone)
            )
            sending = await outbox.sending(conn, row.user_id, row.channel, now)
        return release_at(
            now,
            zone,
            quiet=row.quiet(),
            cap=channel.daily_cap,
            sent_today=sent,
            sending=sending,
            recheck=self._lease,
        )

    async def _record(self, leased: _Send, error: DeliveryError | None) -> str | None:
        """The second, short transaction: the outcome, at the time the send ended."""
        row = leased.row
        async with self._engine.begin() as conn:
            await limit_idle_in_transaction(conn, self._lease.total_seconds())
            now = self._clock()
            retry_at: datetime | None = None
            if error is None:
                outcome = NotificationStatus.DELIVERED
            elif error.permanent or row.attempts + 1 >= self._max_attempts:
                outcome = NotificationStatus.FAILED
            else:
                outcome = NotificationStatus.PENDING
                retry_at = now + timedelta(seconds=self._policy.delay(row.attempts + 1))
            recorded = await outbox.move(
                conn,
                leased.notification_id,
                leased.lease,
                {
                    "status": outcome,
                    "last_error": None if error is None else error.message,
                    "next_attempt_at": retry_at,
                    "delivered_at": now if error is None else None,
                    "sending_since": None,
                },
                attempted=True,
            )
            if not recorded:
                # Our lease ran out and the sweep handed the row on: that deliverer records it.
                _log("lease_lost", leased.notification_id, row)
                return None
            channel = leased.channel
            if error is not None and error.permanent and channel is not None:
                await channel_store.mark_broken(  # a no-op unless the channel is still active
                    conn, channel, error.message, run_id=row.run_id, task_id=row.task_id, now=now
                )
        message = None if error is None else error.message
        _log(outcome, leased.notification_id, row, until=retry_at, error=message)
        # A channel's kind, or a built-in transport's name: never the name a user gave.
        kind = row.channel if leased.channel is None else leased.channel.kind
        metrics.notifications([(kind, _RESULTS[outcome])])
        return outcome


#: A recorded outcome as the notification metrics name it.
_RESULTS = {
    NotificationStatus.DELIVERED: "delivered",
    NotificationStatus.PENDING: "retrying",
    NotificationStatus.FAILED: "failed",
}


def _log(
    outcome: str,
    notification_id: int,
    row: outbox.Row,
    *,
    until: datetime | None = None,
    error: str | None = None,
) -> None:
    log.info(
        "event=notification_%s notification_id=%s run_id=%s channel=%s%s%s",
        outcome,
        notification_id,
        row.run_id,
        row.channel,
        f" until={until.isoformat()}" if until is not None else "",
        f" error={error!r}" if error else "",
    )
