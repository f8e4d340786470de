"""Daily digests on real databases (PostgreSQL and SQLite), delivered to real servers on loopback,
and the Celery task through a real worker and broker. The sweep is driven with a chosen ``now``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from personal_assistant.database.engine import make_async_engine
from personal_assistant.database.models import Notification, TaskRun, User
from personal_assistant.digests.sweep import (
    SETTLE,
    DigestSetting,
    DigestSweep,
    due_digests,
    set_digest,
)
from personal_assistant.errors import NotFoundError, ValidationError
from personal_assistant.notifications import channel_store
from personal_assistant.notifications.delivery import (
    DeliveryReport,
    NotificationService,
)
from personal_assistant.notifications.transports import apprise_urls
from personal_assistant.tasks.manager import AITaskManager
from support.hook_server import HookServer, SmtpServer
from support.keys import CIPHER
from support.outbound import LOOPBACK
from support.processes import ProcessGroup, wait_until
from support.stack import Db, client_app, run, settings_for

pytestmark = pytest.mark.integration

ZONE = "Asia/Tokyo"
AT = time(20, 0)
CREATED = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
SET_AT = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo, Sunday 29 November
DUE = datetime(2026, 11, 29, 11, 0, tzinfo=UTC)  # 20:00 in Tokyo
WRITE = DUE + SETTLE  # the first sweep that writes the digest due at DUE
NEXT = DUE + timedelta(days=1)  # Tokyo has no DST
DIGEST_TASK = "personal_assistant.workers.tasks.email_tasks.send_daily_digests"


@pytest.fixture
def db(url: str) -> Iterator[Db]:
    handle = Db(url)
    yield handle
    handle.close()


async def _create(url: str, name: str, titles: Sequence[str]) -> tuple[int, list[int]]:
    settings = settings_for({"DATABASE_URL": url})
    async with AITaskManager(settings, clock=lambda: CREATED) as manager:
        user = await manager.create_user(name, email=f"{name.lower()}@example.org", timezone=ZONE)
        tasks = [
            await manager.create_task(
                user.id, title, schedule={"kind": "daily", "times": ["08:00"]}
            )
            for title in titles
        ]
    return user.id, [t.id for t in tasks]


def create_user(url: str, name: str, *titles: str) -> tuple[int, list[int]]:
    return run(_create(url, name, titles))


def add_run(
    db: Db,
    task_id: int,
    state: str,
    finished_at: datetime | None,
    text: str | None = None,
    scheduled_for: datetime | None = None,
) -> int:
    at = scheduled_for or (finished_at or DUE) - timedelta(minutes=1)
    with Session(db.engine) as session, session.begin():
        row = TaskRun(
            task_id=task_id,
            scheduled_for=at,
            state=state,
            attempt=1,
            queued_at=at,
            started_at=at,
            finished_at=finished_at,
            result=text if state == "succeeded" else None,
            error=text if state == "failed" else None,
        )
        session.add(row)
        session.flush()
        return row.id


class Steps:
    """The service's steps, each on its own engine and event loop, with a chosen ``now``."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def _on_engine(self, work: Any) -> Any:
        engine = make_async_engine(self.url, pooled=False)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    def set(
        self, user_id: int, at: time | None, channel: str | None = None, now: datetime = SET_AT
    ) -> DigestSetting:
        async def work(engine: Any) -> DigestSetting:
            async with engine.begin() as conn:
                return await set_digest(conn, user_id, at, channel, now=now)

        setting = asyncio.run(self._on_engine(work))
        assert isinstance(setting, DigestSetting)
        return setting

    def add_channel(self, user_id: int, name: str, url: str) -> None:
        spec = apprise_urls.validate(name, url)

        async def work(engine: Any) -> None:
            async with engine.begin() as conn:
                await channel_store.add(conn, user_id, spec, cipher=CIPHER, now=SET_AT)

        asyncio.run(self._on_engine(work))

    def sweep(self, now: datetime) -> DigestSweep:
        done = asyncio.run(self._on_engine(lambda engine: due_digests(engine, now)))
        assert isinstance(done, DigestSweep)
        return done

    def deliver(self, ids: Sequence[int], now: datetime) -> DeliveryReport:
        report = asyncio.run(
            self._on_engine(
                lambda engine: NotificationService(
                    engine, clock=lambda: now, cipher=CIPHER, outbound=LOOPBACK
                ).deliver(list(ids))
            )
        )
        assert isinstance(report, DeliveryReport)
        return report


def digests(db: Db) -> list[Notification]:
    with Session(db.engine) as session:
        return list(
            session.scalars(
                select(Notification)
                .where(Notification.dedupe_key.is_not(None))
                .order_by(Notification.id)
            )
        )


