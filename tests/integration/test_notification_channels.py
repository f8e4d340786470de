"""Delivery through users' channels to real servers on loopback: an SMTP server (aiosmtpd) and
an HTTP webhook receiver. ``deliver`` and ``due`` are driven with a chosen ``now`` (the service's
clock): no sleeps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from personal_assistant.database.engine import make_async_engine
from personal_assistant.notifications import channels
from personal_assistant.notifications.delivery import (
    DeliveryReport,
    NotificationService,
)
from personal_assistant.notifications.transports import apprise_urls
from support.hook_server import HookServer, SmtpServer
from support.keys import CIPHER
from support.outbound import LOOPBACK
from support.stack import Db

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 10, 10, 0, tzinfo=UTC)
ANSWER = "Three meetings today; the first at 09:30 with Ada."
SECRET = "s3cretTokenValue42"


@pytest.fixture
def db(database_url: str) -> Iterator[Db]:
    handle = Db(database_url)
    yield handle
    handle.close()


def insert(db: Db, sql: str, **params: Any) -> int:
    with db.engine.begin() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def seed(
    db: Db,
    names: Sequence[str],
    *,
    runs: int = 1,
    timezone: str = "UTC",
    quiet: tuple[str, str] | None = None,
) -> list[int]:
    """Lou, a task 'Digest' notifying ``names``, ``runs`` succeeded runs with a pending
    notification per channel; returns the notification ids."""
    user = insert(
        db,
        "INSERT INTO users (display_name, email, timezone, quiet_start, quiet_end, created_at)"
        " VALUES ('Lou', 'lou@example.org', :tz, CAST(:qs AS time), CAST(:qe AS time), now())"
        " RETURNING id",
        tz=timezone,
        qs=quiet and quiet[0],
        qe=quiet and quiet[1],
    )
    task = insert(
        db,
        "INSERT INTO ai_tasks (user_id, title, description, task_type, schedule_kind, schedule,"
        " timezone, status, ai_context, notification_channels, catch_up, max_retries,"
        " consecutive_failures, created_at, updated_at) VALUES (:u, 'Digest', '', 'reminder',"
        " 'once', '{}', 'UTC', 'completed', '{}', CAST(:names AS json), 'once', 3, 0, now(),"
        " now()) RETURNING id",
        u=user,
        names=json.dumps(list(names)),
    )
    ids = []
    for i in range(runs):
        run = insert(
            db,
            "INSERT INTO task_runs (task_id, scheduled_for, state, attempt, queued_at, result)"
            " VALUES (:t, :at, 'succeeded', 1, :at, :result) RETURNING id",
            t=task,
            at=NOW - timedelta(minutes=runs - i),
            result=ANSWER,
        )
        for name in names:
            ids.append(
                insert(
                    db,
                    "INSERT INTO notifications (run_id, task_id, user_id, channel, status, title,"
                    " body, attempts, created_at, next_attempt_at) VALUES (:r, :t, :u, :c,"
                    " 'pending', 'Digest', :body, 0, :now, :now) RETURNING id",
                    r=run,
                    t=task,
                    u=user,
                    c=name,
                    body=ANSWER,
                    now=NOW,
                )
            )
    return ids


def add_channel(db: Db, name: str, url: str, cap: int | None = None) -> None:
    spec = apprise_urls.validate(name, url, cap)
    db.execute(
        "INSERT INTO notification_channels (user_id, name, kind, url_sealed, url_masked, status,"
        " daily_cap, created_at) VALUES ((SELECT max(id) FROM users), :n, :k, :url, :masked,"
        " 'active', :cap, now())",
        n=spec.name,
        k=spec.kind,
        url=CIPHER.seal(spec.url),
        masked=channels.mask_apprise_url(spec.url),
        cap=spec.daily_cap,
    )


class Steps:
    """``deliver`` and ``due`` on a service whose clock reads ``now``, each in its own event
    loop."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def _with_service(self, now: datetime, method: str, *args: object) -> object:
        engine = make_async_engine(self.url, pooled=False)
        try:
            service = NotificationService(
                engine, clock=lambda: now, cipher=CIPHER, outbound=LOOPBACK
            )
            return await getattr(service, method)(*args)
        finally:
            await engine.dispose()

    def deliver(self, ids: Sequence[int], now: datetime) -> DeliveryReport:
        report = asyncio.run(self._with_service(now, "deliver", list(ids)))
        assert isinstance(report, DeliveryReport)
        return report

    def due(self, now: datetime) -> list[int]:
        found = asyncio.run(self._with_service(now, "due", now))
        assert isinstance(found, list)
        return found


