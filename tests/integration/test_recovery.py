"""Nothing lost: a worker killed mid-run, and notifications whose delivery must be retried."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from personal_assistant.database.engine import make_async_engine
from personal_assistant.errors import DeliveryError
from personal_assistant.notifications.delivery import NotificationService
from personal_assistant.notifications.transports.base import Message, Recipient
from personal_assistant.tasks.manager import AITaskManager
from support.processes import ProcessGroup, wait_until
from support.stack import Db, run, settings_for

pytestmark = pytest.mark.integration


@pytest.fixture
def db(database_url: str) -> Iterator[Db]:
    handle = Db(database_url)
    yield handle
    handle.close()


def test_run_of_a_killed_worker_is_reaped_and_retried(
    stack_env: dict[str, str], processes: ProcessGroup, db: Db
) -> None:
    # The dead worker's lease (3 beats + LEASE_MARGIN) ends 4 s after its last beat.
    env = {
        **stack_env,
        "RUN_TIMEOUT": "4",
        "LEASE_MARGIN": "1",
        "REAPER_INTERVAL": "1",
        "HEARTBEAT_INTERVAL": "1",
    }

    async def setup() -> int:
        async with AITaskManager(settings_for(env)) as manager:
            user = await manager.create_user("Kim")
            task = await manager.create_task(
                user.id,
                "Slow summary",
                task_type="periodic_task",
                ai_context={"simulate_delay_seconds": 2},
                schedule={
                    "kind": "once",
                    "at": (datetime.now(UTC) + timedelta(seconds=1)).isoformat(),
                },
            )
            return task.id

    task_id = run(setup())
    processes.worker(env, name="doomed")
    processes.beat(env)
    wait_until(
        lambda: db.scalar("SELECT state FROM task_runs WHERE task_id = :t", t=task_id) == "running",
        timeout=30,
        message="the run to start",
    )
    processes.kill("doomed", signal.SIGKILL)  # mid agent call: no ack, no result
    processes.worker(env, name="survivor")
    wait_until(
        lambda: (
            db.scalar("SELECT state FROM task_runs WHERE task_id = :t", t=task_id) == "succeeded"
        ),
        timeout=45,
        message="the reaped run to succeed on the other worker",
    )
    attempt, worker = db.rows(
        "SELECT attempt, worker_id FROM task_runs WHERE task_id = :t", t=task_id
    )[0]
    assert attempt == 2
    assert db.scalar("SELECT count(*) FROM task_runs WHERE task_id = :t", t=task_id) == 1
    assert db.scalar("SELECT count(*) FROM notifications WHERE task_id = :t", t=task_id) == 1
    assert "event=run_reaped" in processes.log("survivor")
    assert str(processes.procs["survivor"].pid) in worker


class Clock:
    """An injected clock that moves only when told to."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> datetime:
        self.at += by
        return self.at


class Flaky:
    """A transport double: fails ``failures`` times (transiently), then records the send."""

    def __init__(self, failures: int, *, permanent: bool = False) -> None:
        self.failures = failures
        self.permanent = permanent
        self.sent: list[tuple[Recipient, Message]] = []

    async def send(self, recipient: Recipient, message: Message) -> None:
        if self.failures:
            self.failures -= 1
            raise DeliveryError("smtp said 451", permanent=self.permanent)
        self.sent.append((recipient, message))


def _seed_email_notification(db: Db) -> int:
    db.execute(
        "INSERT INTO users (display_name, email, timezone, created_at) "
        "VALUES ('Lou', 'lou@example.org', 'UTC', now())"
    )
    db.execute(
        "INSERT INTO ai_tasks (user_id, title, description, task_type, schedule_kind, schedule,"
        " timezone, status, ai_context, notification_channels, catch_up, max_retries,"
        " consecutive_failures, created_at, updated_at) VALUES (1, 't', '', 'reminder', 'once',"
        " '{}', 'UTC', 'completed', '{}', '[\"email\"]', 'once', 3, 0, now(), now())"
    )
    db.execute(
        "INSERT INTO task_runs (task_id, scheduled_for, state, attempt, queued_at)"
        " VALUES (1, now(), 'succeeded', 1, now())"
    )
    db.execute(
        "INSERT INTO notifications (run_id, task_id, user_id, channel, status, title,"
        " body, attempts, created_at, next_attempt_at) VALUES (1, 1, 1, 'email',"
        " 'pending', 'Hello', 'Body', 0, now(), now() - interval '1 second')"
    )
    return int(db.scalar("SELECT id FROM notifications"))


