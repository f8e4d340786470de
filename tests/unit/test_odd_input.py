"""Odd input gives a ValidationError naming the field, never another exception (issue 10,
item 15), by table: durations with non-ASCII or thousands of digits, a time zone that is a
directory of the zone database, an import document nested too deep or with a huge number."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from personal_assistant.cli.schedule_options import (
    ScheduleOptions,
    parse_duration,
    to_schedule_dict,
)
from personal_assistant.core.schedule_json import parse_schedule
from personal_assistant.errors import ValidationError
from personal_assistant.exports import document as exports
from personal_assistant.tasks import inputs as check

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
DIGITS = "1" * 5000
ODD_DURATIONS = ["²", "1²", "٣", "٣m", "\uff11h", DIGITS, DIGITS + "m", "1d" + DIGITS + "s"]


@pytest.mark.parametrize("text", ODD_DURATIONS)
def test_an_odd_interval_is_refused_naming_it(text: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_schedule({"kind": "interval", "every": text, "timezone": "UTC"})
    assert err.value.field == "schedule.every"


@pytest.mark.parametrize("text", ODD_DURATIONS)
def test_an_odd_delay_is_refused_naming_the_option(text: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_duration(text, "--in")
    assert err.value.field == "--in"


@pytest.mark.parametrize("day", ["²", "٣", DIGITS, "007"])
def test_an_odd_monthly_day_is_refused_naming_the_option(day: str) -> None:
    with pytest.raises(ValidationError) as err:
        to_schedule_dict(ScheduleOptions(monthly=f"{day}@09:00"), NOW)
    assert err.value.field == "--monthly"
    assert len(err.value.message) < 100


@pytest.mark.parametrize("zone", ["Europe", "America", "Europe/", "/etc/passwd"])
def test_a_time_zone_that_is_not_a_zone_is_refused_naming_it(zone: str) -> None:
    with pytest.raises(ValidationError) as err:
        check.timezone(zone)
    assert err.value.field == "timezone"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested more than 64 levels"),
        (b'{"a": ' * 65 + b"1" + b"}" * 65, "nested more than 64 levels"),
        (b'{"format": ' + DIGITS.encode() + b"}", "4,300 digits"),
    ],
)
def test_an_import_file_too_deep_or_with_a_huge_number_names_the_file(
    raw: bytes, reason: str
) -> None:
    with pytest.raises(ValidationError) as err:
        exports.parse_document(exports.load_json(raw))
    assert (err.value.field, reason in err.value.message) == ("file", True), err.value


def test_nesting_up_to_the_limit_is_read_and_checked_as_usual() -> None:
    data = exports.load_json(b'{"a": ' * 64 + b"1" + b"}" * 64)
    with pytest.raises(ValidationError) as err:
        exports.parse_document(data)
    assert err.value.field == "a"  # not a field of an export: checked, not refused for depth
