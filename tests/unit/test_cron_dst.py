"""Cron across DST: wildcard jobs follow elapsed time, fixed-time jobs keep the wall-clock policy.

Debian cron (cron(8), NOTES, on daylight saving time) tells two kinds of job apart. A job whose
minute or hour field begins with ``*`` (``*/15 * * * *``, ``7 * * * *``) is a *wildcard* job:
it runs "based on the new time immediately", so a wall time inside a spring-forward gap never
happens and both passes of a repeated hour fire. Any other job is a *fixed-time* job: a time
the clocks skip runs right after the change, a repeated time runs once. cronsim draws the same
line, but its own stepping through time misses firings where the clocks move by 30 minutes (the
Lord Howe rows ``40 * * * *`` and ``*/15 */2 * * *``), so the code only asks it which wall times
match.

Transitions used (2026): New York 8 March 07:00Z (02:00 EST -> 03:00 EDT) and 1 November
06:00Z (02:00 EDT -> 01:00 EST); London 29 March 01:00Z (01:00 GMT -> 02:00 BST) and
25 October 01:00Z (02:00 BST -> 01:00 GMT); Lord Howe, whose clocks move by 30 minutes,
3 October 15:30Z (02:00 +10:30 -> 02:30 +11) and 4 April 15:00Z (02:00 +11 -> 01:30 +10:30).
Every expected instant is UTC, written out by hand from those rules.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from personal_assistant.core.catchup import plan_due
from personal_assistant.core.next_run import next_after, preview
from personal_assistant.core.schedule_kinds import Cron

NY = "America/New_York"
LONDON = "Europe/London"
LORD_HOWE = "Australia/Lord_Howe"


def iso_utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def instants_of(text: str) -> list[datetime]:
    return [iso_utc(item) for item in text.split()]


def firings(zone: str, expression: str, after: str, count: int) -> list[datetime]:
    return preview(Cron(expression=expression, timezone=zone), iso_utc(after), count)


# --- wildcard jobs: elapsed time ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "expression", "after", "expected"),
    [
        # New York: 01:00-01:59 shown twice; every quarter hour of both passes fires
        (
            NY,
            "*/15 * * * *",
            "2026-11-01T05:20",
            "2026-11-01T05:30 2026-11-01T05:45 2026-11-01T06:00 2026-11-01T06:15"
            " 2026-11-01T06:30 2026-11-01T06:45 2026-11-01T07:00",
        ),
        # 01:00 EDT, 01:00 EST, 02:00 EST: every hour of elapsed time
        (NY, "0 * * * *", "2026-11-01T04:30", "2026-11-01T05:00 2026-11-01T06:00 2026-11-01T07:00"),
        # a wildcard minute with a fixed hour range is still a wildcard job (Debian: MIN_STAR)
        (
            NY,
            "*/30 1-3 * * *",
            "2026-11-01T04:00",
            "2026-11-01T05:00 2026-11-01T05:30 2026-11-01T06:00 2026-11-01T06:30"
            " 2026-11-01T07:00 2026-11-01T07:30 2026-11-01T08:00 2026-11-01T08:30"
            " 2026-11-02T06:00",
        ),
        # asked from inside the second pass: the next quarter hour of that pass
        (NY, "*/15 * * * *", "2026-11-01T06:10", "2026-11-01T06:15 2026-11-01T06:30"),
        # London: 01:00-01:59 shown twice
        (
            LONDON,
            "*/15 * * * *",
            "2026-10-25T00:20",
            "2026-10-25T00:30 2026-10-25T00:45 2026-10-25T01:00 2026-10-25T01:15"
            " 2026-10-25T01:30 2026-10-25T01:45 2026-10-25T02:00",
        ),
        (
            LONDON,
            "7 * * * *",
            "2026-10-24T23:30",
            "2026-10-25T00:07 2026-10-25T01:07 2026-10-25T02:07",
        ),
        # Lord Howe: 01:30-01:59 shown twice (+11, then +10:30)
        (
            LORD_HOWE,
            "*/15 * * * *",
            "2026-04-04T14:20",
            "2026-04-04T14:30 2026-04-04T14:45 2026-04-04T15:00 2026-04-04T15:15 2026-04-04T15:30",
        ),
        # 00:40 +11, 01:40 +11, 01:40 +10:30 (30 minutes later), 02:40 +10:30
        (
            LORD_HOWE,
            "40 * * * *",
            "2026-04-04T13:00",
            "2026-04-04T13:40 2026-04-04T14:40 2026-04-04T15:10 2026-04-04T16:10",
        ),
        # asked from 01:50 +11: 02:00, 02:15 +10:30 come half an hour of elapsed time later
        (
            LORD_HOWE,
            "*/15 */2 * * *",
            "2026-04-04T14:50",
            "2026-04-04T15:30 2026-04-04T15:45 2026-04-04T16:00 2026-04-04T16:15",
        ),
    ],
)
def test_wildcard_cron_fires_in_both_passes_of_a_repeated_hour(
    zone: str, expression: str, after: str, expected: str
) -> None:
    assert firings(zone, expression, after, len(expected.split())) == instants_of(expected)


@pytest.mark.parametrize(
    ("zone", "expression", "after", "expected"),
    [
        # London: 00:07 GMT, then 01:07 does not exist, then 02:07 BST (01:07Z), 03:07 BST
        (
            LONDON,
            "7 * * * *",
            "2026-03-28T23:30",
            "2026-03-29T00:07 2026-03-29T01:07 2026-03-29T02:07",
        ),
        # New York: 01:07 EST, (02:07 does not exist), 03:07 EDT, 04:07 EDT
        (NY, "7 * * * *", "2026-03-08T05:30", "2026-03-08T06:07 2026-03-08T07:07 2026-03-08T08:07"),
        # every quarter hour of elapsed time: 01:30, 01:45 EST, 03:00, 03:15 EDT
        (
            NY,
            "*/15 * * * *",
            "2026-03-08T06:20",
            "2026-03-08T06:30 2026-03-08T06:45 2026-03-08T07:00 2026-03-08T07:15",
        ),
        (
            NY,
            "*/30 1-3 * * *",
            "2026-03-08T05:00",
            "2026-03-08T06:00 2026-03-08T06:30 2026-03-08T07:00 2026-03-08T07:30 2026-03-09T05:00",
        ),
        # Lord Howe: 01:07 +10:30, (02:07 does not exist), 03:07 +11, 04:07 +11
        (
            LORD_HOWE,
            "7 * * * *",
            "2026-10-03T14:00",
            "2026-10-03T14:37 2026-10-03T16:07 2026-10-03T17:07",
        ),
        # 01:40 +10:30, (02:00 and 02:20 do not exist), 02:40 +11, 03:00 +11
        (
            LORD_HOWE,
            "*/20 * * * *",
            "2026-10-03T14:55",
            "2026-10-03T15:10 2026-10-03T15:40 2026-10-03T16:00",
        ),
    ],
)
def test_wildcard_cron_never_fires_at_a_wall_time_inside_a_gap(
    zone: str, expression: str, after: str, expected: str
) -> None:
    assert firings(zone, expression, after, len(expected.split())) == instants_of(expected)


# --- fixed-time jobs: the wall-clock policy (gap: first instant after; fold: once) -------------


@pytest.mark.parametrize(
    ("zone", "expression", "after", "expected"),
    [
        # gap: 02:30 does not exist and fires at the transition, 03:00 EDT
        (NY, "30 2 * * *", "2026-03-07T12:00", "2026-03-08T07:00 2026-03-09T06:30"),
        # fold: 01:30 fires once, at 01:30 EDT
        (NY, "30 1 * * *", "2026-10-31T12:00", "2026-11-01T05:30 2026-11-02T06:30"),
        # asked from inside the second pass: no second firing that day
        (NY, "30 1 * * *", "2026-11-01T06:10", "2026-11-02T06:30"),
        # a step or list without a leading '*' names fixed times (as in Debian)
        (NY, "0-59/30 1 * * *", "2026-11-01T04:00", "2026-11-01T05:00 2026-11-01T05:30"),
        (NY, "0-59/30 1 * * *", "2026-11-01T05:40", "2026-11-02T06:00"),
        (LONDON, "30 1 * * *", "2026-03-28T12:00", "2026-03-29T01:00 2026-03-30T00:30"),
        (LONDON, "30 1 * * *", "2026-10-24T12:00", "2026-10-25T00:30 2026-10-26T01:30"),
        # 01:00 and 01:30 both fall in London's gap and collapse into one firing at 02:00 BST
        (LONDON, "0,30 1 * * *", "2026-03-28T12:00", "2026-03-29T01:00 2026-03-30T00:00"),
        # Lord Howe: 02:15 falls in the 30-minute gap and fires at 02:30 +11
        (LORD_HOWE, "15 2 * * *", "2026-10-03T00:00", "2026-10-03T15:30 2026-10-04T15:15"),
        # 01:45 is shown twice (+11, +10:30) and fires once, at 01:45 +11
        (LORD_HOWE, "45 1 * * *", "2026-04-04T00:00", "2026-04-04T14:45 2026-04-05T15:15"),
        (LORD_HOWE, "45 1 * * *", "2026-04-04T15:00", "2026-04-05T15:15"),
    ],
)
def test_fixed_time_cron_keeps_the_wall_clock_policy(
    zone: str, expression: str, after: str, expected: str
) -> None:
    assert firings(zone, expression, after, len(expected.split())) == instants_of(expected)


# --- consequences -----------------------------------------------------------------------------


# the 2026 transitions of each zone (UTC): fall-back, spring-forward
TRANSITIONS = {
    NY: ("2026-11-01T06:00", "2026-03-08T07:00"),
    LONDON: ("2026-10-25T01:00", "2026-03-29T01:00"),
    LORD_HOWE: ("2026-04-04T15:00", "2026-10-03T15:30"),
}


@pytest.mark.parametrize("zone", [NY, LONDON, LORD_HOWE])
def test_a_quarter_hourly_job_is_never_silent_for_more_than_a_quarter_hour(zone: str) -> None:
    """From a day before to a day after each transition, firings are 15 minutes apart."""
    schedule = Cron(expression="*/15 * * * *", timezone=zone)
    for transition in map(iso_utc, TRANSITIONS[zone]):
        fire = transition - timedelta(days=1)
        while fire < transition + timedelta(days=1):
            following = next_after(schedule, fire)
            assert following == fire + timedelta(minutes=15), fire
            fire = following


def test_catch_up_across_a_repeated_hour_counts_both_passes() -> None:
    """The scheduler down from 05:00Z to 08:00Z on New York's fall-back night owes 13 runs."""
    schedule = Cron(expression="*/15 * * * *", timezone=NY)
    plan = plan_due(
        schedule,
        iso_utc("2026-11-01T05:00"),
        iso_utc("2026-11-01T08:00"),
        "all",
        grace=timedelta(minutes=5),
        limit=100,
    )
    expected = [iso_utc("2026-11-01T05:00") + k * timedelta(minutes=15) for k in range(13)]
    assert [f.scheduled_for for f in plan.firings] == expected
    assert all(f.run for f in plan.firings)
    assert plan.dropped == 0
    assert plan.next_run_at == iso_utc("2026-11-01T08:15")


