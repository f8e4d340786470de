"""Hostile and odd feeds in the pure calendar core: expansion stops at the cap without
expanding everything, dense rules are refused before they are expanded, and so are degenerate
ones and feeds whose expansion would walk too long (an ``INTERVAL`` below 1, lists longer than
a year, rules matching no date, starts long before the window, components nested deep: issue
10), every refusal says
what is wrong with the feed (never a library's internals, never a control character),
Outlook/Exchange overrides of an all-day series keep the instance's identity, and
``X-WR-TIMEZONE`` places floating times."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from personal_assistant.calendars import ics as cal
from personal_assistant.calendars.checks import (
    MAX_DEPTH,
    MAX_EVENTS,
    MAX_EXPANSION_STEPS,
    MAX_LINES,
)
from personal_assistant.errors import ValidationError
from support.ics_server import vcalendar, vevent

PARIS = "Europe/Paris"
NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
CORPUS = Path(__file__).parents[1] / "data" / "ical_corpus"
#: What a message must never show: Python's and the libraries' internals.
INTERNALS = re.compile(
    r"object has no attribute|not supported between|unpack|NoneType|Traceback|"
    r"argument|vDDD|vRecur|vText|vBroken|\bdict\b|tuple|KeyError|IndexError|"
    r"TypeError|AttributeError|ValueError|index out of range|<class|0x[0-9a-f]{6,}",
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def refusal(data: bytes, *, days: int = 40, now: datetime = NOW) -> str:
    with pytest.raises(ValidationError) as caught:
        cal.parse_feed(data, timezone=PARIS, now=now, horizon_days=days)
    assert caught.value.field == "feed"
    return caught.value.message


def assert_clear(message: str) -> None:
    """A message a user can read: no internals, no control character, bounded."""
    assert not INTERNALS.search(message), message
    assert all(unicodedata.category(ch) not in ("Cc", "Cs") for ch in message), repr(message)
    assert len(message) <= 500


# --- the cap, lazily ---------------------------------------------------------------------------


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the occurrences the core converts (one call of ``_occurrence`` each)."""
    calls = [0]
    convert = cal._occurrence

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return convert(*args, **kwargs)

    monkeypatch.setattr(cal, "_occurrence", counting)
    return calls


@pytest.mark.timeout(60)
def test_expansion_stops_at_the_cap_without_expanding_everything(conversions: list[int]) -> None:
    """An hourly rule without end over a year has 8,784 occurrences: refused after the cap."""
    endless = vevent("h@x", "Hourly", "DTSTART:20260301T000000Z", "RRULE:FREQ=HOURLY")
    message = refusal(vcalendar(endless), days=366)
    assert f"more than {cal.MAX_OCCURRENCES} occurrences in the next 366 days" in message
    assert conversions[0] < 2 * cal.MAX_OCCURRENCES  # not the 8,784 of the whole horizon


@pytest.mark.timeout(60)
def test_twenty_hourly_events_over_a_year_are_refused_quickly(conversions: list[int]) -> None:
    """The feed of the issue (175,680 occurrences): refused after about the cap's worth."""
    events = [
        vevent(f"h{i}@x", f"Hourly {i}", f"DTSTART:20260301T{i:02d}0000Z", "RRULE:FREQ=HOURLY")
        for i in range(20)
    ]
    assert "more than" in refusal(vcalendar(*events), days=366)
    assert conversions[0] < 2 * cal.MAX_OCCURRENCES


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY;BYMINUTE=" + ",".join(map(str, range(60))) + ";BYSECOND=0,30",
        "FREQ=HOURLY;BYMINUTE=0,30",
        "FREQ=YEARLY;BYMONTH=3;BYHOUR=" + ",".join(map(str, range(24))) + ";BYMINUTE=0,15",
    ],
    ids=["every-30-seconds", "every-30-minutes", "48-a-day"],
)
def test_a_rule_repeating_more_than_24_times_a_day_is_refused_before_expansion(
    rule: str, conversions: list[int]
) -> None:
    dense = vevent("d@x", "Dense", "DTSTART:20260301T090000Z", f"RRULE:{rule}")
    message = refusal(vcalendar(dense), days=366)
    assert message == "event 'd@x' repeats more than 24 times a day: not supported"
    assert conversions[0] == 0


