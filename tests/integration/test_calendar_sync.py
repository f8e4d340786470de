"""Calendar sync on real databases (PostgreSQL and SQLite) against a real HTTP server on
loopback serving the ICS: a feed turns into reminders; editing it and syncing again updates
them without duplicates; failures keep the events; concurrent syncs do not duplicate; removing
a feed removes its future reminders; a real worker syncs through the broker and the reminder
fires into an in-app notification."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from personal_assistant.calendars import fetch as calendar_fetch
from personal_assistant.calendars import store as calendar_store
from personal_assistant.calendars import sync as calendar_sync
from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.tasks.manager import AITaskManager
from support.ics_server import IcsServer, vcalendar, vevent
from support.outbound import LOOPBACK
from support.processes import ProcessGroup, wait_until
from support.stack import Db, client_app, run, settings_for

pytestmark = pytest.mark.integration

T = TypeVar("T")
PARIS = "Europe/Paris"
NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)  # a Sunday; Paris is UTC+1 until 29 March
SECRET = "s3cretTokenValue42"
SYNC = "personal_assistant.workers.tasks.sync_tasks."


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


STANDUP = (
    "DTSTART;TZID=Europe/Paris:20260302T093000",
    "DTEND;TZID=Europe/Paris:20260302T100000",
    "RRULE:FREQ=WEEKLY;COUNT=5",
)
LUNCH = vevent("lunch@x", "Lunch", "DTSTART:20260305T120000Z", "DTEND:20260305T130000Z")
SOON = vevent("soon@x", "Soon", "DTSTART:20260301T081000Z")  # its reminder time has passed
PAST = vevent("past@x", "Past", "DTSTART:20260228T100000Z")

FEED_V1 = vcalendar(
    vevent(
        "dentist@x",
        "Dentist",
        "DTSTART;TZID=Europe/Paris:20260303T100000",
        "DTEND;TZID=Europe/Paris:20260303T110000",
        "LOCATION:Rue de Rivoli 1",
    ),
    vevent("standup@x", "Stand-up", *STANDUP),
    vevent("birthday@x", "Birthday", "DTSTART;VALUE=DATE:20260306", "DTEND;VALUE=DATE:20260307"),
    LUNCH,
    SOON,
    PAST,
)
#: V1 edited: the dentist moved and renamed, one stand-up moved, one cancelled, the last one
#: excluded, the birthday deleted, a review added.
FEED_V2 = vcalendar(
    vevent(
        "dentist@x",
        "Dentist (moved)",
        "DTSTART;TZID=Europe/Paris:20260304T110000",
        "DTEND;TZID=Europe/Paris:20260304T120000",
        "LOCATION:Rue de Rivoli 1",
    ),
    vevent("standup@x", "Stand-up", *STANDUP, "EXDATE;TZID=Europe/Paris:20260330T093000"),
    vevent(
        "standup@x",
        "Stand-up (Tuesday)",
        "RECURRENCE-ID;TZID=Europe/Paris:20260316T093000",
        "DTSTART;TZID=Europe/Paris:20260317T100000",
        "DTEND;TZID=Europe/Paris:20260317T103000",
    ),
    vevent(
        "standup@x",
        "Stand-up",
        "RECURRENCE-ID;TZID=Europe/Paris:20260323T093000",
        "DTSTART;TZID=Europe/Paris:20260323T093000",
        "STATUS:CANCELLED",
    ),
    LUNCH,
    SOON,
    PAST,
    vevent("review@x", "Review", "DTSTART;TZID=Europe/Paris:20260310T140000"),
)


class Calendars:
    """The calendar store and sync on one database; each call in its own event loop."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _call(self, work: Callable[[Any], Coroutine[Any, Any, T]], *, pooled: bool = False) -> T:
        async def main() -> T:
            engine = make_async_engine(self.url, pooled=pooled)
            try:
                return await work(engine)
            finally:
                await engine.dispose()

        return run(main())

    def user(self, name: str = "Ada") -> int:
        async def create() -> int:
            settings = Settings(DATABASE_URL=self.url)  # type: ignore[call-arg]
            async with AITaskManager(settings, clock=lambda: NOW) as manager:
                return (await manager.create_user(name, timezone=PARIS)).id

        return run(create())

    def add(self, user_id: int, url: str, name: str = "work", **options: Any) -> int:
        spec = calendar_store.validate(name, url, **options)

        async def add(engine: Any) -> int:
            async with engine.begin() as conn:
                return (await calendar_store.add(conn, user_id, spec, now=NOW)).id  # type: ignore[no-any-return]

        return self._call(add)

    def sync(self, feed_id: int, now: datetime, **options: Any) -> calendar_sync.SyncReport:
        options.setdefault("fetch", calendar_fetch.fetcher(LOOPBACK))
        return self._call(lambda engine: calendar_sync.sync_feed(engine, feed_id, now, **options))

    def feed(self, feed_id: int) -> calendar_store.Feed:
        async def get(engine: Any) -> calendar_store.Feed:
            async with engine.connect() as conn:
                found = await calendar_store.by_id(conn, feed_id)
            assert found is not None
            return found

        return self._call(get)


