"""The daily digest's pure rules: when it is due, the window it covers, and what it says."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from personal_assistant.digests.rules import (
    LINE_LIMIT,
    MAX_LINES,
    DigestRun,
    DigestWindow,
    check_time,
    compose_digest,
    dedupe_key,
    next_digest_at,
    window,
)
from personal_assistant.errors import ValidationError
from personal_assistant.notifications.content import BODY_LIMIT, render

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


NEXT_CASES: list[tuple[str, time, ZoneInfo, datetime, datetime]] = [
    ("later today", time(20), TOKYO, utc(2026, 11, 29, 10, 59), utc(2026, 11, 29, 11)),
    ("at the time: tomorrow", time(20), TOKYO, utc(2026, 11, 29, 11), utc(2026, 11, 30, 11)),
    ("just after: tomorrow", time(20), TOKYO, utc(2026, 11, 29, 11, 0, 1), utc(2026, 11, 30, 11)),
    ("across local midnight", time(7), TOKYO, utc(2026, 11, 29, 16), utc(2026, 11, 29, 22)),
    ("spring forward, after", time(20), LOS_ANGELES, utc(2026, 3, 8, 4), utc(2026, 3, 9, 3)),
    ("spring forward, before", time(20), LOS_ANGELES, utc(2026, 3, 7, 4, 0, 1), utc(2026, 3, 8, 4)),
    ("in the gap: its end", time(2, 30), NEW_YORK, utc(2026, 3, 8, 5), utc(2026, 3, 8, 7)),
    ("half-hour gap", time(2, 15), LORD_HOWE, utc(2026, 10, 3, 14), utc(2026, 10, 3, 15, 30)),
    ("in the fold: first", time(1, 30), NEW_YORK, utc(2026, 11, 1, 4), utc(2026, 11, 1, 5, 30)),
    ("fold, not twice", time(1, 30), NEW_YORK, utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)),
    ("fall back, after", time(20), NEW_YORK, utc(2026, 11, 1, 0, 30), utc(2026, 11, 2, 1)),
]


@pytest.mark.parametrize(
    ("at", "zone", "now", "expected"),
    [case[1:] for case in NEXT_CASES],
    ids=[case[0] for case in NEXT_CASES],
)
def test_next_digest_at(at: time, zone: ZoneInfo, now: datetime, expected: datetime) -> None:
    assert next_digest_at(at, zone, now) == expected


LAG = timedelta(seconds=30)  # a digest is written a little after its time
TOKYO_DUE = utc(2026, 11, 29, 11)  # Sunday 29 November, 20:00 in Tokyo


def win(start: datetime, end: datetime, day: date, label: date, catch_up: bool) -> DigestWindow:
    return DigestWindow(start, end, day, label, catch_up)


SUN, SAT = date(2026, 11, 29), date(2026, 11, 28)
# (case, at, zone, due, end, since, expected)
WINDOW_CASES: list[
    tuple[str, time, ZoneInfo, datetime, datetime, datetime | None, DigestWindow]
] = [
    (
        "first digest: since the time the day before",
        time(20),
        TOKYO,
        TOKYO_DUE,
        TOKYO_DUE + LAG,
        None,
        win(utc(2026, 11, 28, 11), TOKYO_DUE + LAG, SUN, SUN, False),
    ),
    (
        "next digest: from where the previous one ended",
        time(20),
        TOKYO,
        TOKYO_DUE,
        TOKYO_DUE + LAG,
        utc(2026, 11, 28, 11, 1),
        win(utc(2026, 11, 28, 11, 1), TOKYO_DUE + LAG, SUN, SUN, False),
    ),
    (
        "a morning digest is about the day before",
        time(7),
        TOKYO,
        utc(2026, 11, 28, 22),
        utc(2026, 11, 28, 22) + LAG,
        None,
        win(utc(2026, 11, 27, 22), utc(2026, 11, 28, 22) + LAG, SUN, SAT, False),
    ),
    (
        "spring forward: 23 hours",
        time(20),
        NEW_YORK,
        utc(2026, 3, 9, 0),
        utc(2026, 3, 9, 0),
        None,
        win(utc(2026, 3, 8, 1), utc(2026, 3, 9, 0), date(2026, 3, 8), date(2026, 3, 8), False),
    ),
    (
        "fall back: 25 hours",
        time(20),
        NEW_YORK,
        utc(2026, 11, 2, 1),
        utc(2026, 11, 2, 1),
        None,
        win(utc(2026, 11, 1, 0), utc(2026, 11, 2, 1), date(2026, 11, 1), date(2026, 11, 1), False),
    ),
    (
        "down for three days: one window since the last digest",
        time(20),
        TOKYO,
        utc(2026, 11, 26, 11),
        utc(2026, 11, 29, 12),
        utc(2026, 11, 25, 11, 1),
        win(utc(2026, 11, 25, 11, 1), utc(2026, 11, 29, 12), SUN, date(2026, 11, 27), True),
    ),
    (
        "down for three days, no digest before",
        time(20),
        TOKYO,
        utc(2026, 11, 26, 11),
        utc(2026, 11, 29, 12),
        None,
        win(utc(2026, 11, 25, 11), utc(2026, 11, 29, 12), SUN, date(2026, 11, 27), True),
    ),
    (
        "moved from 20:00 to 07:00: from the last one, no gap",
        time(7),
        TOKYO,
        utc(2026, 11, 29, 22),
        utc(2026, 11, 29, 22),
        TOKYO_DUE,
        win(TOKYO_DUE, utc(2026, 11, 29, 22), date(2026, 11, 30), date(2026, 11, 30), False),
    ),
    (
        "moved from 07:00 to 20:00 the same day: from the morning one, no overlap",
        time(20),
        TOKYO,
        TOKYO_DUE,
        TOKYO_DUE,
        utc(2026, 11, 28, 22),
        win(utc(2026, 11, 28, 22), TOKYO_DUE, SUN, SUN, False),
    ),
    (
        "off for a week: the last digest is too old",
        time(20),
        TOKYO,
        TOKYO_DUE,
        TOKYO_DUE,
        utc(2026, 11, 21, 11),
        win(utc(2026, 11, 28, 11), TOKYO_DUE, SUN, SUN, False),
    ),
    (
        "a previous end after this one (clocks apart) is ignored",
        time(20),
        TOKYO,
        TOKYO_DUE,
        TOKYO_DUE,
        TOKYO_DUE + LAG,
        win(utc(2026, 11, 28, 11), TOKYO_DUE, SUN, SUN, False),
    ),
]


@pytest.mark.parametrize(
    ("at", "zone", "due", "end", "since", "expected"),
    [case[1:] for case in WINDOW_CASES],
    ids=[case[0] for case in WINDOW_CASES],
)
def test_window(
    at: time,
    zone: ZoneInfo,
    due: datetime,
    end: datetime,
    since: datetime | None,
    expected: DigestWindow,
) -> None:
    assert window(at, zone, due, end, since=since) == expected


@pytest.mark.parametrize(
    ("times", "zone"),
    [
        ((time(20),), NEW_YORK),
        ((time(2, 30),), NEW_YORK),
        ((time(1, 30),), NEW_YORK),
        ((time(2),), LORD_HOWE),
        ((time(20), time(7), time(22), time(0, 15)), LOS_ANGELES),
    ],
)
def test_windows_tile_a_year_across_dst_and_time_changes(
    times: tuple[time, ...], zone: ZoneInfo
) -> None:
    """Each run is in exactly one digest: every digest starts where the last written one ended.

    A digest whose local date already has one is refused by the outbox's unique key (the time
    moved later on a day whose digest went out): the next one starts where the last one ended.
    """
    at = times[0]
    due = next_digest_at(at, zone, utc(2026, 1, 1))
    since: datetime | None = None
    written: set[date] = set()
    refused = 0
    for n in range(400):
        current = window(at, zone, due, due + LAG, since=since)
        assert current.start < current.end
        if since is not None:
            assert current.start == since
        if current.day in written:
            refused += 1
        else:
            written.add(current.day)
            since = current.end
        if n % 50 == 49:  # the user changes the digest time
            at = times[(n // 50 + 1) % len(times)]
        due = next_digest_at(at, zone, current.end)
    # Moved later on a day whose digest went out: 07:00 to 22:00 (twice), 00:15 to 20:00.
    assert refused == (3 if len(times) > 1 else 0)


def test_dedupe_key_is_the_local_date() -> None:
    assert dedupe_key(date(2026, 11, 29)) == "digest:2026-11-29"


@pytest.mark.parametrize("bad", ["20:00", time(20, tzinfo=UTC), time(20, 0, 0, 5), None])
def test_check_time_refuses_what_is_not_a_wall_clock_time(bad: object) -> None:
    with pytest.raises(ValidationError) as caught:
        check_time(bad)
    assert caught.value.field == "at"


SUNDAY_9AM_TOKYO = utc(2026, 11, 29, 0)
DAY = DigestWindow(
    utc(2026, 11, 28, 11), utc(2026, 11, 29, 11), date(2026, 11, 29), date(2026, 11, 29), False
)


def run(
    run_id: int,
    state: str = "succeeded",
    *,
    title: str = "Briefing",
    at: datetime = SUNDAY_9AM_TOKYO,
    text: str | None = "All good.",
) -> DigestRun:
    return DigestRun(run_id, 1, title, state, at, text)


def test_a_day_lists_failures_first_with_local_times_and_excerpts() -> None:
    runs = [
        run(1, at=utc(2026, 11, 28, 23), text="Three meetings today.\nThe first at 09:30."),
        run(
            2,
            "failed",
            title="Weather",
            at=utc(2026, 11, 29, 1),
            text="failed after 3 attempts: timeout",
        ),
        run(3, "skipped", title="Water", at=utc(2026, 11, 28, 12), text=None),
    ]
    message = compose_digest("Ada", DAY, runs, TOKYO)
    assert message.title == "Your day: 3 runs, 1 failed, 1 skipped — Sun 29 Nov"
    assert message.body.splitlines() == [
        "Ada, 3 runs of your tasks finished on Sun 29 Nov (Asia/Tokyo time): 1 failed, "
        "1 succeeded, 1 skipped.",
        "",
        "Failed:",
        "- 10:00 Weather: failed after 3 attempts: timeout",
        "",
        "Succeeded:",
        "- 08:00 Briefing: Three meetings today. The first at 09:30.",
        "",
        "Skipped (missed while the system was down):",
        "- Sat 21:00 Water: not run",
    ]


@pytest.mark.parametrize(
    ("runs", "title"),
    [
        ([run(1)], "Your day: 1 run — Sun 29 Nov"),
        ([run(1), run(2)], "Your day: 2 runs — Sun 29 Nov"),
        ([run(1, "failed", text="boom")], "Your day: 1 run, 1 failed — Sun 29 Nov"),
        ([], "Your day: no runs — Sun 29 Nov"),
    ],
)
def test_titles_count_runs_and_failures(runs: list[DigestRun], title: str) -> None:
    assert compose_digest("Ada", DAY, runs, TOKYO).title == title


def test_an_empty_day_says_so() -> None:
    message = compose_digest("Ada", DAY, [], TOKYO)
    assert message.body == "Ada, none of your tasks ran on Sun 29 Nov."


def test_a_failure_without_a_reason_says_so_honestly() -> None:
    body = compose_digest("Ada", DAY, [run(1, "failed", text=None)], TOKYO).body
    assert "- 09:00 Briefing: failed (no reason was recorded)" in body


def test_long_lines_are_one_trimmed_line() -> None:
    long = " ".join(["word"] * 200)
    body = compose_digest("Ada", DAY, [run(1, text=long)], TOKYO).body
    line = body.splitlines()[-1]
    assert len(line) <= LINE_LIMIT and line.endswith("word…")


def test_at_most_max_lines_are_listed_and_the_rest_counted() -> None:
    runs = [run(i, at=utc(2026, 11, 29, 0) + timedelta(minutes=i)) for i in range(MAX_LINES + 12)]
    body = compose_digest("Ada", DAY, runs[:MAX_LINES], TOKYO, counts={"succeeded": len(runs)}).body
    assert sum(line.startswith("- ") for line in body.splitlines()) == MAX_LINES
    assert body.endswith("\n\nand 12 more (pa runs)")


def test_the_body_fits_the_outbox_limit() -> None:
    runs = [run(i, title="T" * 150, text="x " * 200) for i in range(MAX_LINES)]
    message = compose_digest("Ada", DAY, runs, TOKYO, counts={"succeeded": 500})
    assert len(message.body) <= BODY_LIMIT
    listed = sum(line.startswith("- ") for line in message.body.splitlines())
    assert listed < MAX_LINES and message.body.endswith(f"and {500 - listed} more (pa runs)")


def test_a_late_digest_says_since_when_and_dates_each_run() -> None:
    late = window(time(20), TOKYO, utc(2026, 11, 26, 11), utc(2026, 11, 29, 12))
    assert late.catch_up
    message = compose_digest("Ada", late, [run(1, at=utc(2026, 11, 27, 0))], TOKYO)
    assert message.title == "Since Wed 25 Nov: 1 run"
    assert "finished since Wed 25 Nov 20:00 (Asia/Tokyo time)" in message.body
    assert message.body.endswith("- Fri 27 Nov 09:00 Briefing: All good.")


def test_a_digest_trimmed_for_a_channel_points_to_pa_runs() -> None:
    text = " ".join(["word"] * 1000)
    message = render("chat", "Your day", text)
    assert len(message.body) <= 2000 and message.body.endswith("word… (more: pa runs)")
    run_message = render("chat", "Digest", text, task_id=7, run_id=42)
    assert run_message.body.endswith("(more: pa runs --task 7, run 42)")