def update_user(db: Db, user_id: int, **values: Any) -> None:
    with Session(db.engine) as session, session.begin():
        session.execute(update(User).where(User.id == user_id).values(**values))


def next_digest_at(db: Db, user_id: int) -> datetime | None:
    with Session(db.engine) as session:
        return session.scalar(select(User.next_digest_at).where(User.id == user_id))


def test_one_digest_at_the_users_time_with_that_days_runs_only(url: str, db: Db) -> None:
    ada, (briefing, weather) = create_user(url, "Ada", "Morning briefing", "Weather")
    _, (bobs,) = create_user(url, "Bob", "Bob's task")
    morning = SET_AT  # 09:00 in Tokyo
    add_run(
        db, briefing, "succeeded", morning + timedelta(minutes=1), "Three meetings today.", morning
    )
    add_run(db, weather, "failed", DUE - timedelta(hours=2), "failed after 3 attempts: timeout")
    add_run(db, weather, "succeeded", DUE - timedelta(hours=23, minutes=59), "Sunny.")
    add_run(db, briefing, "succeeded", DUE - timedelta(hours=25), "Yesterday's news.")
    add_run(db, briefing, "succeeded", DUE + timedelta(seconds=1), "Tomorrow's news.")
    add_run(db, briefing, "running", None, scheduled_for=DUE - timedelta(minutes=5))
    add_run(db, bobs, "succeeded", DUE - timedelta(hours=1), "Not Ada's.")
    steps = Steps(url)
    setting = steps.set(ada, AT)
    assert (setting.channel, setting.next_at) == ("in_app", DUE)

    assert steps.sweep(WRITE - timedelta(seconds=1)) == DigestSweep(0, 0, ())
    assert steps.sweep(WRITE) == DigestSweep(1, 1, ())
    assert steps.sweep(WRITE + timedelta(minutes=1)) == DigestSweep(0, 0, ())

    (note,) = digests(db)
    assert (note.user_id, note.run_id, note.task_id) == (ada, None, None)
    assert (note.channel, note.status, note.dedupe_key) == (
        "in_app",
        "delivered",
        "digest:2026-11-29",
    )
    assert note.title == "Your day: 3 runs, 1 failed — Sun 29 Nov"
    body = note.body
    assert "Weather: failed after 3 attempts: timeout" in body
    assert "- 09:00 Morning briefing: Three meetings today." in body  # 00:00 UTC, in Tokyo
    assert "Sunny." in body
    assert body.index("Failed:") < body.index("Succeeded:")
    for other in ("Yesterday's news", "Tomorrow's news", "Not Ada's", "running"):
        assert other not in body
    assert next_digest_at(db, ada) == NEXT


def test_a_digest_claimed_again_is_not_written_twice_and_nothing_is_lost(url: str, db: Db) -> None:
    ada, (task,) = create_user(url, "Ada", "Briefing")
    add_run(db, task, "succeeded", DUE - timedelta(hours=1), "Before the digest.")
    steps = Steps(url)
    steps.set(ada, AT)
    assert steps.sweep(WRITE).written == 1
    add_run(db, task, "succeeded", DUE + timedelta(seconds=2), "Just after the digest.")
    # As if a second sweep had claimed the same digest (an advance lost, a clock behind):
    update_user(db, ada, next_digest_at=DUE)
    assert steps.sweep(WRITE + timedelta(seconds=5)) == DigestSweep(1, 0, ())
    assert len(digests(db)) == 1  # the date's digest exists: the unique key refuses another
    assert next_digest_at(db, ada) == NEXT
    # The next day's digest starts where the last written one ended: the run is not lost.
    assert steps.sweep(NEXT + SETTLE).written == 1
    first, second = digests(db)
    assert "Before the digest." in first.body and "Just after" not in first.body
    assert "Just after the digest." in second.body and "Before" not in second.body
    assert second.dedupe_key == "digest:2026-11-30"


def test_moving_the_time_earlier_leaves_no_gap(url: str, db: Db) -> None:
    ada, (task,) = create_user(url, "Ada", "Briefing")
    steps = Steps(url)
    steps.set(ada, AT)
    add_run(db, task, "succeeded", DUE - timedelta(hours=1), "Sunday.")
    assert steps.sweep(WRITE).written == 1
    monday_7 = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)  # 07:00 in Tokyo
    assert steps.set(ada, time(7), now=WRITE).next_at == monday_7
    add_run(db, task, "succeeded", DUE + timedelta(hours=3), "Sunday night.")  # 23:00 in Tokyo
    assert steps.sweep(monday_7 + SETTLE).written == 1
    second = digests(db)[1]
    assert "Sunday night." in second.body and "Sunday." not in second.body
    assert second.dedupe_key == "digest:2026-11-30"