def test_hourly_and_twice_a_day_rules_are_kept() -> None:
    hourly = vevent("h@x", "Hourly", "DTSTART:20260301T090000Z", "RRULE:FREQ=HOURLY;COUNT=3")
    twice = vevent(
        "t@x", "Twice", "DTSTART:20260302T090000Z", "RRULE:FREQ=DAILY;BYHOUR=9,17;COUNT=2"
    )
    found = cal.parse_feed(vcalendar(hourly, twice), timezone=PARIS, now=NOW, horizon_days=5)
    assert [(o.uid, o.starts_at) for o in found] == [
        ("h@x", at("2026-03-01T09:00")),
        ("h@x", at("2026-03-01T10:00")),
        ("h@x", at("2026-03-01T11:00")),
        ("t@x", at("2026-03-02T09:00")),
        ("t@x", at("2026-03-02T17:00")),
    ]


# --- refusals that say what is wrong ----------------------------------------------------------


def corpus(path: str) -> bytes:
    return (CORPUS / path).read_bytes()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            corpus("icalendar/calendars/fuzz_testcase_0_char_in_component_name.ics"),
            "is not an iCalendar (ICS) file: no complete VCALENDAR "
            "(BEGIN:VCALENDAR to END:VCALENDAR)",
            id="nul-in-a-component-name",
        ),
        pytest.param(
            corpus("icalendar/calendars/pacific_fiji.ics"),
            "event 'noend123' has 2 starts (DTSTART) where one is expected",
            id="two-starts",
        ),
        pytest.param(
            vcalendar(vevent("x", "Bad start", "DTSTART:garbage")),
            "event 'x': its start (DTSTART) 'garbage' is not a date or a date-time",
            id="unreadable-start",
        ),
        pytest.param(
            corpus("icalendar/calendars/invalid_duration.ics"),
            "its duration (DURATION) 'P999999999999999999W' is not a duration",
            id="impractical-duration",
        ),
        pytest.param(
            vcalendar(vevent("x", "Bad rule", "DTSTART:20260305T120000Z", "RRULE:FREQ=FOO")),
            "event 'x': its rule (RRULE) 'FREQ=FOO' cannot be read",
            id="unknown-frequency",
        ),
        pytest.param(
            corpus("icalendar/calendars/rfc_7529.ics"),
            "uses the CHINESE calendar (RSCALE): only the Gregorian calendar is supported",
            id="non-gregorian-rule",
        ),
        pytest.param(
            corpus("icalendar/calendars/parsing_error.ics"),
            "its excluded dates (EXDATE) '' are not dates or date-times",
            id="empty-exdate",
        ),
        pytest.param(
            corpus("icalendar/calendars/multiple_timezones.ics"),
            "its extra dates (RDATE) '083000' are not dates or date-times",
            id="rdate-of-times",
        ),
        pytest.param(
            corpus("icalendar/calendars/issue_1050_multiple_calendars.ics"),
            "holds several calendars (VCALENDAR) where one is expected",
            id="two-calendars",
        ),
        pytest.param(
            vcalendar(
                vevent("i@x", "I", "DTSTART:20140302T090000Z", "RRULE:FREQ=DAILY;INTERVAL=0")
            ),
            "event 'i@x': its rule (RRULE) 'FREQ=DAILY;INTERVAL=0' has an interval (INTERVAL) "
            "of 0: it must be 1 or more",
            id="interval-0-would-loop-forever",
        ),
        pytest.param(
            vcalendar(
                vevent(
                    "p@x",
                    "P",
                    "DTSTART:20140302T090000Z",
                    "RDATE;VALUE=PERIOD:20140303T100000Z/20140303T090000Z",
                )
            ),
            "event 'p@x': it ends before it starts",
            id="period-ending-before-it-starts",
        ),
        pytest.param(
            vcalendar(vevent("c@x", "C", "DTSTART:20140302T090000Z")).replace(
                b"VERSION:2.0", b"VERSION:2.0\r\nCALSCALE:CHINESE"
            ),
            "uses the 'CHINESE' calendar (CALSCALE): only the Gregorian calendar is supported",
            id="non-gregorian-calendar",
        ),
        pytest.param(
            corpus("recurring_ical_events/bad_rrule_missing_until_event.ics"),
            "its rule (RRULE) 'FREQ=WEEKLY;BYDAY=TH;WKST=SU;UNTL=20191023' cannot be read",
            id="misspelled-until",
        ),
    ],
)
@pytest.mark.timeout(60)
def test_a_refusal_says_what_is_wrong_with_the_feed(data: bytes, expected: str) -> None:
    message = refusal(data, now=datetime(2014, 1, 1, tzinfo=UTC), days=366)
    assert expected in message, message
    assert_clear(message)


