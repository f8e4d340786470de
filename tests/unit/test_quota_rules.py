"""The pure rules behind issue 10's items 7 and 9: argument checks, quota refusals, and when
an imported task is next due."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta

import pytest

from personal_assistant.core.schedule_kinds import Interval, Once
from personal_assistant.errors import QuotaError, ValidationError
from personal_assistant.exports.document import imported_next_run
from personal_assistant.tasks import inputs as check
from personal_assistant.tasks import quotas

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Small(enum.IntEnum):
    ONE = 1


@pytest.mark.parametrize("value", ["1", 1.0, None, True, False, b"1", [1], {"id": 1}])
def test_an_id_that_is_no_integer_is_refused_naming_the_parameter(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        check.record_id(value, "task_id")
    assert caught.value.field == "task_id"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1), (-1, -1), (2**63 - 1, 2**63 - 1), (-(2**63), -(2**63)), (2**63, None), (2**70, None)],
)
def test_an_integer_id_is_kept_or_names_nothing(value: int, expected: int | None) -> None:
    assert check.record_id(value, "task_id") == expected


def test_an_int_subclass_becomes_a_plain_int() -> None:
    known = check.record_id(Small.ONE, "task_id")
    assert known == 1 and type(known) is int


@pytest.mark.parametrize(
    ("value", "reason"),
    [("5", "whole number"), (5.0, "whole number"), (True, "whole number"), (0, "between 1")],
)
def test_whole_numbers(value: object, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        check.whole(value, "limit", low=1, high=10)


def test_a_list_of_ids_is_bounded_and_checked_item_by_item() -> None:
    assert check.record_ids([1, 2**70, 3], "ids", max_len=3) == [1, 3]
    with pytest.raises(ValidationError) as caught:
        check.record_ids([1, "2"], "ids", max_len=3)
    assert caught.value.field == "ids[1]"
    for bad in ("12", {1: 1}, 7):
        with pytest.raises(ValidationError, match="must be a list of ids"):
            check.record_ids(bad, "ids", max_len=3)
    with pytest.raises(ValidationError, match="at most 3 ids"):
        check.record_ids(iter(range(10**12)), "ids", max_len=3)  # stops reading at the limit


def test_choices_are_text_and_one_of_the_values() -> None:
    assert check.catch_up("all") == "all"
    for bad in (["all"], None, "ALL", 1):
        with pytest.raises(ValidationError, match="must be one of skip, once, all"):
            check.catch_up(bad)


@pytest.mark.parametrize(
    ("held", "adding", "limit", "refused"),
    [(2, 1, 3, False), (3, 1, 3, True), (1, 3, 3, True), (10**6, 5, 0, False), (5, 0, 3, False)],
)
def test_the_active_task_limit(held: int, adding: int, limit: int, refused: bool) -> None:
    if not refused:
        quotas.check_active(7, held, adding, limit)
        return
    with pytest.raises(QuotaError) as caught:
        quotas.check_active(7, held, adding, limit)
    assert (caught.value.field, caught.value.limit) == ("MAX_ACTIVE_TASKS_PER_USER", limit)
    assert f"user 7 has {held} active or paused tasks and may have at most {limit}" in str(
        caught.value
    )


def test_the_import_limit() -> None:
    quotas.check_import(7, 4, 6, 10)
    quotas.check_import(7, 10**6, 10**6, 0)
    with pytest.raises(QuotaError) as caught:
        quotas.check_import(7, 4, 7, 10)
    assert caught.value.field == "MAX_IMPORTS_PER_HOUR"
    assert "this file holds 7, after 4 tasks imported in the last hour" in caught.value.message


HOURLY = Interval(every=timedelta(hours=1), start=NOW - timedelta(days=30, minutes=20))


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (None, None),  # no firing left
        (NOW + timedelta(minutes=40), NOW + timedelta(minutes=40)),  # still to come: kept
        (NOW - timedelta(days=5, minutes=20), NOW - timedelta(minutes=20)),  # latest firing
        (NOW - timedelta(minutes=20), NOW - timedelta(minutes=20)),  # one due: unchanged
    ],
)
def test_an_imported_task_is_due_from_now(stored: datetime | None, expected: datetime) -> None:
    assert imported_next_run(HOURLY, stored, NOW) == expected


def test_a_past_once_task_stays_due_once() -> None:
    at = NOW - timedelta(days=5)
    assert imported_next_run(Once(at=at), at, NOW) == at
