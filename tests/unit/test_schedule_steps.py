"""Daily and weekly schedules with a step: ``every_days`` and ``every_weeks`` (issue 15).

"every other Tuesday at 18:00" and "every 3 days at 09:00" fire at a wall-clock time on every
N-th day or week counted from ``start``'s date (week, Monday first) in the schedule's zone, so
their hour stays put across DST changes. The firings are checked against a brute-force walk
over the calendar.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from personal_assistant.core import schedule_kinds as kinds
from personal_assistant.core.next_run import preview, validate_for_creation, with_interval_anchor
from personal_assistant.core.schedule_json import parse_schedule, schedule_to_dict
from personal_assistant.core.schedule_text import describe
from personal_assistant.core.wallclock import resolve_local
from personal_assistant.errors import ScheduleError

PARIS = "Europe/Paris"
NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def _local(firings: list[datetime], zone: str) -> list[str]:
    return [f.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %z") for f in firings]


def test_every_other_tuesday_keeps_18_00_across_the_change_to_summer_time() -> None:
    s = parse_schedule(
        {
            "kind": "weekly",
            "weekdays": ["tue"],
            "times": ["18:00"],
            "every_weeks": 2,
            "timezone": PARIS,
            "start": "2026-03-03T18:00:00",
        }
    )
    assert _local(preview(s, NOW, 4), PARIS) == [
        "2026-03-03 18:00 +0100",
        "2026-03-17 18:00 +0100",
        "2026-03-31 18:00 +0200",
        "2026-04-14 18:00 +0200",
    ]


def test_every_three_days_in_new_york_across_the_change() -> None:
    s = parse_schedule(
        {
            "kind": "daily",
            "times": ["09:00"],
            "every_days": 3,
            "timezone": "America/New_York",
            "start": "2026-03-04T00:00:00",
        }
    )
    assert _local(preview(s, NOW, 4), "America/New_York") == [
        "2026-03-04 09:00 -0500",
        "2026-03-07 09:00 -0500",
        "2026-03-10 09:00 -0400",  # the clocks changed on 8 March
        "2026-03-13 09:00 -0400",
    ]


def test_weeks_count_from_the_week_of_start_monday_first() -> None:
    """Start on a Thursday: that week's Monday is before start and skipped; the cycle's next
    week is two weeks on, Monday and Thursday both."""
    s = parse_schedule(
        {
            "kind": "weekly",
            "weekdays": ["mon", "thu"],
            "times": ["09:00"],
            "every_weeks": 2,
            "timezone": PARIS,
            "start": "2026-03-05T09:00:00",
        }
    )
    assert _local(preview(s, NOW, 4), PARIS) == [
        "2026-03-05 09:00 +0100",
        "2026-03-16 09:00 +0100",
        "2026-03-19 09:00 +0100",
        "2026-03-30 09:00 +0200",
    ]


def test_json_round_trip_and_words() -> None:
    raw = {
        "kind": "weekly",
        "weekdays": ["tue"],
        "times": ["18:00"],
        "every_weeks": 2,
        "timezone": PARIS,
        "start": "2026-03-03T17:00:00+00:00",
    }
    s = parse_schedule(raw)
    assert schedule_to_dict(s) == raw
    assert describe(s) == "every 2 weeks on tue at 18:00 (Europe/Paris), from 2026-03-03 18:00"
    daily = parse_schedule({"kind": "daily", "times": ["09:00"], "every_days": 3})
    assert describe(daily) == "every 3 days at 09:00 (UTC)"
    # A step of 1 is the plain kind, and is not written back.
    plain = parse_schedule({"kind": "daily", "times": ["09:00"], "every_days": 1})
    assert schedule_to_dict(plain) == {"kind": "daily", "times": ["09:00"], "timezone": "UTC"}


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        ({"kind": "daily", "times": ["09:00"], "every_days": 0}, "schedule.every_days", "1 to 366"),
        ({"kind": "daily", "times": ["09:00"], "every_days": 367}, "schedule.every_days", "366"),
        ({"kind": "daily", "times": ["09:00"], "every_days": True}, "schedule.every_days", "whole"),
        ({"kind": "daily", "times": ["09:00"], "every_days": "2"}, "schedule.every_days", "whole"),
        ({"kind": "daily", "times": ["09:00"], "every_days": 2.0}, "schedule.every_days", "whole"),
        (
            {"kind": "weekly", "weekdays": ["mon"], "times": ["09:00"], "every_weeks": 53},
            "schedule.every_weeks",
            "1 to 52",
        ),
        (
            {"kind": "daily", "times": ["09:00"], "every_weeks": 2},
            "schedule.every_weeks",
            "unknown",
        ),
        (
            {"kind": "monthly", "day": 1, "times": ["09:00"], "every_days": 2},
            "schedule.every_days",
            "unknown",
        ),
    ],
)
def test_bad_steps_name_the_field(raw: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(raw)
    assert caught.value.field == field
    assert reason in str(caught.value)


def test_a_step_without_start_is_anchored_at_creation() -> None:
    """As an interval without ``start``: the cycle counts from the day the task is created."""
    s = parse_schedule({"kind": "daily", "times": ["09:00"], "every_days": 3, "timezone": PARIS})
    anchored = with_interval_anchor(s, NOW)
    assert anchored.start == NOW
    assert validate_for_creation(anchored, NOW) == datetime(2026, 3, 4, 8, 0, tzinfo=UTC)
    plain = parse_schedule({"kind": "daily", "times": ["09:00"], "timezone": PARIS})
    assert with_interval_anchor(plain, NOW) is plain


def _brute_force(s: kinds.Daily | kinds.Weekly, after: datetime, count: int) -> list[datetime]:
    """Every day from ``start``'s date on, kept when it is in the cycle, its times resolved."""
    assert s.start is not None
    zone = s.zone
    anchor = s.start.astimezone(zone).date()
    found: list[datetime] = []
    day = anchor
    while len(found) < count:
        if _in_cycle(s, anchor, day):
            for at in s.times:
                fire = resolve_local(datetime.combine(day, at), zone)
                if fire > after and fire >= s.start:
                    found.append(fire)
        day += timedelta(days=1)
    return sorted(found)[:count]