def test_concurrent_sweeps_write_each_digest_once(url: str, db: Db) -> None:
    users = [create_user(url, f"User{i}", "Briefing") for i in range(12)]
    steps = Steps(url)
    for user_id, (task,) in users:
        add_run(db, task, "succeeded", DUE - timedelta(hours=1), "Done.")
        steps.set(user_id, AT)

    async def both() -> list[DigestSweep]:
        engines = [make_async_engine(url, pooled=False) for _ in range(2)]
        try:
            return list(await asyncio.gather(*(due_digests(e, WRITE, batch=5) for e in engines)))
        finally:
            for engine in engines:
                await engine.dispose()

    first, second = asyncio.run(both())
    assert first.users + second.users == 12
    assert first.written + second.written == 12
    notes = digests(db)
    assert sorted(n.user_id for n in notes) == sorted(u for u, _ in users)
    assert {n.dedupe_key for n in notes} == {"digest:2026-11-29"}


def test_after_downtime_one_digest_covers_every_missed_day(url: str, db: Db) -> None:
    ada, (task,) = create_user(url, "Ada", "Briefing")
    missed = DUE - timedelta(days=3)  # Thursday 26 November, 20:00 in Tokyo
    for days in (4, 3, 2, 1):
        finished = DUE - timedelta(days=days) + timedelta(hours=1)
        add_run(db, task, "succeeded", finished, f"Day -{days}.")
    steps = Steps(url)
    assert steps.set(ada, AT, now=missed - timedelta(hours=1)).next_at == missed
    back = DUE + timedelta(hours=1)
    assert steps.sweep(back) == DigestSweep(1, 1, ())
    assert steps.sweep(back + timedelta(minutes=1)) == DigestSweep(0, 0, ())
    (note,) = digests(db)
    assert note.dedupe_key == "digest:2026-11-29"
    assert note.title == "Since Wed 25 Nov: 4 runs"
    assert all(f"Day -{days}." in note.body for days in (4, 3, 2, 1))
    assert next_digest_at(db, ada) == NEXT


def test_a_day_without_runs_sends_nothing(url: str, db: Db) -> None:
    ada, (task,) = create_user(url, "Ada", "Briefing")
    add_run(db, task, "succeeded", DUE - timedelta(days=2), "Too old.")
    steps = Steps(url)
    steps.set(ada, AT)
    assert steps.sweep(WRITE) == DigestSweep(1, 0, ())
    assert digests(db) == []
    assert next_digest_at(db, ada) == NEXT


def test_setting_checks_the_channel_and_off_clears_everything(url: str, db: Db) -> None:
    ada, _ = create_user(url, "Ada")
    steps = Steps(url)
    with pytest.raises(ValidationError) as caught:
        steps.set(ada, AT, "email")  # a legacy name is no channel of hers
    assert caught.value.field == "channel" and "pa channel add email URL" in caught.value.message
    with pytest.raises(ValidationError) as bad_name:
        steps.set(ada, AT, "Not A Name")
    assert bad_name.value.field == "channel"
    with pytest.raises(NotFoundError):
        steps.set(ada + 100, AT)
    assert next_digest_at(db, ada) is None
    steps.add_channel(ada, "hook", "json://127.0.0.1:9/hook")
    assert steps.set(ada, AT, "hook").channel == "hook"
    kept = steps.set(ada, time(7, 30))
    assert (kept.at, kept.channel) == (time(7, 30), "hook")
    assert kept.next_at == datetime(2026, 11, 29, 22, 30, tzinfo=UTC)
    assert steps.set(ada, None) == DigestSetting(ada, ZONE, None, None, None)
    with Session(db.engine) as session:
        user = session.get(User, ada)
        assert user is not None
        assert (user.digest_at, user.digest_channel, user.next_digest_at) == (None, None, None)
    assert steps.sweep(NEXT + timedelta(days=5)) == DigestSweep(0, 0, ())