def test_email_arrives_through_a_real_smtp_server(database_url: str, db: Db) -> None:
    (note,) = seed(db, ["mail"])
    steps = Steps(database_url)
    with SmtpServer() as smtp:
        add_channel(db, "mail", smtp.url())
        report = steps.deliver([note], NOW)
        assert (report.delivered, report.failed, report.retry) == (1, 0, 0)
        assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["Subject"] == "Digest"
    assert message["To"] == "lou@example.org"
    assert message["Idempotency-Key"] == f"pa-notification-{note}"
    body = message.get_body(preferencelist=("plain",))
    assert body is not None and ANSWER in body.get_content()
    assert db.rows("SELECT status, attempts, last_error FROM notifications") == [
        ("delivered", 1, None)
    ]


def test_smtp_login_is_used_and_a_refused_one_breaks_the_channel(database_url: str, db: Db) -> None:
    sent, refused = seed(db, ["mail"], runs=2)
    steps = Steps(database_url)
    with SmtpServer(login=("lou", "right")) as smtp:
        add_channel(db, "mail", smtp.url(login=("lou", "right")))
        assert steps.deliver([sent], NOW).delivered == 1
        assert len(smtp.messages) == 1
        wrong = CIPHER.seal(smtp.url(login=("lou", SECRET)))
        db.execute("UPDATE notification_channels SET url_sealed = :u", u=wrong)
        assert steps.deliver([refused], NOW).failed == 1  # at once: no retry can fix a login
        assert steps.due(NOW + timedelta(days=1)) == []
        assert len(smtp.messages) == 1
        assert smtp.logins[0] == ("lou", True) and ("lou", False) in smtp.logins
    status, reason = db.rows("SELECT status, broken_reason FROM notification_channels")[0]
    assert status == "broken" and "535" in reason and SECRET not in reason
    error = db.scalar("SELECT last_error FROM notifications WHERE id = :i", i=refused)
    assert "535" in error and SECRET not in error


def test_webhook_arrives_once_however_often_it_is_delivered(database_url: str, db: Db) -> None:
    (note,) = seed(db, ["hook"])
    steps = Steps(database_url)
    with HookServer() as hook:
        add_channel(db, "hook", hook.url())
        assert steps.deliver([note, note], NOW).delivered == 1
        assert steps.deliver([note], NOW + timedelta(minutes=1)).delivered == 0
    assert len(hook.received) == 1
    assert (hook.received[0]["title"], hook.received[0]["message"]) == ("Digest", ANSWER)
    assert hook.requests == [("/notify", 200)]


def test_a_flapping_channel_receives_exactly_one_copy(database_url: str, db: Db) -> None:
    (note,) = seed(db, ["hook"])
    steps = Steps(database_url)
    with HookServer(statuses=(500, 503)) as hook:
        add_channel(db, "hook", hook.url())
        assert steps.deliver([note], NOW).retry == 1
        assert steps.due(NOW) == []  # its next attempt is later
        later = NOW + timedelta(hours=2)
        assert steps.due(later) == [note]
        assert steps.deliver([note], later).retry == 1
        latest = later + timedelta(hours=2)
        assert steps.due(latest) == [note]
        assert steps.deliver([note], latest).delivered == 1
        assert steps.due(latest + timedelta(days=1)) == []
    assert [status for _, status in hook.requests] == [500, 503, 200]
    assert hook.keys == [f"pa-notification-{note}"] * 3  # one key however often it is sent
    assert len(hook.received) == 1
    assert db.rows("SELECT status, attempts, last_error FROM notifications") == [
        ("delivered", 3, None)
    ]
    assert db.scalar("SELECT status FROM notification_channels") == "active"


