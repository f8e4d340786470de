"""The outbox: notification rows, their initial status, their delivery lease, their updates.

Every notification is a row first, written here and only here: a run's, one per channel
(:func:`insert_notifications`), one of no run unique by its key (a digest, an alert:
:func:`insert_keyed`) and a broken channel's notice (:func:`write_broken_notice`); an import
restores rows as they were exported.

An in-app row is ``delivered`` as it is written; any other is ``pending`` until a deliverer
(:mod:`~personal_assistant.notifications.delivery`) records its outcome. Of a pending row,
``next_attempt_at`` is when it is next due (the sweep, :func:`due`, hands it on then) and
``sending_since`` when the send under way began (NULL: no send is under way;
``next_attempt_at`` is then the end of that send's lease).

Every update of a pending row is a compare-and-set on those two columns as read
(:func:`move`): the row count says whether this deliverer still holds the row. A channel's
daily cap counts its rows delivered today (:func:`delivered_since`) and its sends under way
(:func:`sending`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant.core.states import NotificationStatus, RunState
from personal_assistant.database import pg_arrays
from personal_assistant.database.dialect import dialect_insert
from personal_assistant.database.leases import lease_due
from personal_assistant.database.models import AITask, Notification, TaskRun, User
from personal_assistant.notifications.channels import is_in_app, notice_channel
from personal_assistant.notifications.content import TITLE_LIMIT, trim
from personal_assistant.notifications.policy import QuietHours
from personal_assistant.notifications.transports.base import Message

__all__ = [
    "DELIVERY_LEASE",
    "Lease",
    "NewNotification",
    "Row",
    "being_sent",
    "delivered_since",
    "due",
    "initial_status",
    "insert_keyed",
    "insert_notifications",
    "load",
    "move",
    "sending",
    "write_broken_notice",
]

#: A pending notification whose delivery message was lost is swept up after this long (the
#: default of the ``DELIVERY_LEASE`` setting).
DELIVERY_LEASE = timedelta(seconds=60)

#: A pending row's ``(next_attempt_at, sending_since)``, as read: what :func:`move` compares.
Lease = tuple[datetime | None, datetime | None]


def initial_status(channel: str) -> NotificationStatus:
    return NotificationStatus.DELIVERED if is_in_app(channel) else NotificationStatus.PENDING


def _fresh(status: NotificationStatus, now: datetime, sweep_at: datetime | None) -> dict[str, Any]:
    """The columns of a new row in ``status``: a pending one is swept up at ``sweep_at``."""
    return {
        "status": status,
        "attempts": 0,
        "created_at": now,
        "delivered_at": now if status == NotificationStatus.DELIVERED else None,
        "next_attempt_at": sweep_at if status == NotificationStatus.PENDING else None,
    }


_PG_INSERT_NOTIFICATIONS = text(
    """
    INSERT INTO notifications (run_id, task_id, user_id, channel, status, title, body, attempts,
                               created_at, delivered_at, next_attempt_at)
    SELECT n.run_id, n.task_id, n.user_id, n.channel, n.status, n.title, n.body, 0, :now,
           CASE WHEN n.status = 'delivered' THEN CAST(:now AS timestamptz) END,
           CASE WHEN n.status = 'pending' THEN CAST(:sweep_at AS timestamptz) END
    FROM unnest(CAST(:run_ids AS bigint[]), CAST(:task_ids AS bigint[]),
                CAST(:user_ids AS bigint[]), CAST(:channels AS text[]),
                CAST(:statuses AS text[]), CAST(:titles AS text[]), CAST(:bodies AS text[]))
        AS n(run_id, task_id, user_id, channel, status, title, body)
    ON CONFLICT (run_id, channel) DO NOTHING
    RETURNING id, status
    """
)


@dataclass(frozen=True)
class NewNotification:
    run_id: int
    task_id: int
    user_id: int
    channel: str
    title: str
    body: str


def pg_note_arrays(notes: Sequence[NewNotification], prefix: str = "") -> dict[str, str]:
    """The array parameters of new outbox rows in a PostgreSQL ``unnest`` (named ``prefix`` +
    ``run_ids``, ``task_ids``, ``user_ids``, ``channels``, ``statuses``, ``titles``,
    ``bodies``), each row in its initial status."""
    return {
        prefix + "run_ids": pg_arrays.ints([n.run_id for n in notes]),
        prefix + "task_ids": pg_arrays.ints([n.task_id for n in notes]),
        prefix + "user_ids": pg_arrays.ints([n.user_id for n in notes]),
        prefix + "channels": pg_arrays.texts([n.channel for n in notes]),
        prefix + "statuses": pg_arrays.texts([initial_status(n.channel).value for n in notes]),
        prefix + "titles": pg_arrays.texts([n.title for n in notes]),
        prefix + "bodies": pg_arrays.texts([n.body for n in notes]),
    }


async def insert_notifications(
    conn: AsyncConnection, notes: Sequence[NewNotification], *, now: datetime, sweep_at: datetime
) -> list[tuple[int, str]]:
    """Insert the outbox rows of runs, one per (run, channel), in their initial status; returns
    ``(id, status)`` of the new ones.

    Pending rows are delivered at once by a message; ``sweep_at`` is when the delivery sweep
    picks them up if that message is lost.
    """
    if not notes:
        return []
    if conn.dialect.name == "postgresql":
        result = await conn.execute(
            _PG_INSERT_NOTIFICATIONS,
            {"now": now, "sweep_at": sweep_at, **pg_note_arrays(notes)},
        )
    else:
        stmt = (
            dialect_insert(conn, Notification)
            .on_conflict_do_nothing(index_elements=["run_id", "channel"])
            .returning(Notification.id, Notification.status)
        )
        result = await conn.execute(
            stmt,
            [
                {
                    "run_id": n.run_id,
                    "task_id": n.task_id,
                    "user_id": n.user_id,
                    "channel": n.channel,
                    "title": n.title,
                    "body": n.body,
                    **_fresh(initial_status(n.channel), now, sweep_at),
                }
                for n in notes
            ],
        )
    return [(int(i), str(s)) for i, s in result.all()]


async def insert_keyed(
    conn: AsyncConnection,
    *,
    user_id: int,
    channel: str,
    dedupe_key: str,
    message: Message,
    now: datetime,
    sweep_at: datetime,
) -> tuple[int, str] | None:
    """Insert a notification of no run (a digest, an alert), once per user, channel and
    ``dedupe_key``: ``(id, status)``, or None if it was written already."""
    inserted = await conn.execute(
        dialect_insert(conn, Notification)
        .values(
            run_id=None,
            task_id=None,
            user_id=user_id,
            channel=channel,
            dedupe_key=dedupe_key,
            title=message.title,
            body=message.body,
            **_fresh(initial_status(channel), now, sweep_at),
        )
        .on_conflict_do_nothing(index_elements=["user_id", "channel", "dedupe_key"])
        .returning(Notification.id, Notification.status)
    )
    row = inserted.first()
    return None if row is None else (int(row[0]), str(row[1]))


@dataclass(frozen=True)
class Row:
    """A pending row, with what its delivery needs of its user, task and run."""

    channel: str
    title: str
    body: str
    attempts: int
    next_attempt_at: datetime | None
    sending_since: datetime | None  # when the send under way began (None: none is)
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

    @property
    def lease(self) -> Lease:
        return self.next_attempt_at, self.sending_since

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


def being_sent(row: Row, now: datetime) -> bool:
    """Another deliverer leased the row for a send, and its lease is not over."""
    return (
        row.sending_since is not None
        and row.next_attempt_at is not None
        and row.next_attempt_at > now
    )


async def load(conn: AsyncConnection, notification_id: int) -> Row | None:
    """The row if it is pending and no other transaction holds it (locked until commit)."""
    row = (
        await conn.execute(
            select(
                Notification.channel,
                Notification.title,
                Notification.body,
                Notification.attempts,
                Notification.next_attempt_at,
                Notification.sending_since,
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
    return Row(*values)


async def due(conn: AsyncConnection, now: datetime, *, lease: timedelta, limit: int) -> list[int]:
    """Pending rows whose (next) attempt is due, each leased for ``lease`` and its send lease
    cleared: the rows are this sweep's to hand on (see
    :meth:`~personal_assistant.notifications.delivery.NotificationService.due`)."""
    return await lease_due(
        conn,
        Notification,
        Notification.next_attempt_at,
        where=[Notification.status == NotificationStatus.PENDING],
        now=now,
        limit=limit,
        lease={"next_attempt_at": now + lease, "sending_since": None},
    )


async def move(
    conn: AsyncConnection,
    notification_id: int,
    as_read: Lease,
    values: Mapping[str, object],
    *,
    attempted: bool = False,
) -> bool:
    """Set ``values`` on the pending row by compare-and-set on its lease columns ``as_read``
    (counting one more attempt if ``attempted``); False if someone else moved it meanwhile."""
    next_attempt_at, sending_since = as_read
    if attempted:
        values = {**values, "attempts": Notification.attempts + 1}
    done = await conn.execute(
        update(Notification)
        .where(
            Notification.id == notification_id,
            Notification.status == NotificationStatus.PENDING,
            _equals(Notification.next_attempt_at, next_attempt_at),
            _equals(Notification.sending_since, sending_since),
        )
        .values(values)
    )
    return bool(done.rowcount == 1)


def _equals(column: Any, value: datetime | None) -> Any:
    return column.is_(None) if value is None else column == value


async def write_broken_notice(
    conn: AsyncConnection,
    *,
    user_id: int,
    name: str,
    masked_url: str,
    reason: str,
    run_id: int | None,
    task_id: int | None,
    now: datetime,
) -> None:
    """The in-app notice that the user's channel ``name`` broke, and how to mend it."""
    await conn.execute(
        insert(Notification).values(
            run_id=run_id,
            task_id=task_id,
            user_id=user_id,
            channel=notice_channel(name),
            title=trim(f"Channel {name!r} stopped working", TITLE_LIMIT),
            body=(
                f"Notifications to your channel {name!r} ({masked_url}) fail: "
                f"{reason}. They are not sent until you fix it: check it with "
                f"`pa channel test {name}`, or replace it with "
                f"`pa channel remove {name}` and `pa channel add {name} URL`."
            ),
            **_fresh(NotificationStatus.DELIVERED, now, None),
        )
    )


async def delivered_since(conn: AsyncConnection, user_id: int, name: str, since: datetime) -> int:
    """Notifications delivered through the user's channel ``name`` at or after ``since``."""
    return await _count(
        conn,
        user_id,
        name,
        Notification.status == NotificationStatus.DELIVERED,
        Notification.delivered_at >= since,
    )


async def sending(conn: AsyncConnection, user_id: int, name: str, now: datetime) -> int:
    """Sends under way at ``now`` through the user's channel ``name``: pending rows leased for a
    send (``sending_since`` set) whose lease (``next_attempt_at``) is not over."""
    return await _count(
        conn,
        user_id,
        name,
        Notification.status == NotificationStatus.PENDING,
        Notification.sending_since.is_not(None),
        Notification.next_attempt_at > now,
    )


async def _count(conn: AsyncConnection, user_id: int, name: str, *where: Any) -> int:
    count = await conn.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user_id, Notification.channel == name, *where)
    )
    return int(count or 0)
