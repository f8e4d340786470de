"""The delivery protocol: the clock is read per row, and no lock is held while a message is sent.

``NotificationService.deliver`` leases a row in one short transaction, sends with no transaction
open, and records the outcome in a second short one. The transport doubles here take time: they
advance an injected clock, or wait on an event while the test writes to the database.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import insert, make_url

from personal_assistant.database.engine import make_async_engine
from personal_assistant.database.models import Notification, NotificationChannel, User
from personal_assistant.errors import DeliveryError
from personal_assistant.notifications.delivery import (
    DELIVERY_RETRY,
    NotificationService,
)
from personal_assistant.notifications.transports.base import Message, Recipient
from support.keys import CIPHER
from support.stack import Db

pytestmark = pytest.mark.integration

START = datetime(2026, 3, 2, 21, 59, tzinfo=UTC)  # a minute before the quiet hours
SEND_TAKES = timedelta(seconds=20)


class Clock:
    """An injected clock that moves only when told to."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by


class Slow:
    """A transport whose sends take ``SEND_TAKES`` on the clock; titles in ``failing`` fail."""

    def __init__(self, clock: Clock, failing: frozenset[str] = frozenset()) -> None:
        self.clock = clock
        self.failing = failing
        self.started: dict[str, datetime] = {}

    async def send(self, recipient: Recipient, message: Message) -> None:
        self.started[message.title] = self.clock()
        self.clock.advance(SEND_TAKES)
        if message.title in self.failing:
            raise DeliveryError("timed out", permanent=False)


