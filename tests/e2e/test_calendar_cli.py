"""``pa calendar add|list|sync|remove``, run as a user runs them, against a feed on loopback."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.cli import Pa, ready
from support.ics_server import IcsServer, vcalendar, vevent

pytestmark = pytest.mark.e2e

SECRET = "s3cretTokenValue42"


@pytest.fixture
def pa(tmp_path: Path) -> Pa:
    return ready(tmp_path)


def _feed(*summaries: str) -> bytes:
    """One event a day from tomorrow, per summary (relative to now: the CLI's clock)."""
    start = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    start += timedelta(days=1)
    return vcalendar(
        *(
            vevent(f"e{i}@x", text, f"DTSTART:{start + timedelta(days=i):%Y%m%dT%H%M%SZ}")
            for i, text in enumerate(summaries)
        )
    )


def test_calendars_are_added_listed_synced_and_removed_with_urls_masked(pa: Pa) -> None:
    with IcsServer(_feed("Dentist", "Lunch", "Flight")) as server:
        url = server.url(f"/calendar.ics?token={SECRET}")
        added = pa.json("calendar", "add", "work", url, "--lead", "30", "--channel", "email")
        masked = f"http://127.0.0.1:{server.port}/calendar.ics?token=****"
        assert added["url"] == masked
        assert (added["lead_minutes"], added["channels"], added["status"]) == (
            30,
            ["email"],
            "active",
        )
        home = pa.ok("calendar", "add", "home", url.replace("http://", "webcal://"))
        assert home.splitlines() == [
            f"added calendar home: {masked.replace('http://', 'https://')}",
            "reminders 15 min before each event, 30 days ahead, to in_app; synced every 60 min "
            "(the first within a minute; now: `pa calendar sync home`)",
        ]

        assert pa.ok("calendar", "sync", "work") == (
            "synced work: 3 created, 0 updated, 0 removed, 0 unchanged\n"
        )
        assert (
            pa.ok("calendar", "sync", "work") == "synced work: not modified since the last sync\n"
        )
        server.body = _feed("Dentist", "Lunch with Grace")
        report = pa.json("calendar", "sync", "work")
        assert (report["created"], report["updated"], report["removed"]) == (0, 1, 1)

        listed = pa.json("calendar", "list")
        assert [(c["name"], c["upcoming_events"]) for c in listed] == [("home", 0), ("work", 2)]
        human = pa.ok("calendar", "list")
        assert "token=****" in human and SECRET not in human and "work" in human

        tasks = pa.json("task", "list")
        assert sorted(t["title"] for t in tasks) == [
            "Reminder: Dentist",
            "Reminder: Lunch with Grace",
        ]
        assert {t["notification_channels"][0] for t in tasks} == {"email"}

        removed = pa.json("calendar", "remove", "work")
        assert (removed["events"], removed["reminders_deleted"]) == (2, 2)
        assert SECRET not in json.dumps(removed)
    assert pa.json("task", "list") == []
    assert [c["name"] for c in pa.json("calendar", "list")] == ["home"]


def test_calendar_errors_name_the_field(pa: Pa) -> None:
    cases = [
        (("ftp://cal.example/a.ics",), 2, "error: url: scheme ftp:// is not supported"),
        (("https://cal.example/a.ics", "--lead", "-5"), 2, "error: lead_minutes: must be"),
        (("https://cal.example/a.ics", "--every", "1"), 2, "error: interval_minutes: must be"),
        (("https://cal.example/a.ics", "--channel", "pigeon"), 2, "error: channels: unknown"),
    ]
    for arguments, code, message in cases:
        bad = pa("calendar", "add", "work", *arguments)
        assert (bad.returncode, bad.stderr.startswith(message)) == (code, True), bad.stderr
    assert pa("calendar", "add", "Work Stuff", "https://cal.example/a.ics").returncode == 2
    pa.ok("calendar", "add", "work", "https://cal.example/a.ics")
    again = pa("calendar", "add", "work", "https://cal.example/b.ics")
    assert again.returncode == 4 and "error: name: a calendar named 'work' exists" in again.stderr
    missing = pa("calendar", "sync", "nope")
    assert missing.returncode == 3 and "error: name: no calendar named 'nope'" in missing.stderr
    assert pa("calendar", "remove", "nope").returncode == 3


def test_a_failing_sync_says_why_and_keeps_the_error(pa: Pa) -> None:
    with IcsServer(b"<html>Sign in first</html>") as server:
        pa.ok("calendar", "add", "work", server.url(f"/c.ics?token={SECRET}"))
        done = pa("calendar", "sync", "work")
        assert done.returncode == 6
        assert done.stdout.startswith("sync of work failed: feed: is not an iCalendar (ICS) file")
        server.fail_next(503)
        report = json.loads(pa("calendar", "sync", "work", "--json").stdout)
    assert report["error"] == "url: could not fetch: HTTP 503 Service Unavailable"
    (listed,) = pa.json("calendar", "list")
    assert listed["last_error"] == report["error"] and listed["last_synced_at"] is None
    assert SECRET not in json.dumps(listed)


NUL_FEED = (
    Path(__file__).parents[1]
    / "data"
    / "ical_corpus"
    / "icalendar"
    / "calendars"
    / "fuzz_testcase_0_char_in_component_name.ics"
)


def test_a_feed_whose_parse_error_holds_a_nul_byte_fails_cleanly_on_postgresql(
    tmp_path: Path, database_url: str
) -> None:
    """icalendar's fuzz file: `pa calendar sync` used to exit 1 with a traceback (PostgreSQL
    refused the NUL byte quoted by the parser's message); now it says what is wrong, keeps the
    error, and no output holds a NUL."""
    pa = Pa(tmp_path)
    pa.env["DATABASE_URL"] = database_url
    pa.ok("db", "upgrade")
    pa.ok("user", "add", "Ada", "--tz", "Europe/Paris")
    expected = (
        "feed: is not an iCalendar (ICS) file: no complete VCALENDAR "
        "(BEGIN:VCALENDAR to END:VCALENDAR)"
    )
    with IcsServer(NUL_FEED.read_bytes()) as server:
        pa.ok("calendar", "add", "work", server.url())
        done = pa("calendar", "sync", "work")
        again = pa("calendar", "sync", "work", "--json")
    assert (done.returncode, done.stdout, done.stderr) == (
        6,
        f"sync of work failed: {expected}\n",
        "",
    )
    assert again.returncode == 6 and json.loads(again.stdout)["error"] == expected
    (listed,) = pa.json("calendar", "list")
    assert listed["last_error"] == expected
    assert "\x00" not in done.stdout + again.stdout + pa.ok("calendar", "list")
