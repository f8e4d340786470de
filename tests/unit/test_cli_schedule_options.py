"""The translation of ``pa task add`` schedule options into a schedule dict (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from personal_assistant.cli.schedule_options import (
    ScheduleOptions,
    parse_duration,
    to_schedule_dict,
)
from personal_assistant.core.schedule_json import parse_schedule
from personal_assistant.errors import ValidationError

NOW = datetime(2026, 3, 28, 23, 55, tzinfo=UTC)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (ScheduleOptions(at="2026-12-01 09:00"), {"kind": "once", "at": "2026-12-01 09:00"}),
        (
            ScheduleOptions(in_="10m"),
            {"kind": "once", "at": "2026-03-29T00:05:00+00:00"},
        ),
        (ScheduleOptions(every="30m"), {"kind": "interval", "every": "30m"}),
        (
            ScheduleOptions(every="1h", start="2026-04-01 08:00"),
            {"kind": "interval", "every": "1h", "start": "2026-04-01 08:00"},
        ),
        (ScheduleOptions(daily="09:00"), {"kind": "daily", "times": ["09:00"]}),
        (
            ScheduleOptions(daily="09:00, 18:00"),
            {"kind": "daily", "times": ["09:00", "18:00"]},
        ),
        (
            ScheduleOptions(weekly="mon,wed@09:00"),
            {"kind": "weekly", "weekdays": ["mon", "wed"], "times": ["09:00"]},
        ),
        (
            ScheduleOptions(weekly="fri@09:00,17:30"),
            {"kind": "weekly", "weekdays": ["fri"], "times": ["09:00", "17:30"]},
        ),
        (
            ScheduleOptions(monthly="31@09:00"),
            {"kind": "monthly", "day": 31, "times": ["09:00"]},
        ),
        (
            ScheduleOptions(cron="0 9 * * 1-5"),
            {"kind": "cron", "expression": "0 9 * * 1-5"},
        ),
        (
            ScheduleOptions(daily="09:00", tz="Europe/Paris", end="2027-01-01 00:00"),
            {
                "kind": "daily",
                "times": ["09:00"],
                "end": "2027-01-01 00:00",
                "timezone": "Europe/Paris",
            },
        ),
    ],
)
def test_options_become_the_schedule_dict(
    options: ScheduleOptions, expected: dict[str, object]
) -> None:
    assert to_schedule_dict(options, NOW) == expected


@pytest.mark.parametrize(
    "options",
    [
        ScheduleOptions(at="2026-12-01 09:00", tz="Asia/Tokyo"),
        ScheduleOptions(in_="1h30m"),
        ScheduleOptions(every="90s", start="2026-04-01T08:00"),
        ScheduleOptions(daily="09:00,18:00", tz="America/New_York"),
        ScheduleOptions(weekly="mon,wed@09:00"),
        ScheduleOptions(monthly="29@23:59:30"),
        ScheduleOptions(cron="*/15 9-17 * * mon-fri", tz="UTC"),
    ],
)
def test_every_result_is_a_schedule_the_core_accepts(options: ScheduleOptions) -> None:
    parse_schedule(to_schedule_dict(options, NOW))


def test_no_timezone_key_without_tz_so_the_user_zone_applies() -> None:
    assert "timezone" not in to_schedule_dict(ScheduleOptions(daily="09:00"), NOW)


def test_in_is_counted_in_elapsed_utc_time_from_now() -> None:
    data = to_schedule_dict(ScheduleOptions(in_="2h", tz="Europe/Paris"), NOW)
    assert datetime.fromisoformat(str(data["at"])) == NOW + timedelta(hours=2)
    assert data["timezone"] == "Europe/Paris"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("45", 45)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text, "--in") == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        (ScheduleOptions(), "schedule", "exactly one"),
        (ScheduleOptions(at="2026-12-01 09:00", every="1h"), "schedule", "--at, --every"),
        (ScheduleOptions(daily="09:00", cron="0 9 * * *"), "schedule", "got --daily, --cron"),
        (ScheduleOptions(start="2026-12-01 09:00"), "schedule", "exactly one"),
        (ScheduleOptions(in_="soon"), "--in", "not a duration"),
        (ScheduleOptions(in_="0m"), "--in", "longer than zero"),
        (ScheduleOptions(daily="09:00,,18:00"), "--daily", "comma-separated"),
        (ScheduleOptions(weekly="mon,wed"), "--weekly", "mon,wed@09:00"),
        (ScheduleOptions(weekly="@09:00"), "--weekly", "mon,wed@09:00"),
        (ScheduleOptions(weekly="mon@"), "--weekly", "mon,wed@09:00"),
        (ScheduleOptions(monthly="31"), "--monthly", "31@09:00"),
        (ScheduleOptions(monthly="last@09:00"), "--monthly", "1..31"),
    ],
)
def test_bad_options_name_the_option(options: ScheduleOptions, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        to_schedule_dict(options, NOW)
    assert caught.value.field == field
    assert words in caught.value.message


def test_kinds_given_lists_flags_in_a_fixed_order() -> None:
    options = ScheduleOptions(cron="* * * * *", at="x", monthly="1@09:00")
    assert options.kinds_given() == ["--at", "--monthly", "--cron"]