class Held:
    """A transport whose send waits until the test releases it."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.sent: list[str] = []

    async def send(self, recipient: Recipient, message: Message) -> None:
        self.entered.set()
        await self.release.wait()
        self.sent.append(message.title)


def seed(
    db: Db,
    titles: list[str],
    *,
    quiet: tuple[time, time] | None = None,
    cap: int | None = None,
    due: datetime = START,
) -> list[int]:
    """Lou, her webhook channel ``hook`` and a pending notification per title (ids in order)."""
    with db.engine.begin() as conn:
        user = conn.execute(
            insert(User)
            .values(
                display_name="Lou",
                email="lou@example.org",
                timezone="UTC",
                quiet_start=quiet and quiet[0],
                quiet_end=quiet and quiet[1],
                created_at=due,
            )
            .returning(User.id)
        ).scalar_one()
        conn.execute(
            insert(NotificationChannel).values(
                user_id=user,
                name="hook",
                kind="webhook",
                url_sealed=CIPHER.seal("json://127.0.0.1:9/hook"),
                url_masked="json://127.0.0.1:9/hook",
                status="active",
                daily_cap=cap,
                created_at=due,
            )
        )
        return [
            conn.execute(
                insert(Notification)
                .values(
                    user_id=user,
                    channel="hook",
                    dedupe_key=title,
                    status="pending",
                    title=title,
                    body=f"body of {title}",
                    attempts=0,
                    created_at=due,
                    next_attempt_at=due,
                )
                .returning(Notification.id)
            ).scalar_one()
            for title in titles
        ]


def test_each_row_is_sent_and_recorded_at_its_own_time(database_url: str, db: Db) -> None:
    """Quiet hours that begin mid-batch hold the rest of it; ``delivered_at`` and retry times
    come from the clock when each send ended."""
    ids = seed(db, ["a", "b", "c", "d"], quiet=(time(22, 0), time(7, 0)))
    clock = Clock(START)
    transport = Slow(clock, failing=frozenset({"a"}))

    async def go() -> None:
        engine = make_async_engine(database_url)
        try:
            service = NotificationService(engine, {"webhook": transport}, clock=clock)
            report = await service.deliver(ids)
            assert (report.delivered, report.retry, report.deferred) == (2, 1, 1)
        finally:
            await engine.dispose()

    asyncio.run(go())
    assert all(at < START + timedelta(minutes=1) for at in transport.started.values())
    assert sorted(transport.started) == ["a", "b", "c"]  # d: it was 22:00, quiet
    rows = {
        r.title: r
        for r in db.rows(
            "SELECT title, status, attempts, next_attempt_at, delivered_at FROM notifications"
        )
    }
    failed_at = START + SEND_TAKES
    retry_in = rows["a"].next_attempt_at - failed_at
    low, high = 0.75 * DELIVERY_RETRY.base_seconds, 1.25 * DELIVERY_RETRY.base_seconds  # jitter
    assert timedelta(seconds=low) <= retry_in <= timedelta(seconds=high)
    assert (rows["a"].status, rows["a"].attempts) == ("pending", 1)
    assert rows["b"].delivered_at == START + 2 * SEND_TAKES
    assert rows["c"].delivered_at == START + 3 * SEND_TAKES
    assert (rows["d"].status, rows["d"].attempts, rows["d"].next_attempt_at) == (
        "pending",
        0,
        datetime(2026, 3, 3, 7, 0, tzinfo=UTC),
    )


def test_no_lock_is_held_on_the_row_or_its_capped_channel_during_a_send(
    database_url: str, db: Db
) -> None:
    (note,) = seed(db, ["a"], cap=5, due=datetime.now(UTC))
    transport = Held()

    def lock_nowait() -> None:
        """Fails with 'could not obtain lock' if the deliverer holds either row."""
        db.execute("SELECT id FROM notifications WHERE id = :i FOR UPDATE NOWAIT", i=note)
        db.execute("SELECT id FROM notification_channels FOR UPDATE NOWAIT")

    async def go() -> None:
        engine = make_async_engine(database_url)
        try:
            service = NotificationService(engine, {"webhook": transport})
            sending = asyncio.create_task(service.deliver([note]))
            await asyncio.wait_for(transport.entered.wait(), timeout=30)
            try:
                await asyncio.to_thread(lock_nowait)
            finally:
                transport.release.set()
            assert (await sending).delivered == 1
        finally:
            await engine.dispose()

    asyncio.run(go())
    assert transport.sent == ["a"]
    assert db.rows("SELECT status, attempts FROM notifications") == [("delivered", 1)]


def test_embedded_sqlite_takes_other_writes_during_a_send(sqlite_url: str) -> None:
    """The scheduler and the workers write while a (slow) send is under way."""
    db = Db(sqlite_url)
    try:
        (note,) = seed(db, ["a"], due=datetime.now(UTC))
    finally:
        db.close()
    transport = Held()
    path = make_url(sqlite_url).database
    assert path is not None

    def write() -> None:
        """Another connection's write, waiting at most 10 s for the lock (not the usual 30)."""
        conn = sqlite3.connect(path, timeout=10, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO users (display_name, timezone, created_at)"
                " VALUES ('Kim', 'UTC', '2026-03-02 21:00:00.000000')"
            )
            conn.execute("COMMIT")
        finally:
            conn.close()

    async def go() -> None:
        engine = make_async_engine(sqlite_url)
        try:
            service = NotificationService(engine, {"webhook": transport})
            sending = asyncio.create_task(service.deliver([note]))
            await asyncio.wait_for(transport.entered.wait(), timeout=30)
            try:
                await asyncio.to_thread(write)
            finally:
                transport.release.set()
            assert (await sending).delivered == 1
        finally:
            await engine.dispose()

    asyncio.run(go())
    assert transport.sent == ["a"]
    db = Db(sqlite_url)
    try:
        assert db.rows("SELECT status, attempts FROM notifications") == [("delivered", 1)]
        assert db.scalar("SELECT count(*) FROM users") == 2
    finally:
        db.close()


def test_racing_deliverers_send_a_row_once_and_keep_the_cap(database_url: str, db: Db) -> None:
    """Two deliverers handed the same rows at once: each row is sent once, and a channel with
    a cap of 2 gets two of the three rows today (the third waits), whoever sends them."""
    ids = seed(db, ["a", "b", "c"], cap=2, due=datetime.now(UTC))
    first, second = Held(), Held()

    async def go() -> None:
        engine = make_async_engine(database_url)
        try:
            one = NotificationService(engine, {"webhook": first})
            two = NotificationService(engine, {"webhook": second})
            calls = [asyncio.create_task(s.deliver(ids)) for s in (one, two)]
            await asyncio.wait_for(first.entered.wait(), timeout=30)
            await asyncio.wait_for(second.entered.wait(), timeout=30)
            first.release.set()
            second.release.set()
            reports = await asyncio.gather(*calls)
            assert sum(r.delivered for r in reports) == 2
        finally:
            await engine.dispose()

    asyncio.run(go())
    assert sorted(first.sent + second.sent) == ["a", "b"]
    rows = db.rows("SELECT title, status, attempts FROM notifications ORDER BY title")
    assert [tuple(r) for r in rows] == [
        ("a", "delivered", 1),
        ("b", "delivered", 1),
        ("c", "pending", 0),
    ]