# --- Outlook/Exchange overrides of an all-day series -------------------------------------------

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
#: How Outlook and Exchange write the original date of a moved all-day instance.
OUTLOOK_RECURRENCE_IDS = {
    "value-date": "RECURRENCE-ID;VALUE=DATE:20260309",
    "windows-zone-midnight": 'RECURRENCE-ID;TZID="W. Europe Standard Time":20260309T000000',
    "floating-midnight": "RECURRENCE-ID:20260309T000000",
}


def moved_bin_day(recurrence_id: str) -> str:
    return vevent(
        OUTLOOK_UID,
        "Bin day (moved)",
        recurrence_id,
        "DTSTART;VALUE=DATE:20260310",
        "DTEND;VALUE=DATE:20260311",
        "X-MICROSOFT-CDO-ALLDAYEVENT:TRUE",
    )


@pytest.mark.parametrize("form", sorted(OUTLOOK_RECURRENCE_IDS))
def test_an_outlook_override_of_an_all_day_series_keeps_the_instances_key(form: str) -> None:
    feed = vcalendar(WINDOWS_ZONE, BIN_DAY, moved_bin_day(OUTLOOK_RECURRENCE_IDS[form]))
    found = cal.parse_feed(feed, timezone=PARIS, now=NOW, horizon_days=40)
    assert [(o.key, o.summary, o.starts_at, o.all_day) for o in found] == [
        ("2026-03-02", "Bin day", at("2026-03-01T23:00"), True),
        ("2026-03-09", "Bin day (moved)", at("2026-03-09T23:00"), True),  # Tuesday 10 March
        ("2026-03-16", "Bin day", at("2026-03-15T23:00"), True),
        ("2026-03-23", "Bin day", at("2026-03-22T23:00"), True),
    ]


# --- X-WR-TIMEZONE -----------------------------------------------------------------------------


def x_wr(zone: str, *events: str) -> bytes:
    return vcalendar(*events).replace(
        b"VERSION:2.0\r\n", f"VERSION:2.0\r\nX-WR-TIMEZONE:{zone}\r\n".encode()
    )


def test_x_wr_timezone_sets_the_zone_of_floating_times() -> None:
    floating = vevent("f@x", "Floating", "DTSTART:20260305T090000")
    utc = vevent("u@x", "UTC", "DTSTART:20260305T090000Z")
    zoned = vevent("z@x", "Zoned", "DTSTART;TZID=Asia/Tokyo:20260305T090000")
    day = vevent("d@x", "All day", "DTSTART;VALUE=DATE:20260306")
    feed = x_wr("America/New_York", floating, utc, zoned, day)
    found = cal.parse_feed(feed, timezone=PARIS, now=NOW, horizon_days=40)
    assert {o.uid: o.starts_at for o in found} == {
        "z@x": at("2026-03-05T00:00"),  # a TZID wins
        "u@x": at("2026-03-05T09:00"),  # UTC stays UTC
        "f@x": at("2026-03-05T14:00"),  # 09:00 in New York, not in Paris
        "d@x": at("2026-03-05T23:00"),  # all-day: local midnight in the user's zone
    }


def test_an_unknown_x_wr_timezone_is_ignored() -> None:
    floating = vevent("f@x", "Floating", "DTSTART:20260305T090000")
    for zone in ("Mars/Olympus_Mons", "../../etc/passwd", ""):
        (found,) = cal.parse_feed(x_wr(zone, floating), timezone=PARIS, now=NOW, horizon_days=40)
        assert found.starts_at == at("2026-03-05T08:00"), zone  # the user's zone


# --- the cap's boundary -------------------------------------------------------------------------


@pytest.mark.parametrize("count", [cal.MAX_OCCURRENCES, cal.MAX_OCCURRENCES + 1])
def test_the_cap_counts_upcoming_occurrences(count: int) -> None:
    """2,000 upcoming occurrences are kept, 2,001 refused; the window's past day counts not."""
    hourly = vevent(
        "q@x", "Often", "DTSTART:20260228T090000Z", f"RRULE:FREQ=HOURLY;COUNT={count + 24}"
    )  # 24 of them at or before NOW
    feed = vcalendar(hourly)
    if count > cal.MAX_OCCURRENCES:
        assert "more than" in refusal(feed, days=366)
    else:
        found = cal.parse_feed(feed, timezone=PARIS, now=NOW, horizon_days=366)
        assert len(found) == count


