"""The pure calendar core: ICS -> occurrences (recurrence, overrides, cancellations, zones,
DST), reminder times, fingerprints, what a sync changes, and what a reminder says."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from personal_assistant.calendars import ics as cal
from personal_assistant.calendars.periods import conditional
from personal_assistant.calendars.plan import Stored, plan_sync
from personal_assistant.calendars.reminders import (
    fingerprint,
    fire_at,
    reminder_at,
    reminder_description,
    reminder_title,
)
from personal_assistant.errors import ValidationError
from support.ics_server import vcalendar, vevent

PARIS = "Europe/Paris"
NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def parse(*events: str, tz: str = PARIS, now: datetime = NOW, days: int = 40) -> list[tuple]:  # type: ignore[type-arg]
    found = cal.parse_feed(vcalendar(*events), timezone=tz, now=now, horizon_days=days)
    return [(o.uid, o.key, o.starts_at, o.all_day) for o in found]


WEEKLY = (
    "DTSTART;TZID=Europe/Paris:20260302T093000",
    "DTEND;TZID=Europe/Paris:20260302T100000",
    "RRULE:FREQ=WEEKLY;COUNT=5",
)


@pytest.mark.parametrize(
    ("events", "tz", "expected"),
    [
        pytest.param(
            [vevent("u", "UTC", "DTSTART:20260305T120000Z")],
            PARIS,
            [("u", "", at("2026-03-05T12:00"), False)],
            id="utc",
        ),
        pytest.param(
            [vevent("u", "New York", "DTSTART;TZID=America/New_York:20260305T090000")],
            PARIS,
            [("u", "", at("2026-03-05T14:00"), False)],
            id="tzid-honoured",
        ),
        pytest.param(
            [vevent("u", "Floating", "DTSTART:20260305T090000")],
            PARIS,
            [("u", "", at("2026-03-05T08:00"), False)],
            id="floating-in-the-users-zone",
        ),
        pytest.param(
            [vevent("u", "Floating", "DTSTART:20260305T090000")],
            "Asia/Tokyo",
            [("u", "", at("2026-03-05T00:00"), False)],
            id="floating-in-another-users-zone",
        ),
        pytest.param(
            [vevent("u", "Birthday", "DTSTART;VALUE=DATE:20260306", "DTEND;VALUE=DATE:20260307")],
            PARIS,
            [("u", "", at("2026-03-05T23:00"), True)],
            id="all-day-at-local-midnight",
        ),
        pytest.param(
            [
                vevent(
                    "u",
                    "Brunch",
                    "DTSTART;TZID=Europe/Paris:20260322T100000",
                    "RRULE:FREQ=WEEKLY;COUNT=3",
                )
            ],
            PARIS,
            [
                ("u", "2026-03-22T09:00:00Z", at("2026-03-22T09:00"), False),
                ("u", "2026-03-29T08:00:00Z", at("2026-03-29T08:00"), False),  # summer time
                ("u", "2026-04-05T08:00:00Z", at("2026-04-05T08:00"), False),
            ],
            id="weekly-across-the-spring-dst-change",
        ),
        pytest.param(
            [
                vevent("s", "Stand-up", *WEEKLY, "EXDATE;TZID=Europe/Paris:20260309T093000"),
                vevent(
                    "s",
                    "Stand-up (moved)",
                    "RECURRENCE-ID;TZID=Europe/Paris:20260316T093000",
                    "DTSTART;TZID=Europe/Paris:20260317T100000",
                    "DTEND;TZID=Europe/Paris:20260317T103000",
                ),
                vevent(
                    "s",
                    "Stand-up",
                    "RECURRENCE-ID;TZID=Europe/Paris:20260323T093000",
                    "DTSTART;TZID=Europe/Paris:20260323T093000",
                    "STATUS:CANCELLED",
                ),
            ],
            PARIS,
            [
                ("s", "2026-03-02T08:30:00Z", at("2026-03-02T08:30"), False),
                # the moved instance keeps the key of its original start
                ("s", "2026-03-16T08:30:00Z", at("2026-03-17T09:00"), False),
                ("s", "2026-03-30T07:30:00Z", at("2026-03-30T07:30"), False),
            ],
            id="weekly-with-exdate-a-moved-and-a-cancelled-instance",
        ),
        pytest.param(
            [vevent("u", "Off", "DTSTART:20260305T120000Z", "STATUS:CANCELLED")],
            PARIS,
            [],
            id="cancelled-event",
        ),
        pytest.param(
            [
                vevent("a", "Started", "DTSTART:20260301T075959Z"),
                vevent("b", "Now", "DTSTART:20260301T080000Z"),
                vevent("c", "Last", "DTSTART:20260410T080000Z"),
                vevent("d", "Beyond", "DTSTART:20260410T080001Z"),
            ],
            PARIS,
            [("c", "", at("2026-04-10T08:00"), False)],
            id="past-and-beyond-the-horizon",
        ),
        pytest.param(
            [vevent("u", "Gap", "DTSTART;TZID=Europe/Paris:20260329T023000")],
            PARIS,
            [("u", "", at("2026-03-29T01:00"), False)],  # 03:00 CEST, the end of the gap
            id="a-time-in-the-dst-gap-is-the-transition",
        ),
        pytest.param(
            [vevent("b", "Birthday", "DTSTART;VALUE=DATE:20260306", "RRULE:FREQ=YEARLY")],
            PARIS,
            [("b", "2026-03-06", at("2026-03-05T23:00"), True)],
            id="all-day-series-keyed-by-date",
        ),
    ],
)
def test_parse_feed(events: list[str], tz: str, expected: list[tuple]) -> None:  # type: ignore[type-arg]
    assert parse(*events, tz=tz) == expected


def test_a_time_in_the_dst_fold_is_its_first_occurrence() -> None:
    fold = vevent("u", "Fold", "DTSTART;TZID=Europe/Paris:20261025T023000")
    october = datetime(2026, 10, 1, tzinfo=UTC)
    assert parse(fold, now=october) == [("u", "", at("2026-10-25T00:30"), False)]  # CEST


def test_all_day_counts_as_upcoming_until_its_first_day_ends() -> None:
    birthday = vevent("b", "Birthday", "DTSTART;VALUE=DATE:20260306")
    during = datetime(2026, 3, 6, 22, 59, tzinfo=UTC)  # 23:59 in Paris
    assert parse(birthday, now=during) == [("b", "", at("2026-03-05T23:00"), True)]
    assert parse(birthday, now=during + timedelta(minutes=1)) == []


def test_texts_are_cleaned_and_ends_kept() -> None:
    event = vevent(
        "u",
        "  Team\\nmeeting ",
        "DTSTART:20260305T120000Z",
        "DTEND:20260305T130000Z",
        "LOCATION:Room 4",
        "DESCRIPTION:Agenda:\\n- budget\\n- hiring",
    )
    (found,) = cal.parse_feed(vcalendar(event), timezone=PARIS, now=NOW, horizon_days=30)
    assert found.summary == "Team meeting"
    assert found.description == "Agenda:\n- budget\n- hiring"
    assert found.location == "Room 4"
    assert found.ends_at == at("2026-03-05T13:00")


def test_an_event_without_uid_gets_a_stable_one() -> None:
    lines = "BEGIN:VEVENT\r\nSUMMARY:Anonymous\r\nDTSTART:20260305T120000Z\r\nEND:VEVENT"
    first = cal.parse_feed(vcalendar(lines), timezone=PARIS, now=NOW, horizon_days=30)
    again = cal.parse_feed(vcalendar(lines), timezone=PARIS, now=NOW, horizon_days=30)
    assert first[0].uid.startswith("no-uid-") and first[0].uid == again[0].uid


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(b"", "is empty", id="empty"),
        pytest.param(b"hello world", "is not an iCalendar (ICS) file", id="text"),
        pytest.param(b"<html><body>Sign in</body></html>", "not an iCalendar", id="html"),
        pytest.param(b"\xff\xfe\x00garbage", "not an iCalendar", id="binary"),
        pytest.param(
            b"BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20260305T120000Z\r\nEND:VEVENT\r\n",
            "no VCALENDAR",
            id="no-calendar",
        ),
        pytest.param(
            vcalendar(vevent("x", "No start")), "event 'x' has no start (DTSTART)", id="no-dtstart"
        ),
        pytest.param(
            vcalendar(vevent("x", "Bad start", "DTSTART:garbage")),
            "event 'x': its start (DTSTART) 'garbage' is not a date or a date-time",
            id="bad-dtstart",
        ),
        pytest.param(
            vcalendar(vevent("x", "Bad rule", "DTSTART:20260305T120000Z", "RRULE:FREQ=FOO")),
            "event 'x': its rule (RRULE) 'FREQ=FOO' cannot be read",
            id="bad-rule",
        ),
        pytest.param(
            vcalendar(vevent("x", "Spam", "DTSTART:20260305T120000Z", "RRULE:FREQ=MINUTELY")),
            "repeats every second or minute",
            id="every-minute",
        ),
        pytest.param(
            vcalendar(vevent("x", "Hourly", "DTSTART:20260305T120000Z", "RRULE:FREQ=HOURLY")),
            f"more than {cal.MAX_OCCURRENCES}",
            id="too-many-occurrences",
        ),
    ],
)
def test_a_malformed_feed_names_the_field_and_says_why(data: bytes, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        cal.parse_feed(data, timezone=PARIS, now=NOW, horizon_days=100)
    assert caught.value.field == "feed"
    assert reason in caught.value.message


def occurrence(start: str, *, all_day: bool = False, **changes: object) -> cal.Occurrence:
    base = cal.Occurrence(
        uid="u",
        key="",
        summary="Dentist",
        description="",
        location="",
        starts_at=at(start),
        ends_at=None,
        all_day=all_day,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("start", "all_day", "lead", "expected"),
    [
        pytest.param("2026-03-05T12:00", False, 15, "2026-03-05T11:45", id="timed"),
        pytest.param("2026-03-05T12:00", False, 0, "2026-03-05T12:00", id="timed-no-lead"),
        pytest.param("2026-03-05T12:00", False, 1440, "2026-03-04T12:00", id="timed-a-day"),
        pytest.param("2026-03-05T23:00", True, 15, "2026-03-06T08:00", id="all-day-09:00-local"),
        pytest.param("2026-03-05T23:00", True, 1439, "2026-03-06T08:00", id="all-day-<1-day"),
        pytest.param("2026-03-05T23:00", True, 1440, "2026-03-05T08:00", id="all-day-day-before"),
        pytest.param("2026-03-05T23:00", True, 2880, "2026-03-04T08:00", id="all-day-two-days"),
        # 29 March: the clocks go forward; 09:00 is 07:00 UTC that day, 08:00 UTC the day before
        pytest.param("2026-03-28T23:00", True, 0, "2026-03-29T07:00", id="all-day-on-dst-day"),
        pytest.param("2026-03-28T23:00", True, 1440, "2026-03-28T08:00", id="all-day-across-dst"),
    ],
)
def test_reminder_time(start: str, all_day: bool, lead: int, expected: str) -> None:
    got = reminder_at(occurrence(start, all_day=all_day), lead, ZoneInfo(PARIS))
    assert got == at(expected)


def test_a_reminder_whose_time_passed_fires_now() -> None:
    soon = occurrence("2026-03-01T08:05")
    assert fire_at(soon, 15, ZoneInfo(PARIS), NOW) == NOW
    assert fire_at(soon, 5, ZoneInfo(PARIS), NOW) == NOW
    assert fire_at(soon, 4, ZoneInfo(PARIS), NOW) == at("2026-03-01T08:01")


def test_fingerprint_follows_what_the_reminder_is_made_from() -> None:
    base = occurrence("2026-03-05T12:00")
    print_ = fingerprint(base, 15, PARIS)
    assert len(print_) == 64 and int(print_, 16) >= 0
    assert fingerprint(occurrence("2026-03-05T12:00"), 15, PARIS) == print_
    variants = [
        (replace(base, summary="Doctor"), 15, PARIS),
        (replace(base, description="Bring the card"), 15, PARIS),
        (replace(base, location="Rue X"), 15, PARIS),
        (replace(base, starts_at=at("2026-03-05T12:30")), 15, PARIS),
        (replace(base, ends_at=at("2026-03-05T13:00")), 15, PARIS),
        (replace(base, all_day=True), 15, PARIS),
        (base, 30, PARIS),
        (base, 15, "UTC"),
    ]
    prints = {fingerprint(*variant) for variant in variants}
    assert len(prints) == len(variants) and print_ not in prints


def stored(row_id: int, start: str, print_: str, *, key: str = "", all_day: bool = False) -> Stored:
    return Stored(row_id, "u", key, at(start), all_day, print_, task_id=100 + row_id)


def test_plan_sync_creates_updates_removes_and_leaves_the_past_alone() -> None:
    kept = occurrence("2026-03-05T12:00", key="k1")
    moved = occurrence("2026-03-06T12:00", key="k2")
    new = occurrence("2026-03-07T12:00", key="k3")
    today = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)
    rows = [
        stored(1, "2026-03-05T12:00", fingerprint(kept, 15, PARIS), key="k1"),
        stored(2, "2026-03-06T11:00", "old", key="k2"),
        stored(3, "2026-03-08T12:00", "gone", key="k4"),  # upcoming, not in the feed
        stored(4, "2026-03-06T09:00", "past", key="k5"),  # started, not in the feed: kept
        stored(5, "2026-03-05T23:00", "all-day", key="k6", all_day=True),  # today, all day
    ]
    plan = plan_sync(rows, [kept, moved, new], lead_minutes=15, timezone=PARIS, now=today)
    assert [o for o, _ in plan.create] == [new]
    assert plan.create[0][1] == fingerprint(new, 15, PARIS)
    assert [(c.stored.id, c.occurrence, c.moved) for c in plan.update] == [(2, moved, True)]
    assert sorted(s.id for s in plan.remove) == [3, 5]
    assert plan.unchanged == 1


def test_plan_sync_of_an_unchanged_feed_does_nothing() -> None:
    items = [occurrence(f"2026-03-0{d}T12:00", key=str(d)) for d in range(2, 6)]
    rows = [
        stored(i, f"2026-03-0{d}T12:00", fingerprint(o, 15, PARIS), key=str(d))
        for i, (d, o) in enumerate(zip(range(2, 6), items, strict=True))
    ]
    plan = plan_sync(rows, items, lead_minutes=15, timezone=PARIS, now=NOW)
    assert (plan.create, plan.update, plan.remove, plan.unchanged) == ((), (), (), 4)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        pytest.param(
            occurrence("2026-03-05T12:00", ends_at=at("2026-03-05T13:00")),
            "Dentist: Thursday 5 March 2026, 13:00 to 14:00 (Europe/Paris).",
            id="timed",
        ),
        pytest.param(
            occurrence("2026-03-05T12:00"),
            "Dentist: Thursday 5 March 2026 at 13:00 (Europe/Paris).",
            id="no-end",
        ),
        pytest.param(
            occurrence("2026-03-05T22:00", ends_at=at("2026-03-06T09:00")),
            "Dentist: from Thursday 5 March 2026 23:00 to Friday 6 March 2026 10:00 "
            "(Europe/Paris).",
            id="overnight",
        ),
        pytest.param(
            occurrence(
                "2026-03-05T23:00",
                all_day=True,
                ends_at=at("2026-03-06T23:00"),
                location="Home",
                description="Cake!",
            ),
            "Dentist: all day on Friday 6 March 2026. Where: Home.\n\nCake!",
            id="all-day-where-and-description",
        ),
        pytest.param(
            occurrence("2026-03-05T23:00", all_day=True, ends_at=at("2026-03-08T23:00")),
            "Dentist: all day from Friday 6 March 2026 to Sunday 8 March 2026.",
            id="several-days",
        ),
    ],
)
def test_reminder_description(item: cal.Occurrence, expected: str) -> None:
    assert reminder_description(item, PARIS) == expected


def test_reminder_title_is_trimmed() -> None:
    assert reminder_title(occurrence("2026-03-05T12:00")) == "Reminder: Dentist"
    long = reminder_title(occurrence("2026-03-05T12:00", summary="x" * 200))
    assert len(long) == 200 and long.endswith("…")


@pytest.mark.parametrize(
    ("last", "now", "expected"),
    [
        (None, NOW, False),
        (at("2026-03-01T06:00"), at("2026-03-01T11:59"), True),
        (at("2026-03-01T11:59"), at("2026-03-01T12:00"), False),  # a new 6-hour period
    ],
)
def test_the_first_sync_of_each_period_reads_the_feed_in_full(
    last: datetime | None, now: datetime, expected: bool
) -> None:
    assert conditional(last, now) is expected


def test_the_refusal_digest_follows_the_body_zone_horizon_and_period() -> None:
    from personal_assistant.calendars.periods import refusal_digest

    def digest(body: bytes = b"x", tz: str = PARIS, days: int = 30, now: datetime = NOW) -> str:
        return refusal_digest(body, timezone=tz, horizon_days=days, now=now)

    assert digest() == digest(now=NOW + timedelta(hours=3, minutes=59))  # 08:00 -> 11:59
    assert len({digest(), digest(b"y"), digest(tz="UTC"), digest(days=31)}) == 4
    assert digest() != digest(now=NOW + timedelta(hours=4))  # 12:00: the next period
