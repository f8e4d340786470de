"""The natural-language evaluation set (tests/unit/nl_cases.yaml) is itself right.

These tests check the cases, not the parser: each expected schedule is accepted by
parse_schedule and written in canonical form, each expected first firing is the one the
schedule maths compute at the entry's ``now``, every tag is known, and the set covers every
construction of issue 15 with enough entries and enough refusals.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from personal_assistant.core.next_run import next_after, validate_for_creation
from personal_assistant.core.schedule_json import parse_schedule, schedule_to_dict

CASES_FILE = Path(__file__).with_name("nl_cases.yaml")
DEFAULT_NOW = datetime.fromisoformat("2026-03-01T10:00:00+00:00")
DEFAULT_TZ = "Europe/Paris"
MIN_ENTRIES = 300
MIN_PER_CONSTRUCTION = 10
MIN_REFUSALS = 40
CONSTRUCTIONS = frozenset(
    {
        "relative",
        "once_date",
        "tomorrow",
        "next_weekday",
        "tonight",
        "noon_midnight",
        "daily",
        "twelve_hour",
        "twenty_four_hour",
        "number_words",
        "weekdays",
        "weekends",
        "weekly",
        "every_n_minutes",
        "every_n_hours",
        "every_n_days",
        "every_n_weeks",
        "every_other",
        "ordinal_weekday",
        "day_of_month",
        "twice_a_day",
        "range",
        "until",
        "for_duration",
        "time_zone",
        "dst",
        "title",
        "refusal",
        "bad_input",
    }
)
ENTRY_KEYS = frozenset({"text", "text_repeat", "construction", "now", "tz", "expect"})
EXPECT_KEYS = frozenset({"schedule", "first", "title", "refusal", "closest"})


def load_cases() -> list[dict[str, Any]]:
    with CASES_FILE.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    assert isinstance(data, list)
    return data


CASES = load_cases()


def case_text(entry: dict[str, Any]) -> str:
    """The phrase of an entry: ``text``, or ``text_repeat.unit`` repeated ``times`` times."""
    if "text_repeat" in entry:
        repeat = entry["text_repeat"]
        return str(repeat["unit"]) * int(repeat["times"])
    return str(entry["text"])


def case_now(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["now"]) if "now" in entry else DEFAULT_NOW


def case_id(entry: dict[str, Any]) -> str:
    return f"{entry['construction']}:{case_text(entry)[:40]!r}"


ANSWERS = [entry for entry in CASES if not entry["expect"].get("refusal")]


def test_the_set_is_large_enough_and_covers_every_construction() -> None:
    counts = Counter(entry["construction"] for entry in CASES)
    refusals = sum(1 for entry in CASES if entry["expect"].get("refusal"))
    assert len(CASES) >= MIN_ENTRIES
    assert refusals >= MIN_REFUSALS
    thin = {tag: counts[tag] for tag in CONSTRUCTIONS if counts[tag] < MIN_PER_CONSTRUCTION}
    assert thin == {}


@pytest.mark.parametrize("entry", CASES, ids=case_id)
def test_each_entry_is_well_formed(entry: dict[str, Any]) -> None:
    assert set(entry) <= ENTRY_KEYS
    assert ("text" in entry) != ("text_repeat" in entry)
    assert isinstance(case_text(entry), str)
    assert entry["construction"] in CONSTRUCTIONS
    expect = entry["expect"]
    assert set(expect) <= EXPECT_KEYS
    if expect.get("refusal"):
        assert expect["refusal"] is True
        assert not {"schedule", "first", "title"} & set(expect)
    else:
        assert {"schedule", "first"} <= set(expect)
        assert "closest" not in expect
        assert entry["construction"] not in {"refusal", "bad_input"}
    assert case_now(entry).utcoffset() is not None
    parse_schedule({"kind": "daily", "times": ["09:00"], "timezone": entry.get("tz", DEFAULT_TZ)})


def test_each_phrase_is_there_once_per_context() -> None:
    keys = Counter((case_text(entry), entry.get("now"), entry.get("tz")) for entry in CASES)
    assert [key for key, count in keys.items() if count > 1] == []


@pytest.mark.parametrize("entry", ANSWERS, ids=case_id)
def test_each_expected_schedule_is_canonical_and_fires_first_as_stated(
    entry: dict[str, Any],
) -> None:
    expected = entry["expect"]["schedule"]
    schedule = parse_schedule(expected)
    assert schedule_to_dict(schedule) == expected
    now = case_now(entry)
    first = datetime.fromisoformat(entry["expect"]["first"])
    assert first.utcoffset() is not None
    assert next_after(schedule, now) == first
    assert validate_for_creation(schedule, now) == first


@pytest.mark.parametrize(
    "entry",
    [entry for entry in CASES if "closest" in entry["expect"]],
    ids=case_id,
)
def test_each_closest_reading_is_a_canonical_schedule_with_a_firing(
    entry: dict[str, Any],
) -> None:
    closest = entry["expect"]["closest"]
    schedule = parse_schedule(closest)
    assert schedule_to_dict(schedule) == closest
    assert next_after(schedule, case_now(entry)) is not None


def test_bad_inputs_include_the_empty_and_the_ten_kilobyte_text() -> None:
    bad = [case_text(entry) for entry in CASES if entry["construction"] == "bad_input"]
    assert "" in bad
    assert any(len(text) >= 10_000 for text in bad)