# --- degenerate rules and the cost of an expansion (issue 10, items 2 and 3) -------------------

#: Each of these would wedge or hold a worker for seconds before the fix; refused at once now.
#: The timeout turns a wedge into a failure (the fix answers in milliseconds).
WEDGE = pytest.mark.timeout(30)
EVERY = ",".join
MINUTES = EVERY(map(str, range(60)))
HOURS = EVERY(map(str, range(24)))


@WEDGE
@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY;INTERVAL=0",
        "FREQ=WEEKLY;INTERVAL=0;BYDAY=MO",
        "FREQ=HOURLY;INTERVAL=-3",
        "FREQ=YEARLY;UNTIL=20300101T000000Z;INTERVAL=0",
    ],
)
def test_an_interval_below_one_is_refused_naming_the_event(
    rule: str, conversions: list[int]
) -> None:
    """``INTERVAL=0`` never moves on: the expansion loops forever (700 MB a minute)."""
    feed = vcalendar(vevent("i@x", "I", "DTSTART:20260302T090000Z", f"RRULE:{rule}"))
    message = refusal(feed)
    value = rule.split("INTERVAL=")[1].split(";")[0]
    assert message == (
        f"event 'i@x': its rule (RRULE) {rule!r} has an interval (INTERVAL) of {value}: "
        "it must be 1 or more"
    )
    assert conversions[0] == 0


@WEDGE
@pytest.mark.parametrize(
    "rule",
    [
        f"FREQ=HOURLY;BYMINUTE={MINUTES};BYSECOND={MINUTES}",  # the issue's: 86,400 a day
        f"FREQ=DAILY;BYHOUR={HOURS};BYMINUTE={MINUTES}",
        f"FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;BYHOUR={HOURS};BYSECOND=0,30",
        f"FREQ=YEARLY;BYMONTH=3;BYMINUTE={MINUTES}",  # 60 a day in March
    ],
    ids=["hourly-by-minute-and-second", "daily-every-minute", "weekly-twice-a-minute", "yearly"],
)
def test_by_second_and_by_minute_lists_cannot_get_round_the_daily_limit(
    rule: str, conversions: list[int]
) -> None:
    dense = vevent("d@x", "Dense", "DTSTART:20260301T090000Z", f"RRULE:{rule}")
    assert refusal(vcalendar(dense), days=4) == (
        "event 'd@x' repeats more than 24 times a day: not supported"
    )
    assert conversions[0] == 0


@WEDGE
def test_a_list_of_positions_longer_than_a_year_is_refused(conversions: list[int]) -> None:
    """``BYSETPOS=1,1,1,...`` (400,000 times): the library scans the year once per entry."""
    positions = EVERY(["1"] * 400_000)
    bomb = vevent("p@x", "P", "DTSTART:20260301T090000Z", f"RRULE:FREQ=YEARLY;BYSETPOS={positions}")
    message = refusal(vcalendar(bomb))
    assert message == (
        "event 'p@x': its rule (RRULE) lists 400,000 values in BYSETPOS: at most 366 are allowed"
    )
    assert_clear(message)
    assert conversions[0] == 0


NEVER = {
    "daily": ("20260301T090000Z", "FREQ=DAILY;BYMONTHDAY=31;BYMONTH=2"),
    "daily-until-far-away": (
        "20260301T090000Z",
        "FREQ=DAILY;UNTIL=99991231T000000Z;BYMONTHDAY=31;BYMONTH=2",
    ),
    "hourly": ("20260301T090000Z", "FREQ=HOURLY;BYMONTHDAY=30,31;BYMONTH=2"),
    "weekly": ("20260301T090000Z", "FREQ=WEEKLY;BYMONTHDAY=31;BYMONTH=4,6,9,11"),
    "yearly": ("20260301T090000Z", "FREQ=YEARLY;BYYEARDAY=60;BYMONTH=1"),
    "week-53-in-june": ("20260301T090000Z", "FREQ=DAILY;BYWEEKNO=53;BYMONTH=6"),
    # DTSTART a Tuesday: every seventh day is a Tuesday, never a Monday
    "interval-7-on-mondays": ("20260303T090000Z", "FREQ=DAILY;INTERVAL=7;BYDAY=MO"),
    # DTSTART in January: every other month is an odd month, never February
    "every-other-month-in-february": ("20260103T090000Z", "FREQ=MONTHLY;INTERVAL=2;BYMONTH=2"),
    # the day of the month comes from DTSTART: the 31st of February
    "monthly-from-the-31st-in-february": ("20260131T090000Z", "FREQ=MONTHLY;BYMONTH=2"),
}