def test_transient_delivery_failures_retry_then_deliver_once(database_url: str, db: Db) -> None:
    note_id = _seed_email_notification(db)
    transport = Flaky(failures=1)

    async def go() -> None:
        engine = make_async_engine(database_url)
        clock = Clock(datetime.now(UTC))
        service = NotificationService(engine, {"email": transport}, clock=clock)
        now = clock()
        assert await service.due(now) == [note_id]
        assert await service.due(now) == []  # leased to the first sweep
        first = await service.deliver([note_id])
        assert (first.delivered, first.retry) == (0, 1)
        later = clock.advance(timedelta(hours=2))
        assert await service.due(later) == [note_id]
        second = await service.deliver([note_id, note_id])  # delivered twice: sent once
        assert second.delivered == 1
        await engine.dispose()

    asyncio.run(go())
    assert len(transport.sent) == 1
    recipient, message = transport.sent[0]
    assert (recipient.email, message.title) == ("lou@example.org", "Hello")
    assert db.rows("SELECT status, attempts, last_error, next_attempt_at FROM notifications") == [
        ("delivered", 2, None, None)
    ]


def test_permanent_failure_and_missing_transport_fail_with_the_reason(
    database_url: str, db: Db
) -> None:
    note_id = _seed_email_notification(db)

    async def go() -> None:
        engine = make_async_engine(database_url)
        report = await NotificationService(engine, {}).deliver([note_id])
        assert report.failed == 1
        await engine.dispose()

    asyncio.run(go())
    assert db.rows("SELECT status, last_error FROM notifications") == [
        ("failed", "no channel named 'email': add one with `pa channel add email URL`")
    ]


class Frozen:
    """A deliverer stopped in the middle of a send (it holds its lease, nothing more is said)."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.resume = asyncio.Event()
        self.sent: list[Message] = []

    async def send(self, recipient: Recipient, message: Message) -> None:
        self.sent.append(message)
        self.entered.set()
        await self.resume.wait()


def test_a_deliverer_stopped_mid_send_releases_the_row_after_the_lease(
    database_url: str, db: Db
) -> None:
    """While a send is under way no other deliverer takes the row, nor the sweep; once its
    lease is over the sweep hands it on, and the stopped deliverer, resumed, records nothing."""
    note_id = _seed_email_notification(db)
    frozen, healthy = Frozen(), Flaky(failures=0)
    clock = Clock(datetime.now(UTC))
    lease, send_timeout = timedelta(seconds=60), 30.0
    leased_for = lease + timedelta(seconds=send_timeout)  # a send's lease (the module doc)

    async def go() -> tuple[int, list[int], list[int], int, int | None]:
        engine = make_async_engine(database_url)
        options: dict[str, Any] = {"lease": lease, "send_timeout": send_timeout, "clock": clock}
        stalled = NotificationService(engine, {"email": frozen}, **options)
        other = NotificationService(engine, {"email": healthy}, **options)
        try:
            stalled_call = asyncio.create_task(stalled.deliver([note_id]))
            await asyncio.wait_for(frozen.entered.wait(), timeout=10)
            young = (await other.deliver([note_id])).delivered  # under way: not taken
            clock.advance(leased_for - timedelta(seconds=1))
            early = await other.due(clock())  # the sweep: not yet
            clock.advance(timedelta(seconds=1))
            swept = await other.due(clock())
            late = (await other.deliver(swept)).delivered
            frozen.resume.set()
            resumed = (await stalled_call).delivered
        finally:
            await engine.dispose()
        return young, early, swept, late, resumed

    young, early, swept, late, resumed = asyncio.run(go())
    assert (young, early, swept, late) == (0, [], [note_id], 1)
    assert resumed == 0  # its lease was taken over: it records nothing
    assert [m.key for m in frozen.sent] == [m.key for _, m in healthy.sent]  # one key: a redelivery
    assert db.rows("SELECT status, attempts FROM notifications") == [("delivered", 1)]
