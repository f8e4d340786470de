"""parse_request: plain-English requests made into proposals, or refused with a reason.

Every case is read at Sunday 2026-03-01 10:00 UTC (11:00 in Paris) unless it says otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from personal_assistant.core.next_run import next_after, preview
from personal_assistant.core.phrases import MAX_CHARS, Proposal, Refusal, Span, parse_request
from personal_assistant.core.schedule_json import parse_schedule, schedule_to_dict

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
TZ = "Europe/Paris"


def _read(text: str, now: datetime = NOW, tz: str = TZ) -> Proposal:
    got = parse_request(text, now, tz)
    assert isinstance(got, Proposal), got
    return got


def _refused(text: str) -> Refusal:
    got = parse_request(text, NOW, TZ)
    assert isinstance(got, Refusal), got
    return got


def _canonical(schedule: dict[str, Any]) -> dict[str, object]:
    return schedule_to_dict(parse_schedule(schedule))


def _first(proposal: Proposal) -> str:
    fire = next_after(parse_schedule(proposal.schedule), NOW)
    assert fire is not None
    return fire.isoformat()


READS = [
    # (construction, text, schedule without timezone, first firing in UTC)
    (
        "weekdays",
        "remind me every weekday at 8:30 to stretch",
        {"kind": "weekly", "weekdays": ["mon", "tue", "wed", "thu", "fri"], "times": ["08:30"]},
        "2026-03-02T07:30:00+00:00",
    ),
    (
        "weekends",
        "on weekends at 10 go running",
        {"kind": "weekly", "weekdays": ["sat", "sun"], "times": ["10:00"]},
        "2026-03-07T09:00:00+00:00",
    ),
    (
        "tomorrow",
        "remind me tomorrow at 9am to call mom",
        {"kind": "once", "at": "2026-03-02T09:00:00"},
        "2026-03-02T08:00:00+00:00",
    ),
    (
        "relative",
        "remind me in 20 minutes to take the pizza out",
        {"kind": "once", "at": "2026-03-01T10:20:00+00:00"},
        "2026-03-01T10:20:00+00:00",
    ),
    (
        "relative words",
        "remind me in three days at 9 to renew the permit",
        {"kind": "once", "at": "2026-03-04T09:00:00"},
        "2026-03-04T08:00:00+00:00",
    ),
    (
        "12h",
        "remind me at 6:30 pm to cook",
        {"kind": "once", "at": "2026-03-01T18:30:00"},
        "2026-03-01T17:30:00+00:00",
    ),
    (
        "24h",
        "remind me at 17:45 to leave",
        {"kind": "once", "at": "2026-03-01T17:45:00"},
        "2026-03-01T16:45:00+00:00",
    ),
    (
        "noon",
        "remind me at noon to eat",
        {"kind": "once", "at": "2026-03-01T12:00:00"},
        "2026-03-01T11:00:00+00:00",
    ),
    (
        "midnight",
        "remind me at midnight to sleep",
        {"kind": "once", "at": "2026-03-02T00:00:00"},
        "2026-03-01T23:00:00+00:00",
    ),
    (
        "this evening",
        "remind me this evening at 7 to cook",
        {"kind": "once", "at": "2026-03-01T19:00:00"},
        "2026-03-01T18:00:00+00:00",
    ),
    (
        "tonight",
        "remind me tonight at 10 to lock the door",
        {"kind": "once", "at": "2026-03-01T22:00:00"},
        "2026-03-01T21:00:00+00:00",
    ),
    (
        "weekday",
        "remind me on Friday at 7am to run",
        {"kind": "once", "at": "2026-03-06T07:00:00"},
        "2026-03-06T06:00:00+00:00",
    ),
    (
        "date",
        "remind me on March 3rd at 14:30 to see the dentist",
        {"kind": "once", "at": "2026-03-03T14:30:00"},
        "2026-03-03T13:30:00+00:00",
    ),
    (
        "date",
        "remind me on 5 April at 9am to file taxes",
        {"kind": "once", "at": "2026-04-05T09:00:00"},
        "2026-04-05T07:00:00+00:00",
    ),
    (
        "date past",
        "remind me on January 5 at 9am to plan the year",
        {"kind": "once", "at": "2027-01-05T09:00:00"},
        "2027-01-05T08:00:00+00:00",
    ),
    (
        "daily",
        "summarise my inbox every day at 18:00",
        {"kind": "daily", "times": ["18:00"]},
        "2026-03-01T17:00:00+00:00",
    ),
    (
        "twice a day",
        "twice a day at 9 and 5 take my pills",
        {"kind": "daily", "times": ["09:00", "17:00"]},
        "2026-03-01T16:00:00+00:00",
    ),
    (
        "weekly list",
        "every Monday and Wednesday at 6pm go to the gym",
        {"kind": "weekly", "weekdays": ["mon", "wed"], "times": ["18:00"]},
        "2026-03-02T17:00:00+00:00",
    ),
    (
        "interval",
        "every 15 minutes drink water",
        {"kind": "interval", "every_seconds": 900},
        "2026-03-01T10:15:00+00:00",
    ),
    (
        "interval",
        "check my website every 2 hours",
        {"kind": "interval", "every_seconds": 7200},
        "2026-03-01T12:00:00+00:00",
    ),
    (
        "ordinal",
        "remind me on the first Monday of the month at 9 to pay rent",
        {"kind": "cron", "expression": "0 9 * * 1#1"},
        "2026-03-02T08:00:00+00:00",
    ),
    (
        "ordinal last",
        "remind me on the last Friday of the month at 17:00 to send the report",
        {"kind": "cron", "expression": "0 17 * * 5L"},
        "2026-03-27T16:00:00+00:00",
    ),
    (
        "monthly",
        "remind me every month on the 15th at 10am to pay the rent",
        {"kind": "monthly", "day": 15, "times": ["10:00"]},
        "2026-03-15T09:00:00+00:00",
    ),
    (
        "range",
        "every hour from 9 to 5 on weekdays check email",
        {"kind": "cron", "expression": "0 9-17 * * 1-5"},
        "2026-03-02T08:00:00+00:00",
    ),
    (
        "until",
        "remind me every Friday at noon until June to water the plants",
        {
            "kind": "weekly",
            "weekdays": ["fri"],
            "times": ["12:00"],
            "end": "2026-05-31T23:59:59",
        },
        "2026-03-06T11:00:00+00:00",
    ),
    (
        "for",
        "remind me every day at 9 for 3 weeks to meditate",
        {"kind": "daily", "times": ["09:00"], "end": "2026-03-22T11:00:00"},
        "2026-03-02T08:00:00+00:00",
    ),
]


@pytest.mark.parametrize(("construction", "text", "schedule", "first"), READS)
def test_reads(construction: str, text: str, schedule: dict[str, Any], first: str) -> None:
    got = _read(text)
    assert _canonical(got.schedule) == _canonical({**schedule, "timezone": TZ}), construction
    assert _first(got) == first


def test_a_named_zone_is_the_schedules_zone() -> None:
    got = _read("remind me at 9am New York time every day to trade")
    assert got.schedule["timezone"] == "America/New_York"
    assert got.schedule["times"] == ["09:00"]
    paris = _read("remind me at 9am Paris time to call Bob", tz="America/New_York")
    assert paris.schedule["timezone"] == "Europe/Paris"
    assert any(span.part == "zone" for span in paris.spans)


def test_spans_name_the_zone_and_the_end() -> None:
    text = "every Friday at 4pm Eastern time until June weekly review"
    got = _read(text)
    parts = {span.part: text[span.start : span.end] for span in got.spans}
    assert parts["zone"] == "Eastern time"
    assert parts["ends"] == "until June"
    assert parts["title"] == "weekly review"
    assert got.title == "Weekly review"


def test_title_instruction_and_spans() -> None:
    text = "remind me every weekday at 8:30 to stretch"
    got = _read(text)
    assert (got.title, got.instruction, got.task_type) == (
        "Stretch",
        "Remind me to stretch",
        "reminder",
    )
    title = next(span for span in got.spans if span.part == "title")
    assert text[title.start : title.end] == "stretch"
    when = [text[s.start : s.end] for s in got.spans if s.part == "when"]
    assert "every weekday" in when
    assert "at 8:30" in when
    assert all(isinstance(span, Span) for span in got.spans)


@pytest.mark.parametrize(
    ("text", "task_type"),
    [
        ("summarise my inbox every day at 18:00", "periodic_task"),
        ("every 2 hours check the build", "automated_task"),
        ("remind me to check the oven in 20 minutes", "reminder"),
        ("water the plants every Sunday at 10", "reminder"),
    ],
)
def test_task_type_from_the_verb(text: str, task_type: str) -> None:
    assert _read(text).task_type == task_type


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("🙂🙂🙂", "no words"),
        ("rappelle-moi demain à 9h de boire", "English"),
        ("напомни мне завтра", "English"),
        ("every blue moon", "blue moon"),
        ("hello there", "no date"),
        ("remind me every year on my birthday", "yearly"),
        ("remind me every 0 minutes to blink", "zero"),
        ("remind me on February 30 at 9 to pay", "February"),
    ],
)
def test_refuses_what_it_cannot_read(text: str, words: str) -> None:
    refusal = _refused(text)
    assert refusal.reason
    assert refusal.field == "text"
    if words not in ("empty", "no words", "English", "no date", "blue moon", "yearly", "zero"):
        return
    assert words.split()[-1].lower() in refusal.reason.lower()


@pytest.mark.parametrize(
    ("text", "closest_kind"),
    [
        ("remind me at 4 to call mom", "once"),  # 04:00 or 16:00?
        ("tonight at 12 lock the door", "once"),  # midnight of which day?
        ("tomorrow at midnight take the bins out", "once"),
        ("every Sunday at midnight back up", "weekly"),
        ("every other weekend call mum", "weekly"),  # this weekend or the next?
        ("every 30 minutes from 9 to 5 check the queue", "cron"),  # 17:00 needs a 2nd cron
        ("remind me at 9am EST to call Bob", "once"),  # abbreviation
        ("every second Tuesday at 10am book club", "cron"),  # 2nd of the month, or every other?
        ("remind me on March 1st at 9am to pay", "once"),  # today, already past
        ("remind me at 25:00 to sleep", "once"),
        ("every Monday on Tuesday water", "weekly"),
        ("tomorrow on Monday at 9 call Sam", "once"),  # two different days
        ("remind me at 9am on 3/4 to call", "once"),  # "on 3/4" is not read: day/month order?
        ("every day at 9 next week stretch", "daily"),  # "next week" is not read
    ],
)
def test_unsure_readings_are_questions(text: str, closest_kind: str) -> None:
    refusal = _refused(text)
    assert refusal.closest is not None
    assert refusal.closest.schedule["kind"] == closest_kind
    parse_schedule(refusal.closest.schedule)


def test_next_weekday_in_the_same_week_is_a_question() -> None:
    wednesday = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
    refusal = parse_request("next Friday at 9am call the bank", wednesday, TZ)
    assert isinstance(refusal, Refusal)
    assert refusal.closest is not None
    assert refusal.closest.schedule["at"] == "2026-03-06T08:00:00+00:00"
    sunday = _read("next Friday at 9am call the bank")
    assert _first(sunday) == "2026-03-06T08:00:00+00:00"


def test_in_days_keeps_the_wall_clock_and_in_hours_counts_elapsed_time() -> None:
    saturday = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # 13:00 CET, DST starts on the 29th
    days = _read("in 2 days call the garage", now=saturday)
    hours = _read("in 48 hours call the garage", now=saturday)
    assert next_after(parse_schedule(days.schedule), saturday) == datetime(
        2026, 3, 30, 11, 0, tzinfo=UTC
    )
    assert next_after(parse_schedule(hours.schedule), saturday) == datetime(
        2026, 3, 30, 12, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("text", "schedule"),
    [
        ("at half past nine call the dentist", {"kind": "once", "at": "2026-03-02T09:30:00"}),
        ("at a quarter to 9 leave", {"kind": "once", "at": "2026-03-02T08:45:00"}),
        ("at seven thirty pm call Lea", {"kind": "once", "at": "2026-03-01T19:30:00"}),
        (
            "every hour from 10pm to 2am check the baby",
            {"kind": "cron", "expression": "0 0-2,22-23 * * *"},
        ),
        (
            "every 4 hours from 8 to 8 turn the patient",
            {"kind": "cron", "expression": "0 8-20/4 * * *"},
        ),
        (
            "first and third Monday of the month at 9am recycling",
            {"kind": "cron", "expression": "0 9 * * 1#1,1#3"},
        ),
        (
            "last weekday of the month at 5pm expenses",
            {"kind": "cron", "expression": "0 17 LW * *"},
        ),
        (
            "on the 1st and 15th of each month at 9am payroll",
            {"kind": "cron", "expression": "0 9 1,15 * *"},
        ),
        (
            "every weekday except Friday at 9 stand-up",
            {"kind": "weekly", "weekdays": ["mon", "tue", "wed", "thu"], "times": ["09:00"]},
        ),
        ("every hour on the hour chime", {"kind": "cron", "expression": "0 * * * *"}),
        (
            "every 2 hours starting at 9am check the bees",
            {"kind": "interval", "every_seconds": 7200, "start": "2026-03-02T09:00:00"},
        ),
        (
            "every 10 minutes until 6pm check the oven",
            {"kind": "interval", "every_seconds": 600, "end": "2026-03-01T18:00:00"},
        ),
        (
            "every other Tuesday at 6pm put out the recycling",
            {
                "kind": "weekly",
                "weekdays": ["tue"],
                "times": ["18:00"],
                "every_weeks": 2,
                "start": "2026-03-03T18:00:00",
            },
        ),
        (
            "every 3 days at 9am and 5pm water the orchid",
            {
                "kind": "daily",
                "times": ["09:00", "17:00"],
                "every_days": 3,
                "start": "2026-03-01T17:00:00",
            },
        ),
    ],
)
def test_policy_readings(text: str, schedule: dict[str, Any]) -> None:
    assert _canonical(_read(text).schedule) == _canonical({**schedule, "timezone": TZ})


def test_every_other_tuesday_keeps_its_hour_across_dst() -> None:
    """The step counts weeks on the calendar, not elapsed time: 18:00 before and after 29 March."""
    got = _read("every other Tuesday at 6pm put out the recycling")
    firings = preview(parse_schedule(got.schedule), NOW, 4)
    local = [f.astimezone(ZoneInfo(TZ)) for f in firings]
    assert [f.strftime("%m-%d %H:%M") for f in local] == [
        "03-03 18:00",
        "03-17 18:00",
        "03-31 18:00",
        "04-14 18:00",
    ]


def test_no_confident_wrong_answer_on_the_evaluation_set() -> None:
    """Each entry of tests/unit/nl_cases.yaml: a refusal, or the expected schedule."""
    yaml = pytest.importorskip("yaml")
    path = Path(__file__).with_name("nl_cases.yaml")
    if not path.exists():
        pytest.skip("no evaluation set")
    wrong = []
    for entry in yaml.safe_load(path.read_text(encoding="utf-8")):
        repeat = entry.get("text_repeat")
        text = repeat["unit"] * repeat["times"] if repeat else entry["text"]
        now = datetime.fromisoformat(entry["now"]) if "now" in entry else NOW
        got = parse_request(text, now, entry.get("tz", TZ))
        if not isinstance(got, Proposal):
            continue
        expect = entry["expect"]
        if expect.get("refusal") or _canonical(got.schedule) != _canonical(expect["schedule"]):
            wrong.append((text[:60], got.schedule))
    assert wrong == []


def test_a_long_request_is_refused_naming_its_length() -> None:
    refusal = _refused("x" * (MAX_CHARS + 1))
    assert str(MAX_CHARS + 1) in refusal.reason
    assert refusal.closest is None


def test_ten_kilobytes_are_refused() -> None:
    assert isinstance(parse_request("every day at 9 " * 700, NOW, TZ), Refusal)


def test_the_longest_read_request_of_repeated_rules_is_read() -> None:
    text = ("remind me every monday, tuesday and friday at 9, 10 and 11 " * 9)[:MAX_CHARS]
    assert isinstance(parse_request(text, NOW, TZ), Proposal | Refusal)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_request("every day at 9 stretch", datetime(2026, 3, 1), TZ)


_WORDS = st.sampled_from(
    [
        "remind",
        "me",
        "to",
        "every",
        "at",
        "on",
        "in",
        "the",
        "a",
        "9",
        "17:30",
        "9am",
        "pm",
        "noon",
        "midnight",
        "tomorrow",
        "tonight",
        "next",
        "monday",
        "weekdays",
        "weekends",
        "until",
        "june",
        "for",
        "3",
        "weeks",
        "hours",
        "minutes",
        "other",
        "first",
        "last",
        "of",
        "month",
        "15th",
        "march",
        "3rd",
        "twice",
        "day",
        "and",
        "from",
        "to",
        "paris",
        "time",
        "utc",
        "stretch",
        "☃",
        "🙂",
        ",",
        ".",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=2048), st.lists(_WORDS, max_size=60).map(" ".join)))
def test_any_text_gives_a_valid_proposal_or_a_refusal(text: str) -> None:
    got = parse_request(text, NOW, TZ)
    if isinstance(got, Proposal):
        parse_schedule(got.schedule)
        assert got.schedule["timezone"]
    else:
        assert isinstance(got, Refusal)
        assert got.reason
        if got.closest is not None:
            parse_schedule(got.closest.schedule)