@WEDGE
@pytest.mark.parametrize("name", sorted(NEVER))
def test_a_rule_that_matches_no_date_is_refused_before_expansion(
    name: str, conversions: list[int]
) -> None:
    """The library walks such a rule to the year 9999 (3 to 5 s each) looking for a date."""
    start, rule = NEVER[name]
    never = vevent("n@x", "Never", f"DTSTART:{start}", f"RRULE:{rule}")
    message = refusal(vcalendar(never), days=366)
    assert message == f"event 'n@x': its rule (RRULE) {rule!r} matches no date: not supported"
    assert conversions[0] == 0


@WEDGE
def test_many_rules_that_match_no_date_cost_one_refusal(conversions: list[int]) -> None:
    """200 yearly rules that never match: 0.16 s each for the library, 30 s in all."""
    events = [
        vevent(
            f"y{i}@x", "Y", "DTSTART:20260301T090000Z", "RRULE:FREQ=YEARLY;BYMONTHDAY=31;BYMONTH=2"
        )
        for i in range(200)
    ]
    assert "matches no date" in refusal(vcalendar(*events))
    assert conversions[0] == 0


@WEDGE
@pytest.mark.parametrize(
    ("start", "rule"),
    [
        ("00010101T090000Z", "FREQ=HOURLY"),  # 17.7 million steps from the year 1 to now
        ("19000101T090000Z", "FREQ=HOURLY;INTERVAL=1"),  # 1.1 million
        ("16000101T090000Z", "FREQ=HOURLY;BYDAY=MO;COUNT=100000000"),
    ],
    ids=["hourly-since-year-1", "hourly-since-1900", "hourly-since-1600-with-a-count"],
)
def test_a_rule_starting_long_before_the_window_is_refused_before_expansion(
    start: str, rule: str, conversions: list[int]
) -> None:
    """The library walks every repetition from DTSTART to the window: 17.7 million of them for
    an hourly rule from the year 1 (a worker wedged for minutes)."""
    old = vevent("o@x", "Old", f"DTSTART:{start}", f"RRULE:{rule}")
    message = refusal(vcalendar(old))
    assert message.startswith(
        "event 'o@x': too many repetitions to compute between its start "
        f"(DTSTART {start[:4]}-01-01) and the end of the window"
    ), message
    assert_clear(message)
    assert conversions[0] == 0


@WEDGE
def test_the_cost_of_the_rules_adds_up_over_the_feed(conversions: list[int]) -> None:
    """400 daily rules from 2010 (2.4 million steps in all): each alone is fine, not all."""
    events = [
        vevent(f"e{i}@x", "E", "DTSTART:20100101T090000Z", "RRULE:FREQ=DAILY") for i in range(400)
    ]
    message = refusal(vcalendar(*events))
    assert "too many repetitions to compute" in message
    assert f"(more than {MAX_EXPANSION_STEPS:,} steps for the feed)" in message
    assert conversions[0] == 0