@pytest.fixture
def db(url: str) -> Iterator[Db]:
    handle = Db(url)
    yield handle
    handle.close()


@pytest.fixture
def server() -> Iterator[IcsServer]:
    with IcsServer(FEED_V1) as feed:
        yield feed


def snapshot(db: Db) -> tuple[list[Any], list[Any]]:
    return (
        db.rows("SELECT * FROM calendar_events ORDER BY id"),
        db.rows("SELECT * FROM ai_tasks ORDER BY id"),
    )


def reminders(db: Db) -> list[tuple[Any, ...]]:
    """(title, next_run_at, occurrence_key, starts_at) per event, by reminder time."""
    rows = db.rows(
        "SELECT t.title, t.next_run_at, e.occurrence_key, e.starts_at FROM calendar_events e"
        " JOIN ai_tasks t ON t.id = e.task_id ORDER BY t.next_run_at, e.occurrence_key"
    )
    return [(title, _utc(run_at), key, _utc(start)) for title, run_at, key, start in rows]


def _utc(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def reminder(title: str, remind: str, start: str, key: str = "") -> tuple[Any, ...]:
    """A row of :func:`reminders`; times are ``MM-DDTHH:MM`` in 2026, UTC."""
    return (
        f"Reminder: {title}",
        at(f"2026-{remind}"),
        key and f"2026-{key}:00Z",
        at(f"2026-{start}"),
    )


V1_REMINDERS = [
    reminder("Soon", "03-01T08:00", "03-01T08:10"),  # its time had passed: fires now
    reminder("Stand-up", "03-02T08:15", "03-02T08:30", key="03-02T08:30"),
    reminder("Dentist", "03-03T08:45", "03-03T09:00"),
    reminder("Lunch", "03-05T11:45", "03-05T12:00"),
    reminder("Birthday", "03-06T08:00", "03-05T23:00"),  # all day: 09:00 local on the day
    reminder("Stand-up", "03-09T08:15", "03-09T08:30", key="03-09T08:30"),
    reminder("Stand-up", "03-16T08:15", "03-16T08:30", key="03-16T08:30"),
    reminder("Stand-up", "03-23T08:15", "03-23T08:30", key="03-23T08:30"),
    # summer time from 29 March: 09:30 in Paris is 07:30 UTC
    reminder("Stand-up", "03-30T07:15", "03-30T07:30", key="03-30T07:30"),
]


def test_a_feed_turns_into_reminders_and_edits_update_them_without_duplicates(
    url: str, db: Db, server: IcsServer
) -> None:
    calendars = Calendars(url)
    ada = calendars.user()
    feed_id = calendars.add(ada, server.url(), channels=["in_app", "email"])

    report = calendars.sync(feed_id, NOW)
    assert (report.created, report.updated, report.removed, report.error) == (9, 0, 0, None)
    assert reminders(db) == V1_REMINDERS
    tasks = db.rows(
        "SELECT task_type, schedule_kind, timezone, status, notification_channels, catch_up,"
        " user_id FROM ai_tasks"
    )
    assert {(*row[:4], tuple(_json(row[4])), *row[5:]) for row in tasks} == {
        ("reminder", "once", PARIS, "active", ("in_app", "email"), "once", ada)
    }
    description, context, schedule = db.rows(
        "SELECT description, ai_context, schedule FROM ai_tasks WHERE title = 'Reminder: Dentist'"
    )[0]
    assert description == (  # the subscription's instruction; the event's text is data
        'Remind me of an event from my calendar "work": Tuesday 3 March 2026, 10:00 to 11:00 '
        "(Europe/Paris). Its title, place and notes are in the calendar event data."
    )
    assert _json(context) == {
        "calendar": {
            "feed": "work",
            "uid": "dentist@x",
            "starts_at": "2026-03-03T09:00:00+00:00",
            "ends_at": "2026-03-03T10:00:00+00:00",
            "all_day": False,
            "when": "Tuesday 3 March 2026, 10:00 to 11:00 (Europe/Paris)",
            "summary": "Dentist",
            "location": "Rue de Rivoli 1",
            "description": "",
        }
    }
    assert _json(schedule) == {"kind": "once", "at": "2026-03-03T08:45:00+00:00", "timezone": PARIS}
    feed = calendars.feed(feed_id)
    assert (feed.last_synced_at, feed.next_sync_at, feed.last_error) == (
        NOW,
        NOW + timedelta(hours=1),
        None,
    )

    later = NOW + timedelta(hours=1)
    task_of = "SELECT task_id FROM calendar_events WHERE uid = :u AND occurrence_key = :k"
    dentist = db.scalar(task_of, u="dentist@x", k="")
    moved = db.scalar(task_of, u="standup@x", k="2026-03-16T08:30:00Z")
    server.body = FEED_V2
    report = calendars.sync(feed_id, later)
    assert (report.created, report.updated, report.removed, report.unchanged) == (1, 2, 3, 3)
    assert reminders(db) == [
        reminder("Soon", "03-01T08:00", "03-01T08:10"),  # past now: left alone
        reminder("Stand-up", "03-02T08:15", "03-02T08:30", key="03-02T08:30"),
        reminder("Dentist (moved)", "03-04T09:45", "03-04T10:00"),
        reminder("Lunch", "03-05T11:45", "03-05T12:00"),
        reminder("Stand-up", "03-09T08:15", "03-09T08:30", key="03-09T08:30"),
        reminder("Review", "03-10T12:45", "03-10T13:00"),
        # the moved instance keeps its key (its original start), and its reminder task
        reminder("Stand-up (Tuesday)", "03-17T08:45", "03-17T09:00", key="03-16T08:30"),
    ]
    assert db.scalar(task_of, u="dentist@x", k="") == dentist  # rewritten, not replaced
    assert db.scalar(task_of, u="standup@x", k="2026-03-16T08:30:00Z") == moved
    assert db.scalar("SELECT count(*) FROM ai_tasks") == 7  # the removed ones' tasks are gone
    assert db.scalar("SELECT count(*) FROM calendar_events WHERE task_id IS NULL") == 0

    before = snapshot(db)
    again = calendars.sync(feed_id, later)  # unchanged: the server says 304
    assert again.not_modified and (again.created, again.updated, again.removed) == (0, 0, 0)
    assert snapshot(db) == before

    full = calendars.sync(feed_id, NOW + timedelta(hours=7))  # a new period: read in full
    assert not full.not_modified
    assert (full.created, full.updated, full.removed, full.unchanged) == (0, 0, 0, 6)
    assert snapshot(db) == before
    assert server.statuses == [200, 200, 304, 200]
    assert [r.if_none_match is not None for r in server.requests] == [False, True, True, False]


def test_reminder_rows_are_those_the_manager_makes(url: str, db: Db, server: IcsServer) -> None:
    calendars = Calendars(url)
    ada = calendars.user()
    feed_id = calendars.add(ada, server.url(), channels=["in_app", "email"])
    calendars.sync(feed_id, NOW)
    synced = db.scalar("SELECT id FROM ai_tasks WHERE title = 'Reminder: Dentist'")
    title, description, context = db.rows(
        "SELECT title, description, ai_context FROM ai_tasks WHERE id = :t", t=synced
    )[0]

    async def create() -> int:
        settings = Settings(DATABASE_URL=url)  # type: ignore[call-arg]
        async with AITaskManager(settings, clock=lambda: NOW) as manager:
            task = await manager.create_task(
                ada,
                title,
                description=description,
                schedule={"kind": "once", "at": "2026-03-03T08:45:00+00:00"},
                ai_context=_json(context),
                notification_channels=["in_app", "email"],
            )
            return task.id

    made = run(create())
    columns = "SELECT * FROM ai_tasks WHERE id = :t"
    assert db.rows(columns, t=made)[0][1:] == db.rows(columns, t=synced)[0][1:]


def test_reminders_that_ran_paused_or_deleted_are_respected(
    url: str, db: Db, server: IcsServer
) -> None:
    """A reminder that ran stays, and its moved event gets a new one; a paused one is
    rewritten but stays paused; one its owner deleted is not made again."""
    calendars = Calendars(url)
    feed_id = calendars.add(calendars.user(), server.url())
    calendars.sync(feed_id, NOW)
    task_of = "SELECT task_id FROM calendar_events WHERE uid = :u AND occurrence_key = :k"
    dentist = db.scalar(task_of, u="dentist@x", k="")
    db.execute(
        "INSERT INTO task_runs (task_id, scheduled_for, state, attempt, queued_at)"
        " VALUES (:t, :at, 'succeeded', 1, :at)",
        t=dentist,
        at=NOW,
    )
    db.execute(
        "UPDATE ai_tasks SET status = 'completed', next_run_at = NULL WHERE id = :t", t=dentist
    )
    paused = db.scalar(task_of, u="standup@x", k="2026-03-16T08:30:00Z")  # moved in V2
    db.execute("UPDATE ai_tasks SET status = 'paused' WHERE id = :t", t=paused)
    deleted = db.scalar(task_of, u="lunch@x", k="")
    db.execute("DELETE FROM ai_tasks WHERE id = :t", t=deleted)

    server.body = FEED_V2.replace(b"SUMMARY:Lunch", b"SUMMARY:Lunch with Grace")
    report = calendars.sync(feed_id, NOW + timedelta(hours=1))
    assert (report.created, report.updated, report.removed) == (1, 3, 3)
    renewed = db.scalar(task_of, u="dentist@x", k="")
    assert renewed != dentist
    assert db.rows("SELECT title, status FROM ai_tasks WHERE id = :t", t=dentist) == [
        ("Reminder: Dentist", "completed")
    ]
    ((title, status, run_at),) = db.rows(
        "SELECT title, status, next_run_at FROM ai_tasks WHERE id = :t", t=renewed
    )
    assert (title, status, _utc(run_at)) == (
        "Reminder: Dentist (moved)",
        "active",
        at("2026-03-04T09:45"),
    )
    assert db.rows("SELECT title, status FROM ai_tasks WHERE id = :t", t=paused) == [
        ("Reminder: Stand-up (Tuesday)", "paused")
    ]
    assert db.scalar(task_of, u="lunch@x", k="") is None
    assert db.scalar("SELECT summary FROM calendar_events WHERE uid = 'lunch@x'") == (
        "Lunch with Grace"
    )
    assert db.scalar("SELECT count(*) FROM ai_tasks") == 7  # 9 - 1 deleted - 3 removed + 2 new


def test_failures_are_recorded_and_keep_the_events(url: str, db: Db, server: IcsServer) -> None:
    calendars = Calendars(url)
    feed_id = calendars.add(calendars.user(), server.url(f"/calendar.ics?token={SECRET}"))
    assert calendars.sync(feed_id, NOW).created == 9
    kept = snapshot(db)

    def fails(now: datetime, reason: str, **options: Any) -> None:
        report = calendars.sync(feed_id, now, **options)
        assert report.error is not None and report.error.startswith(reason), report.error
        feed = calendars.feed(feed_id)
        assert (feed.last_error, feed.last_synced_at) == (report.error, NOW)
        assert feed.next_sync_at == now + timedelta(hours=1)
        assert SECRET not in report.error and SECRET not in repr(feed)
        assert snapshot(db) == kept

    server.fail_next(500)
    fails(NOW + timedelta(minutes=1), "url: could not fetch: HTTP 500 Internal Server Error")
    server.body = b"<html><body>Please sign in</body></html>"
    fails(NOW + timedelta(minutes=2), "feed: is not an iCalendar (ICS) file")
    server.body = vcalendar(vevent("x@x", "No start"))
    fails(NOW + timedelta(minutes=3), "feed: event 'x@x' has no start (DTSTART)")
    server.body = FEED_V1
    server.hang = True
    quick = functools.partial(calendar_fetch.fetch_feed, timeout=0.3, policy=LOOPBACK)
    fails(
        NOW + timedelta(minutes=4),
        "url: could not fetch: timeout (no answer within 0.3 s)",
        fetch=quick,
    )
    server.hang = False
    db.execute(
        "UPDATE calendar_feeds SET url = :u WHERE id = :f",
        u=f"http://127.0.0.1:9/calendar.ics?token={SECRET}",
        f=feed_id,
    )
    fails(NOW + timedelta(minutes=5), "url: could not fetch: connection failed")
    db.execute("UPDATE calendar_feeds SET url = :u WHERE id = :f", u=server.url(), f=feed_id)

    recovered = calendars.sync(feed_id, NOW + timedelta(minutes=6))
    assert recovered.ok and recovered.not_modified  # the feed is as it was
    assert calendars.feed(feed_id).last_error is None
    assert snapshot(db)[0] == kept[0]


def test_concurrent_syncs_do_not_duplicate(url: str, db: Db, server: IcsServer) -> None:
    """Four syncs of one feed, each holding the fetched feed before any of them writes."""
    calendars = Calendars(url)
    feed_id = calendars.add(calendars.user(), server.url())

    async def four(engine: Any) -> list[calendar_sync.SyncReport]:
        fetched = asyncio.Barrier(4)

        async def fetch(*args: Any) -> calendar_fetch.Fetched:
            body = await calendar_fetch.fetch_feed(*args, policy=LOOPBACK)
            await fetched.wait()  # all four go on to write at once
            return body

        syncs = (calendar_sync.sync_feed(engine, feed_id, NOW, fetch=fetch) for _ in range(4))
        return list(await asyncio.gather(*syncs))

    reports = calendars._call(four, pooled=True)
    assert server.statuses == [200, 200, 200, 200]
    assert sorted((r.created, r.unchanged) for r in reports) == [(0, 9), (0, 9), (0, 9), (9, 0)]
    assert db.scalar("SELECT count(*) FROM calendar_events") == 9
    assert db.scalar("SELECT count(*) FROM ai_tasks") == 9


def test_removing_a_feed_deletes_its_events_and_unrun_reminders(
    url: str, db: Db, server: IcsServer
) -> None:
    calendars = Calendars(url)
    ada = calendars.user()
    feed_id = calendars.add(ada, server.url())
    calendars.add(ada, server.url("/other.ics"), name="home")
    calendars.sync(feed_id, NOW)
    soon = db.scalar("SELECT task_id FROM calendar_events WHERE uid = 'soon@x'")
    db.execute(
        "INSERT INTO task_runs (task_id, scheduled_for, state, attempt, queued_at)"
        " VALUES (:t, :at, 'succeeded', 1, :at)",
        t=soon,
        at=NOW,
    )

    async def remove(engine: Any) -> calendar_store.Removed:
        async with engine.begin() as conn:
            return await calendar_store.remove(conn, ada, "work")

    removed = calendars._call(remove)
    assert (removed.feed.name, removed.events, removed.reminders) == ("work", 9, 8)
    assert db.rows("SELECT id FROM ai_tasks") == [(soon,)]  # the one that ran stays
    assert db.scalar("SELECT count(*) FROM calendar_events") == 0
    assert db.rows("SELECT name FROM calendar_feeds") == [("home",)]


def test_due_feeds_are_claimed_once_per_lease(url: str, db: Db, server: IcsServer) -> None:
    calendars = Calendars(url)
    ada = calendars.user()
    work = calendars.add(ada, server.url())
    home = calendars.add(ada, server.url("/home.ics"), name="home")
    paused = calendars.add(ada, server.url("/paused.ics"), name="paused")
    db.execute("UPDATE calendar_feeds SET status = 'paused' WHERE id = :f", f=paused)

    def due(now: datetime) -> list[int]:
        return calendars._call(lambda engine: calendar_store.due_feeds(engine, now))

    async def two_sweeps(engine: Any) -> list[list[int]]:
        sweeps = (calendar_store.due_feeds(engine, NOW) for _ in range(2))
        return list(await asyncio.gather(*sweeps))

    first, second = calendars._call(two_sweeps, pooled=True)
    assert sorted(first + second) == [work, home]  # each claimed by one sweep
    assert due(NOW + timedelta(minutes=4)) == []  # leased
    assert sorted(due(NOW + calendar_store.SYNC_LEASE)) == [
        work,
        home,
    ]  # a lost sync: claimed again
    calendars.sync(work, NOW + timedelta(minutes=6))
    assert due(NOW + timedelta(minutes=12)) == [home]  # work's next sync is an hour later


def test_a_real_worker_syncs_through_the_broker_and_the_reminder_fires(
    stack_env: dict[str, str], processes: ProcessGroup
) -> None:
    url = stack_env["DATABASE_URL"]
    calendars = Calendars(url)
    ada = calendars.user()
    now = datetime.now(UTC)
    stamp = "%Y%m%dT%H%M%SZ"
    feed = vcalendar(
        vevent("soon@x", "Call Grace", f"DTSTART:{now + timedelta(minutes=5):{stamp}}"),
        vevent("later@x", "Flight", f"DTSTART:{now + timedelta(days=3):{stamp}}"),
    )
    db = Db(url)
    try:
        with IcsServer(feed) as server:
            feed_id = calendars.add(ada, server.url())
            processes.worker(stack_env)
            processes.beat(stack_env)
            client = client_app(settings_for(stack_env))
            result = client.send_task(SYNC + "sync_calendar", args=[feed_id]).get(timeout=60)
            assert (result["created"], result["error"]) == (2, None)
            assert db.scalar("SELECT count(*) FROM ai_tasks") == 2

            note = wait_until(
                lambda: db.rows(
                    "SELECT channel, status, title, body FROM notifications WHERE user_id = :u",
                    u=ada,
                ),
                timeout=60,
                message="the reminder's in-app notification",
            )
            assert [(c, s, t) for c, s, t, _ in note] == [
                ("in_app", "delivered", "Reminder: Call Grace")
            ]
            assert "Call Grace" in note[0][3]

            home = calendars.add(ada, server.url("/home.ics"), name="home")
            client.send_task(SYNC + "sync_calendars")
            wait_until(
                lambda: db.scalar(
                    "SELECT last_synced_at FROM calendar_feeds WHERE id = :f", f=home
                ),
                timeout=60,
                message="the sweep to sync the new feed",
            )
            assert db.scalar("SELECT count(*) FROM calendar_events") == 4
    finally:
        db.close()


# --- hostile feeds: the loop, NUL bytes, refusals, Outlook overrides ---------------------------

CORPUS = Path(__file__).parents[1] / "data" / "ical_corpus"
#: 20 endless hourly events since 1970 (690 bytes): 175,680 occurrences in a 366-day horizon,
#: and each rule is stepped through from 1970 before its first occurrence in the window
#: (refused before that now: calendars.ics estimates the steps, issue 10).
HOSTILE = vcalendar(
    *(
        vevent(f"h{i}@x", f"Hourly {i}", f"DTSTART:19700101T{i:02d}0000Z", "RRULE:FREQ=HOURLY")
        for i in range(20)
    )
)
#: The icalendar test file whose parse error holds a NUL byte (``BeGIN:\x00``).
NUL_FEED = CORPUS / "icalendar" / "calendars" / "fuzz_testcase_0_char_in_component_name.ics"
NUL_REFUSAL = (
    "feed: is not an iCalendar (ICS) file: no complete VCALENDAR (BEGIN:VCALENDAR to END:VCALENDAR)"
)


@pytest.mark.timeout(240)
def test_a_sync_never_blocks_the_event_loop(database_url: str) -> None:
    """The hostile feed is parsed off the loop: a ticker on the loop never waits long.

    Today's code held the loop for the whole expansion (20 to 40 s for this feed). The bound
    (2 s) is a correctness property with a wide margin for a loaded machine, not a benchmark:
    the parse takes seconds in its thread, and the loop still ticks every few milliseconds
    (0.03 s at most, measured). The thread the parse ran on is checked too.
    """
    calendars = Calendars(database_url)
    feed_id = calendars.add(calendars.user(), "http://127.0.0.1:9/hostile.ics", horizon_days=366)
    parsed_on: list[int] = []
    parse = calendar_sync.calendar_sandbox.call  # waits for the child that parses, blocking

    def recording(*args: Any, **kwargs: Any) -> Any:
        parsed_on.append(threading.get_ident())
        return parse(*args, **kwargs)

    async def fetch(*_: Any) -> calendar_fetch.Fetched:
        return calendar_fetch.Fetched(HOSTILE, None, None)

    async def measured(engine: Any) -> tuple[calendar_sync.SyncReport, float, int]:
        done = asyncio.Event()
        gaps = [0.0]

        async def ticker() -> None:
            last = time.monotonic()
            while not done.is_set():
                await asyncio.sleep(0.005)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        async def sync() -> calendar_sync.SyncReport:
            try:
                return await calendar_sync.sync_feed(engine, feed_id, NOW, fetch=fetch)
            finally:
                done.set()

        ticking = asyncio.create_task(ticker())
        report = await sync()
        await ticking
        return report, max(gaps), threading.get_ident()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(calendar_sync.calendar_sandbox, "call", recording)
        report, longest, loop_thread = calendars._call(measured)
    assert longest < 2.0, f"the event loop was blocked for {longest:.2f} s"
    assert parsed_on and loop_thread not in parsed_on
    assert report.error is not None and "too many repetitions to compute" in report.error


def test_a_parse_error_holding_a_nul_byte_is_recorded_with_a_clear_message(
    url: str, db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    """icalendar's fuzz file: the sync records the refusal (PostgreSQL refused the NUL byte
    the parser's message quoted, and the sync crashed) and no log line holds a NUL."""
    caplog.set_level(logging.INFO)
    calendars = Calendars(url)
    with IcsServer(NUL_FEED.read_bytes()) as server:
        feed_id = calendars.add(calendars.user(), server.url())
        report = calendars.sync(feed_id, NOW)
    assert report.error == NUL_REFUSAL
    feed = calendars.feed(feed_id)
    assert (feed.last_error, feed.next_sync_at) == (NUL_REFUSAL, NOW + timedelta(hours=1))
    assert db.scalar("SELECT count(*) FROM calendar_events") == 0
    assert all("\x00" not in record.getMessage() for record in caplog.records)
    assert "\x00" not in caplog.text


def test_a_refused_feed_is_parsed_once_until_it_changes(
    url: str, db: Db, server: IcsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed refused for its content is not parsed again while the same body comes back in
    the same 6-hour period; its error stays recorded. A new body, or a new period (the horizon
    moved), is parsed."""
    parses = [0]
    parse = calendar_sync.calendar_sandbox.call  # one call per parse, in a child process

    def counting(*args: Any, **kwargs: Any) -> Any:
        parses[0] += 1
        return parse(*args, **kwargs)

    monkeypatch.setattr(calendar_sync.calendar_sandbox, "call", counting)
    calendars = Calendars(url)
    feed_id = calendars.add(calendars.user(), server.url(), horizon_days=366)
    server.body = HOSTILE
    first = calendars.sync(feed_id, NOW)
    assert first.error is not None and "too many repetitions to compute" in first.error
    for minutes in (5, 10, 65):
        again = calendars.sync(feed_id, NOW + timedelta(minutes=minutes))
        assert again.error == first.error
        feed = calendars.feed(feed_id)
        assert (feed.last_error, feed.next_sync_at) == (
            first.error,
            NOW + timedelta(minutes=minutes + 60),
        )
    assert parses == [1]

    assert calendars.sync(feed_id, NOW + timedelta(hours=6)).error == first.error
    assert parses == [2]  # a new period: read again

    server.body = FEED_V1
    fixed = calendars.sync(feed_id, NOW + timedelta(hours=6, minutes=5))
    assert fixed.ok and fixed.created > 0 and parses == [3]
    assert calendars.feed(feed_id).last_error is None
    server.body = HOSTILE
    assert calendars.sync(feed_id, NOW + timedelta(hours=6, minutes=10)).error == first.error
    assert parses == [4]  # refused again: the body changed since the last refusal


OUTLOOK_UID = "040000008200E00074C5B7101A82E0080000000010BA5F3A1F4ADC01000000000000000010000000"
WINDOWS_ZONE = "\r\n".join(
    ["BEGIN:VTIMEZONE", "TZID:W. Europe Standard Time",
     "BEGIN:STANDARD", "DTSTART:16010101T030000", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100",
     "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10", "END:STANDARD",
     "BEGIN:DAYLIGHT", "DTSTART:16010101T020000", "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200",
     "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3", "END:DAYLIGHT",
     "END:VTIMEZONE"]
)  # fmt: skip
BIN_DAY = vevent(
    OUTLOOK_UID,
    "Bin day",
    "DTSTART;VALUE=DATE:20260302",
    "DTEND;VALUE=DATE:20260303",
    "RRULE:FREQ=WEEKLY;UNTIL=20260323;INTERVAL=1;BYDAY=MO;WKST=MO",
    "X-MICROSOFT-CDO-ALLDAYEVENT:TRUE",
)


@pytest.mark.parametrize(
    "recurrence_id",
    [
        'RECURRENCE-ID;TZID="W. Europe Standard Time":20260309T000000',
        "RECURRENCE-ID;VALUE=DATE:20260309",
    ],
    ids=["windows-zone-midnight", "value-date"],
)
def test_an_outlook_override_of_an_all_day_series_moves_its_reminder(
    url: str, db: Db, server: IcsServer, recurrence_id: str
) -> None:
    """Outlook/Exchange move one day of an all-day series: the reminder task of that day is
    moved (rewritten, same task), not deleted and made again."""
    calendars = Calendars(url)
    feed_id = calendars.add(calendars.user(), server.url())
    server.body = vcalendar(WINDOWS_ZONE, BIN_DAY)
    assert calendars.sync(feed_id, NOW).created == 4
    task_of = "SELECT task_id FROM calendar_events WHERE occurrence_key = '2026-03-09'"
    task = db.scalar(task_of)

    moved = vevent(
        OUTLOOK_UID,
        "Bin day (moved)",
        recurrence_id,
        "DTSTART;VALUE=DATE:20260310",
        "DTEND;VALUE=DATE:20260311",
        "X-MICROSOFT-CDO-ALLDAYEVENT:TRUE",
    )
    server.body = vcalendar(WINDOWS_ZONE, BIN_DAY, moved)
    report = calendars.sync(feed_id, NOW + timedelta(hours=1))
    assert (report.created, report.updated, report.removed, report.unchanged) == (0, 1, 0, 3)
    assert db.scalar(task_of) == task
    assert reminders(db)[1] == (
        "Reminder: Bin day (moved)",
        at("2026-03-10T08:00"),  # 09:00 in Paris on Tuesday 10 March
        "2026-03-09",
        at("2026-03-09T23:00"),
    )


def test_syncs_are_counted_by_result(url: str, db: Db, server: IcsServer) -> None:
    """``pa_calendar_syncs_total``: synced, failed (the fetch), refused (the body, and the same
    body again, not parsed)."""
    from prometheus_client import generate_latest

    from personal_assistant.metrics import instruments

    instruments.disable()
    made = instruments.enable()
    try:
        calendars = Calendars(url)
        feed_id = calendars.add(calendars.user(), server.url())
        assert calendars.sync(feed_id, NOW).ok
        server.fail_next(500)
        assert calendars.sync(feed_id, NOW + timedelta(minutes=1)).error is not None
        server.body = HOSTILE
        for minutes in (2, 3):
            assert calendars.sync(feed_id, NOW + timedelta(minutes=minutes)).error is not None
        text = generate_latest(made.registry).decode()
    finally:
        instruments.disable()
    assert 'pa_calendar_syncs_total{result="synced"} 1.0' in text
    assert 'pa_calendar_syncs_total{result="failed"} 1.0' in text
    assert 'pa_calendar_syncs_total{result="refused"} 2.0' in text