def test_a_permanent_failure_breaks_the_channel_and_tells_the_user_once(
    database_url: str, db: Db
) -> None:
    first, second = seed(db, ["hook"], runs=2)
    steps = Steps(database_url)
    with HookServer(statuses=(401,)) as hook:
        add_channel(db, "hook", hook.url(f"/notify?token={SECRET}"))
        assert steps.deliver([first], NOW).failed == 1
        assert steps.deliver([second], NOW).failed == 1
    assert len(hook.requests) == 1  # the broken channel is not tried again
    status, reason = db.rows("SELECT status, broken_reason FROM notification_channels")[0]
    assert status == "broken" and "401" in reason
    rows = db.rows("SELECT id, status, last_error FROM notifications WHERE channel = 'hook'")
    assert {r.id: r.status for r in rows} == {first: "failed", second: "failed"}
    errors = {r.id: r.last_error for r in rows}
    assert "401" in errors[first]
    assert errors[second].startswith("channel 'hook' is broken: ")
    notices = db.rows(
        "SELECT channel, status, title, body FROM notifications WHERE id > :s", s=second
    )
    assert len(notices) == 1
    channel, notice_status, title, body = notices[0]
    assert (channel, notice_status) == ("in_app:hook", "delivered")
    assert title == "Channel 'hook' stopped working"
    assert "pa channel test hook" in body and "401" in body
    stored = " ".join([reason, body, *errors.values()])
    assert SECRET not in stored and "token=****" in body


def test_a_missing_channel_fails_with_how_to_add_it(database_url: str, db: Db) -> None:
    (note,) = seed(db, ["email"])
    assert Steps(database_url).deliver([note], NOW).failed == 1
    assert db.rows("SELECT status, last_error FROM notifications") == [
        ("failed", "no channel named 'email': add one with `pa channel add email URL`")
    ]


def test_quiet_hours_defer_delivery_to_their_end(database_url: str, db: Db) -> None:
    (note,) = seed(db, ["hook"], timezone="Europe/Paris", quiet=("22:00", "07:00"))
    steps = Steps(database_url)
    late = datetime(2026, 1, 10, 22, 30, tzinfo=UTC)  # 23:30 in Paris
    morning = datetime(2026, 1, 11, 6, 0, tzinfo=UTC)  # 07:00 in Paris
    with HookServer() as hook:
        add_channel(db, "hook", hook.url())
        report = steps.deliver([note], late)
        assert (report.deferred, report.delivered, report.retry) == (1, 0, 0)
        assert db.rows("SELECT status, attempts, next_attempt_at FROM notifications") == [
            ("pending", 0, morning)
        ]
        assert steps.due(morning - timedelta(seconds=1)) == []
        assert steps.due(morning) == [note]
        assert steps.deliver([note], morning).delivered == 1
    assert len(hook.received) == 1


def test_over_the_daily_cap_waits_for_the_next_local_day(database_url: str, db: Db) -> None:
    first, second, third = seed(db, ["hook"], runs=3, timezone="America/New_York")
    steps = Steps(database_url)
    midnight = datetime(2026, 1, 11, 5, 0, tzinfo=UTC)  # 00:00 in New York
    with HookServer() as hook:
        add_channel(db, "hook", hook.url(), cap=2)
        report = steps.deliver([first, second, third], NOW)
        assert (report.delivered, report.deferred) == (2, 1)
        assert db.scalar("SELECT next_attempt_at FROM notifications WHERE id = :i", i=third) == (
            midnight
        )
        assert steps.due(midnight) == [third]
        assert steps.deliver([third], midnight).delivered == 1
    assert len(hook.received) == 3