def test_ordinary_old_and_sparse_rules_are_kept() -> None:
    """What real calendars hold: birthdays since 1900, a stand-up since 2000, a weekly class
    since 1990, Friday the 13th, the 29th of February, US Thanksgiving, the last weekday."""
    ordinary = [
        ("b@x", "DTSTART;VALUE=DATE:19000303", "FREQ=YEARLY"),
        ("s@x", "DTSTART:20000103T090000Z", "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR"),
        ("c@x", "DTSTART:19900102T180000Z", "FREQ=WEEKLY;BYDAY=TU"),
        ("f@x", "DTSTART:20000113T120000Z", "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13"),
        ("l@x", "DTSTART;VALUE=DATE:20000229", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"),
        ("t@x", "DTSTART;VALUE=DATE:19421126", "FREQ=YEARLY;BYMONTH=11;BYDAY=4TH"),
        ("w@x", "DTSTART:20100129T160000Z", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"),
        ("d@x", "DTSTART:20160301T070000Z", "FREQ=DAILY;COUNT=5000"),
    ]
    events = [vevent(uid, uid, start, f"RRULE:{rule}") for uid, start, rule in ordinary]
    found = cal.parse_feed(
        vcalendar(*events), timezone=PARIS, now=datetime(2028, 1, 1, tzinfo=UTC), horizon_days=366
    )
    first = {}
    for o in found:
        first.setdefault(o.uid, o.starts_at.date().isoformat())
    assert first == {
        "b@x": "2028-03-02",  # local midnight in Paris is the day before in UTC
        "s@x": "2028-01-03",
        "c@x": "2028-01-04",
        "f@x": "2028-10-13",
        "l@x": "2028-02-28",
        "t@x": "2028-11-22",
        "w@x": "2028-01-31",
        "d@x": "2028-01-01",
    }


@WEDGE
def test_components_nested_too_deep_are_refused_before_parsing() -> None:
    """250,000 nested components (4.5 s and 240 MB for the parser); calendars nest 3 deep."""
    nested = "BEGIN:X-A\r\n" * 250_000 + "END:X-A\r\n" * 250_000
    feed = vcalendar(nested + vevent("n@x", "N", "DTSTART:20260305T090000Z"))
    assert refusal(feed) == (
        f"nests components (BEGIN:...) more than {MAX_DEPTH} deep: not an ordinary calendar"
    )


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the times the feed reaches icalendar's parser."""
    calls = [0]
    real = cal.icalendar.Calendar.from_ical

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(cal.icalendar.Calendar, "from_ical", counted)
    return calls


def test_too_many_events_are_refused_before_parsing(parses: list[int]) -> None:
    """Parsing costs ~0.2 ms of CPU per event: 30,000 events took 5-10 s, and on a slow
    machine the parse met the sandbox's CPU limit before the occurrence cap (a refusal that
    depended on the machine). Counted in the text, the refusal does not."""
    soon = "DTSTART:20260305T090000Z"
    events = [vevent(f"e{i}@x", "E", soon) for i in range(MAX_EVENTS + 1)]
    assert refusal(vcalendar(*events)) == (
        f"has more than {MAX_EVENTS:,} events: not an ordinary calendar "
        "(subscribe to a shorter export)"
    )
    assert parses == [0]
    at_the_cap = vcalendar(*events[:MAX_EVENTS])
    assert "more than 2000 occurrences" in refusal(at_the_cap)  # read, then refused by count
    assert parses == [1]


def test_too_many_lines_are_refused_before_parsing(parses: list[int]) -> None:
    """One event of tiny lines (``X-A:1``, 5 bytes each): a 5 MB feed is a million lines and
    ~25 s of CPU for the parser."""
    lines = ["X-A:1"] * MAX_LINES
    assert refusal(vcalendar(vevent("x@x", "X", "DTSTART:20260305T090000Z", *lines))) == (
        f"has more than {MAX_LINES:,} lines: not an ordinary calendar "
        "(subscribe to a shorter export)"
    )
    assert parses == [0]


@WEDGE
def test_occurrences_around_the_window_are_capped_too(conversions: list[int]) -> None:
    """Occurrences just before ``now`` are expanded (the window has a day of margin) but not
    counted as upcoming: 1,000 hourly series of the past day are refused, not converted."""
    events = [
        vevent(f"p{i}@x", "Past", "DTSTART:20260228T090000Z", "RRULE:FREQ=HOURLY;COUNT=23")
        for i in range(1_000)
    ]  # 23,000 occurrences, all before NOW
    message = refusal(vcalendar(*events), days=4)
    assert message == (
        f"has more than {cal.MAX_EXPANDED:,} occurrences around the next 4 days: "
        "not an ordinary calendar"
    )
    assert conversions[0] <= cal.MAX_EXPANDED + 1


@WEDGE
@pytest.mark.parametrize("moved", ["EXDATE:99991230T090000Z", "RRULE:FREQ=YEARLY"])
def test_an_override_far_in_the_future_counts_its_walk(moved: str, conversions: list[int]) -> None:
    """An override with dates or a rule of its own makes the library walk the series' rule to
    the override's original start (the year 9999 here: 5 s for one override, more for many)."""
    series = vevent("o@x", "Daily", "SEQUENCE:1", "DTSTART:20260301T090000Z", "RRULE:FREQ=DAILY")
    override = vevent(
        "o@x",
        "Moved",
        "SEQUENCE:0",
        "RECURRENCE-ID:99991230T090000Z",
        "DTSTART:99991230T100000Z",
        moved,
    )
    message = refusal(vcalendar(series, override))
    assert message.startswith(
        "event 'o@x': too many repetitions to compute between its start (DTSTART 2026-03-01)"
    ), message
    assert conversions[0] == 0
