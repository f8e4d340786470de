"""Input that used to crash instead of being refused naming its field (chaos scenario 9).

Each case once raised ``UnicodeEncodeError``, ``RecursionError``, ``OverflowError`` or reached
PostgreSQL (NaN in ``json``, a NUL in a ``text`` column) instead of a
:class:`~personal_assistant.errors.ValidationError`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from personal_assistant.cli.schedule_options import parse_duration
from personal_assistant.core.schedule_json import parse_schedule
from personal_assistant.errors import ScheduleError, ValidationError
from personal_assistant.tasks import inputs as task_inputs


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("context", "reason"),
    [
        ({"k": float("nan")}, "JSON-serialisable"),
        ({"k": [float("inf")]}, "JSON-serialisable"),
        ({"k": _nested(100_000)}, "JSON-serialisable"),
        ({"k": "\ud800"}, "lone surrogate"),
        ({"\udcff": 1}, "lone surrogate"),
        ({"k\x00": "v"}, "NUL"),
        ({"k": "v\x00"}, "NUL"),
        ({"k": {"deeper": ["ok", "a\x00b"]}}, "NUL"),
    ],
)
def test_context_that_the_database_or_the_prompt_cannot_hold_is_refused(
    context: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason) as caught:
        task_inputs.ai_context(context)
    assert caught.value.field == "ai_context"


def test_context_keeps_unicode_and_control_characters_other_than_nul() -> None:
    context = {"café ☕": ["e\u0301", "\x01tab\t"], "n": 10**30, "nested": {"a": [None, True]}}
    assert task_inputs.ai_context(context) == context


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "daily", "times": ["09:00"], "end": "0001-01-01T00:00"}, "schedule.end"),
        ({"kind": "daily", "times": ["09:00"], "start": "0001-01-01"}, "schedule.start"),
        ({"kind": "once", "at": "9999-12-31T23:59", "timezone": "America/New_York"}, "schedule.at"),
        ({"kind": "once", "at": "0001-01-01T00:30+01:00"}, "schedule.at"),
        (
            {"kind": "once", "at": datetime(9999, 12, 31, 23), "timezone": "America/New_York"},
            "schedule.at",
        ),
    ],
)
def test_instants_outside_years_1_to_9999_in_utc_are_refused(
    data: dict[str, Any], field: str
) -> None:
    data.setdefault("timezone", "Europe/Paris")
    with pytest.raises(ScheduleError, match="out of range") as caught:
        parse_schedule(data)
    assert caught.value.field == field


def test_the_ends_of_the_calendar_that_fit_are_kept() -> None:
    once = parse_schedule({"kind": "once", "at": "9999-12-31T23:59:59", "timezone": "UTC"})
    assert once.at == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)  # type: ignore[union-attr]


@pytest.mark.parametrize("text", ["99999999999999999999d", "3651d", str(10**40)])
def test_a_delay_too_long_is_refused(text: str) -> None:
    with pytest.raises(ValidationError, match="at most 3650 days") as caught:
        parse_duration(text, "--in")
    assert caught.value.field == "--in"