# --- an oracle: elapsed time, minute by minute ------------------------------------------------


def field_values(field: str, top: int) -> set[int]:
    """The values of a minute or hour field: ``*``, ``*/n``, ``a``, ``a-b``, ``a-b/n``, lists."""
    values: set[int] = set()
    for term in field.split(","):
        span, _, step = term.partition("/")
        if span == "*":
            low, high = 0, top
        else:
            first, _, last = span.partition("-")
            low, high = int(first), int(last or first)
        values.update(range(low, high + 1, int(step or 1)))
    return values


def oracle_next(expression: str, zone: str, after: datetime) -> datetime:
    """The first whole minute of UTC after ``after`` at which the zone's clocks show a match.

    The definition of a wildcard job's firings, walked minute by minute (every offset of these
    zones is a whole number of minutes). Only minute and hour fields are read.
    """
    minute_field, hour_field = expression.split()[:2]
    minutes, hours = field_values(minute_field, 59), field_values(hour_field, 23)
    tz = ZoneInfo(zone)
    moment = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while True:
        local = moment.astimezone(tz)
        if local.minute in minutes and local.hour in hours:
            return moment
        moment += timedelta(minutes=1)


ZONE_TRANSITIONS = [(zone, iso_utc(t)) for zone, pair in TRANSITIONS.items() for t in pair]
WILDCARD_EXPRESSIONS = (
    "*/15 * * * *",
    "7 * * * *",
    "40 * * * *",
    "0 * * * *",
    "*/20 */2 * * *",
    "*/30 1-3 * * *",
    "*/10 2 * * *",
    "45 */3 * * *",
    "5,35 * * * *",
)


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.sampled_from(ZONE_TRANSITIONS),
    st.sampled_from(WILDCARD_EXPRESSIONS),
    st.integers(-3 * 3600, 3 * 3600),
    st.integers(0, 999_999),
)
def test_wildcard_cron_matches_the_elapsed_time_oracle(
    zone_transition: tuple[str, datetime], expression: str, seconds: int, microseconds: int
) -> None:
    """Near each transition of the three zones, asked from any instant."""
    zone, transition = zone_transition
    after = transition + timedelta(seconds=seconds, microseconds=microseconds)
    got = next_after(Cron(expression=expression, timezone=zone), after)
    assert got == oracle_next(expression, zone, after)