def test_the_digest_is_an_email_through_a_real_smtp_server(url: str, db: Db) -> None:
    ada, (briefing, weather) = create_user(url, "Ada", "Morning briefing", "Weather")
    ten, five = DUE - timedelta(hours=10), DUE - timedelta(hours=3)  # 10:00 and 17:00 in Tokyo
    add_run(db, briefing, "succeeded", ten + timedelta(minutes=1), "Three meetings today.", ten)
    add_run(
        db, weather, "failed", five + timedelta(minutes=1), "failed after 1 attempt: no data", five
    )
    steps = Steps(url)
    with SmtpServer() as smtp:
        steps.add_channel(ada, "mail", smtp.url("ada@example.org"))
        steps.set(ada, AT, "mail")
        sweep = steps.sweep(WRITE)
        assert (sweep.written, len(sweep.pending)) == (1, 1)
        assert smtp.messages == []  # written first, delivered by the outbox
        report = steps.deliver(sweep.pending, WRITE + timedelta(seconds=1))
        assert (report.delivered, report.failed, report.retry) == (1, 0, 0)
        assert steps.deliver(sweep.pending, WRITE + timedelta(seconds=2)).delivered == 0
        assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["Subject"] == "Your day: 2 runs, 1 failed — Sun 29 Nov"
    assert message["To"] == "ada@example.org"
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    text = part.get_content()
    assert "- 10:00 Morning briefing: Three meetings today." in text
    assert "- 17:00 Weather: failed after 1 attempt: no data" in text
    assert text.index("Weather") < text.index("Morning briefing")
    (note,) = digests(db)
    assert (note.status, note.attempts, note.channel) == ("delivered", 1, "mail")


def test_quiet_hours_hold_a_digest_until_they_end(url: str, db: Db) -> None:
    ada, (task,) = create_user(url, "Ada", "Briefing")
    add_run(db, task, "succeeded", DUE - timedelta(hours=1), "Done.")
    update_user(db, ada, quiet_start=time(19), quiet_end=time(7))
    morning = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)  # 07:00 in Tokyo
    steps = Steps(url)
    with HookServer() as hook:
        steps.add_channel(ada, "hook", hook.url())
        steps.set(ada, AT, "hook")
        pending = steps.sweep(WRITE).pending
        assert steps.deliver(pending, WRITE).deferred == 1
        assert steps.deliver(pending, morning).delivered == 1
    assert [body["title"] for body in hook.received] == ["Your day: 1 run — Sun 29 Nov"]


def test_a_permanent_failure_breaks_the_channel_with_one_notice(url: str, db: Db) -> None:
    ada, (task,) = create_user(url, "Ada", "Briefing")
    add_run(db, task, "succeeded", DUE - timedelta(hours=1), "Done.")
    steps = Steps(url)
    with HookServer(statuses=(401,)) as hook:
        steps.add_channel(ada, "hook", hook.url())
        steps.set(ada, AT, "hook")
        pending = steps.sweep(WRITE).pending
        assert steps.deliver(pending, WRITE).failed == 1
    assert db.scalar("SELECT status FROM notification_channels") == "broken"
    with Session(db.engine) as session:
        notice = session.scalars(
            select(Notification).where(Notification.channel == "in_app:hook")
        ).one()
    assert (notice.run_id, notice.task_id, notice.status) == (None, None, "delivered")
    assert notice.title == "Channel 'hook' stopped working"


def test_send_daily_digests_through_a_real_worker_and_broker(
    stack_env: dict[str, str], processes: ProcessGroup
) -> None:
    """The Celery task on the real stack: the beat entry's message, sent by hand."""
    url = stack_env["DATABASE_URL"]
    db = Db(url)
    try:
        now = datetime.now(UTC)
        at = (
            (now - timedelta(minutes=5))
            .astimezone(ZoneInfo(ZONE))
            .time()
            .replace(second=0, microsecond=0)
        )
        ada, (task,) = create_user(url, "Ada", "Morning briefing")
        steps = Steps(url)
        with SmtpServer() as smtp:
            steps.add_channel(ada, "mail", smtp.url("ada@example.org"))
            due = steps.set(ada, at, "mail", now=now - timedelta(days=1)).next_at
            assert due is not None and due <= now
            add_run(db, task, "succeeded", due - timedelta(hours=2), "Three meetings today.")
            processes.worker(stack_env)
            client = client_app(settings_for(stack_env))
            client.send_task(DIGEST_TASK)
            wait_until(lambda: smtp.messages, timeout=60, message="the digest email")
        text = smtp.messages[0].get_body(preferencelist=("plain",))
        assert text is not None and "Morning briefing: Three meetings today." in text.get_content()
        assert smtp.messages[0]["Subject"].startswith("Your day: 1 run — ")
        assert len(smtp.messages) == 1
        assert db.scalar("SELECT count(*) FROM notifications") == 1
        assert db.scalar("SELECT status FROM notifications") == "delivered"
        assert next_digest_at(db, ada) == due + timedelta(days=1)
    finally:
        db.close()