def _in_cycle(s: kinds.Daily | kinds.Weekly, anchor: date, day: date) -> bool:
    if isinstance(s, kinds.Daily):
        return (day - anchor).days % s.every_days == 0
    weeks = day - timedelta(days=day.weekday()) - (anchor - timedelta(days=anchor.weekday()))
    return day.weekday() in s.weekdays and weeks.days // 7 % s.every_weeks == 0


_times = st.lists(
    st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 59])),
    min_size=1,
    max_size=3,
    unique=True,
).map(lambda ts: tuple(sorted(ts)))


@st.composite
def _stepped(draw: st.DrawFn) -> kinds.Daily | kinds.Weekly:
    zone = draw(st.sampled_from([PARIS, "America/New_York", "Australia/Lord_Howe", "UTC"]))
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 525_600)))
    if draw(st.booleans()):
        return kinds.Daily(
            times=draw(_times), every_days=draw(st.integers(1, 40)), timezone=zone, start=start
        )
    weekdays = tuple(sorted(draw(st.sets(st.integers(0, 6), min_size=1))))
    return kinds.Weekly(
        weekdays=weekdays,
        times=draw(_times),
        every_weeks=draw(st.integers(1, 8)),
        timezone=zone,
        start=start,
    )


@settings(max_examples=150, deadline=None)
@given(s=_stepped(), later=st.integers(-100_000, 600_000))
def test_firings_match_a_walk_over_the_calendar(s: kinds.Daily | kinds.Weekly, later: int) -> None:
    assert s.start is not None
    after = s.start + timedelta(minutes=later)
    assert preview(s, after, 6) == _brute_force(s, after, 6)
